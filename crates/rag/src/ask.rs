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
        sources.push(Source {
            path: c.path.clone(),
            line_start: c.line_start,
            line_end: c.line_end,
        });
        let n = sources.len();
        let title = if c.heading.is_empty() {
            file_name(&c.path).to_string()
        } else {
            format!("{}, {}", file_name(&c.path), c.heading)
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoredChunk;

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
