//! `ask`: from retrieved chunks to a grounded prompt with numbered sources,
//! and the citation list printed under the answer.
//!
//! The chat model is not called here (this crate does not depend on the
//! engine); the caller renders [`Prompt`] with the model's chat template.

use crate::Hit;

/// Below this cosine (query vs best chunk) nothing retrieved is about the
/// question, and `ask` says so instead of calling the model. MiniLM puts
/// unrelated English text around 0.0–0.2 and paraphrases above 0.5.
pub const MIN_COSINE: f32 = 0.3;

/// The messages for the chat model.
#[derive(Clone, Debug)]
pub struct Prompt {
    pub system: String,
    pub user: String,
    /// The sources, in citation order: `[n]` is `sources[n - 1]`.
    pub sources: Vec<Source>,
}

/// A numbered source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub path: String,
    pub line_start: usize,
    pub line_end: usize,
    /// The excerpt as the prompt gave it (heading and text).
    pub excerpt: String,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}-{}", self.path, self.line_start, self.line_end)
    }
}

/// The hits worth answering from: those within `min_cosine`, or none.
pub fn relevant(hits: &[Hit], min_cosine: f32) -> Vec<&Hit> {
    hits.iter().filter(|h| h.cosine >= min_cosine).collect()
}

/// Builds the prompt: numbered excerpts, then the question, with the rule
/// to answer from them and cite `[n]`. `max_chars` bounds the excerpts'
/// total so the prompt fits a small model's context. The wording is short
/// on purpose: smollm2-135m answers correctly from this shape and loses the
/// thread with longer instructions (tried; see the commit message).
pub fn build_prompt(question: &str, hits: &[&Hit], max_chars: usize) -> Prompt {
    let mut user = String::from("Context:\n");
    let mut sources = Vec::new();
    let mut used = 0;
    for h in hits {
        let c = &h.chunk;
        let mut text = c.text.trim().to_string();
        let room = max_chars.saturating_sub(used);
        if room < 200 && !sources.is_empty() {
            break;
        }
        if text.len() > room {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        used += text.len();
        let title = if c.heading.is_empty() {
            file_name(&c.path).to_string()
        } else {
            format!("{}, {}", file_name(&c.path), c.heading)
        };
        sources.push(Source {
            path: c.path.clone(),
            line_start: c.line_start,
            line_end: c.line_end,
            excerpt: format!("{title} {text}"),
        });
        let n = sources.len();
        user.push_str(&format!("[{n}] ({title}) {text}\n"));
    }
    user.push_str(&format!("\nQuestion: {question}"));
    let system = "Answer the question using the context. Cite the source number like [1]. \
                  If the context does not contain the answer, say you do not know."
        .to_string();
    Prompt {
        system,
        user,
        sources,
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The citation numbers `[n]` that appear in `answer` and name a source,
/// in order of first appearance.
pub fn cited(answer: &str, n_sources: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let b = answer.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            let j = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if j > 0 && b.get(i + 1 + j) == Some(&b']') {
                if let Ok(n) = answer[i + 1..i + 1 + j].parse::<usize>() {
                    if (1..=n_sources).contains(&n) && !out.contains(&n) {
                        out.push(n);
                    }
                }
            }
        }
        i += 1;
    }
    out
}

/// One sentence of an answer and the source (1-based) that holds its words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Support {
    pub sentence: String,
    pub source: Option<usize>,
}

/// Lowercased words of an answer or excerpt that carry content: numbers,
/// and words of three or more characters that are not function words.
fn content_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| {
            w.chars().all(|c| c.is_ascii_digit())
                || (w.chars().count() >= 3 && !crate::index::is_stopword(w))
        })
        .collect()
}

/// Citations for an answer whose model wrote none (small models rarely
/// do): each sentence goes to the source that holds the most of its
/// content words, if that source holds at least half of them (two at
/// least, one for a one-word sentence) and every number in it. A sentence
/// no source covers is returned with `source: None`, so the caller can
/// flag it. This matches words, it does not check meaning.
pub fn attribute(answer: &str, sources: &[Source]) -> Vec<Support> {
    let bags: Vec<std::collections::HashSet<String>> = sources
        .iter()
        .map(|s| content_words(&s.excerpt).into_iter().collect())
        .collect();
    let mut out = Vec::new();
    for sentence in sentences(answer) {
        let words = content_words(sentence);
        if words.is_empty() {
            continue;
        }
        let need = (words.len().div_ceil(2)).max(2.min(words.len()));
        let best = bags
            .iter()
            .enumerate()
            .map(|(i, bag)| {
                let have = words.iter().filter(|w| bag.contains(*w)).count();
                let numbers_ok = words
                    .iter()
                    .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
                    .all(|w| bag.contains(w));
                (i, have, numbers_ok)
            })
            .filter(|&(_, have, numbers_ok)| numbers_ok && have >= need)
            .max_by_key(|&(i, have, _)| (have, std::cmp::Reverse(i)));
        out.push(Support {
            sentence: sentence.to_string(),
            source: best.map(|(i, _, _)| i + 1),
        });
    }
    out
}

/// The sentences of `text`: split after `.`, `!` or `?` followed by white
/// space, and at line breaks; trimmed, empty ones dropped.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let b = line.as_bytes();
        for i in 0..b.len() {
            let end = matches!(b[i], b'.' | b'!' | b'?')
                && b.get(i + 1).is_none_or(|c| c.is_ascii_whitespace());
            if end {
                out.push(line[start..=i].trim());
                start = i + 1;
            }
        }
        out.push(line[start..].trim());
    }
    out.retain(|s| !s.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoredChunk;

    fn source(excerpt: &str) -> Source {
        Source {
            path: "/n/a.md".into(),
            line_start: 1,
            line_end: 2,
            excerpt: excerpt.into(),
        }
    }

    #[test]
    fn attribution_matches_words_and_insists_on_numbers() {
        let srcs = [
            source("recipes.md, Pancakes Mix 200 g flour, 2 eggs. Rest the batter for 30 minutes."),
            source(
                "meeting.md, Budget The cloud budget for Q2 is 18,500 euros, up from 15,000 in Q1.",
            ),
        ];
        let got = attribute(
            "The budget for Q2 is 18,500 euros, up from 15,000 euros. \
             The batter should rest for 30 minutes.\n\
             The batter should cook at 325 degrees for 2 hours. Enjoy!",
            &srcs,
        );
        let by: Vec<(&str, Option<usize>)> = got
            .iter()
            .map(|s| (s.sentence.as_str(), s.source))
            .collect();
        assert_eq!(
            by,
            [
                (
                    "The budget for Q2 is 18,500 euros, up from 15,000 euros.",
                    Some(2)
                ),
                ("The batter should rest for 30 minutes.", Some(1)),
                // 325 is in no source: unsupported, though "batter" matches
                ("The batter should cook at 325 degrees for 2 hours.", None),
                ("Enjoy!", None),
            ]
        );
        assert!(attribute("", &srcs).is_empty());
        assert!(
            attribute("The and of.", &srcs).is_empty(),
            "no content words"
        );
    }

    fn hit(path: &str, text: &str, cosine: f32) -> Hit {
        Hit {
            chunk: StoredChunk {
                id: 1,
                path: path.into(),
                line_start: 3,
                line_end: 9,
                heading: "Setup".into(),
                text: text.into(),
            },
            score: 0.1,
            cosine,
        }
    }

    #[test]
    fn prompt_numbers_sources() {
        let hits = [hit("/d/a.md", "alpha", 0.7), hit("/d/b.md", "beta", 0.5)];
        let refs: Vec<&Hit> = hits.iter().collect();
        let p = build_prompt("what?", &refs, 4000);
        assert!(
            p.user.contains("[1] (a.md, Setup) alpha\n")
                && p.user.contains("[2] (b.md, Setup) beta\n"),
            "{}",
            p.user
        );
        assert_eq!(p.sources[1].to_string(), "/d/b.md:3-9");
    }

    #[test]
    fn relevance_threshold() {
        let hits = [hit("a", "x", 0.1), hit("b", "y", 0.25)];
        assert!(relevant(&hits, MIN_COSINE).is_empty());
    }

    #[test]
    fn citations_parse() {
        assert_eq!(cited("A [2] and B [1][2], not [7] or [x] or [", 3), [2, 1]);
    }
}
