//! Token-aware chunking with overlap that respects headings and paragraphs.
//!
//! 1. The text is cut into *blocks*: paragraphs (runs of non-blank lines),
//!    Markdown ATX headings (each its own block; fenced code stays whole),
//!    each with its 1-based line range.
//! 2. A block over the token budget is split at line ends, and a line over
//!    the budget at word boundaries (those pieces share the line's number).
//! 3. Blocks are packed greedily into chunks of at most `max_tokens` word
//!    pieces. The next chunk starts with the trailing blocks of the previous
//!    one that fit in `overlap` tokens, so a fact on a chunk boundary is whole
//!    in one of them. A Markdown heading always starts a new chunk (no
//!    overlap across sections), and every chunk carries its heading path
//!    ("Install > Linux"), which is embedded with it.

use crate::extract::Kind;

/// Chunking budget, in word pieces of the embedding model.
#[derive(Clone, Copy, Debug)]
pub struct ChunkParams {
    pub max_tokens: usize,
    pub overlap: usize,
}

impl Default for ChunkParams {
    /// 200 + a heading fits MiniLM's 256-piece window.
    fn default() -> Self {
        ChunkParams {
            max_tokens: 200,
            overlap: 40,
        }
    }
}

/// A piece of a document, ready to embed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The document's text for these lines.
    pub text: String,
    /// 1-based, inclusive.
    pub line_start: usize,
    pub line_end: usize,
    /// Markdown heading path at the chunk, "" if none.
    pub heading: String,
}

impl Chunk {
    /// What is embedded: the heading path, then the text.
    pub fn embed_text(&self) -> String {
        if self.heading.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.heading, self.text)
        }
    }
}

struct Block {
    text: String,
    start: usize,
    end: usize,
    tokens: usize,
    /// A Markdown heading: starts a new chunk.
    heading: Option<(usize, String)>,
}

fn atx_heading(line: &str) -> Option<(usize, String)> {
    let t = line.trim_start();
    if line.len() - t.len() > 3 {
        return None;
    }
    let level = t.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &t[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some((level, rest.trim().trim_end_matches('#').trim().to_string()))
}

/// Paragraphs and headings with their line ranges.
fn blocks(text: &str, kind: Kind) -> Vec<(String, usize, usize, Option<(usize, String)>)> {
    let mut out = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut in_fence = false;
    let flush = |cur: &mut Vec<&str>, start: usize, out: &mut Vec<_>| {
        if !cur.is_empty() {
            out.push((cur.join("\n"), start, start + cur.len() - 1, None));
            cur.clear();
        }
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if kind == Kind::Markdown {
            let t = line.trim_start();
            if t.starts_with("```") || t.starts_with("~~~") {
                in_fence = !in_fence;
            }
            if !in_fence {
                if let Some(h) = atx_heading(line) {
                    flush(&mut cur, start, &mut out);
                    out.push((line.to_string(), n, n, Some(h)));
                    continue;
                }
            }
        }
        if line.trim().is_empty() && !in_fence {
            flush(&mut cur, start, &mut out);
            continue;
        }
        if cur.is_empty() {
            start = n;
        }
        cur.push(line);
    }
    flush(&mut cur, start, &mut out);
    out
}

/// Splits an over-long block at line ends, then over-long lines at spaces.
fn split_block(
    text: &str,
    start: usize,
    max: usize,
    count: &dyn Fn(&str) -> usize,
    out: &mut Vec<Block>,
) {
    let mut cur = String::new();
    let mut cur_start = start;
    let mut cur_tokens = 0;
    for (i, line) in text.lines().enumerate() {
        let n = start + i;
        let lt = count(line);
        if lt > max {
            if !cur.is_empty() {
                out.push(plain(
                    std::mem::take(&mut cur),
                    cur_start,
                    n - 1,
                    cur_tokens,
                ));
                cur_tokens = 0;
            }
            // word pieces of one line
            let mut piece = String::new();
            let mut pt = 0;
            for w in line.split_inclusive(' ') {
                let wt = count(w).max(1);
                if pt + wt > max && !piece.is_empty() {
                    out.push(plain(std::mem::take(&mut piece), n, n, pt));
                    pt = 0;
                }
                piece.push_str(w);
                pt += wt;
            }
            if !piece.is_empty() {
                out.push(plain(piece, n, n, pt));
            }
            cur_start = n + 1;
            continue;
        }
        if cur_tokens + lt > max && !cur.is_empty() {
            out.push(plain(
                std::mem::take(&mut cur),
                cur_start,
                n - 1,
                cur_tokens,
            ));
            cur_tokens = 0;
        }
        if cur.is_empty() {
            cur_start = n;
        } else {
            cur.push('\n');
        }
        cur.push_str(line);
        cur_tokens += lt;
    }
    if !cur.is_empty() {
        let end = cur_start + cur.lines().count() - 1;
        out.push(plain(cur, cur_start, end, cur_tokens));
    }
}

fn plain(text: String, start: usize, end: usize, tokens: usize) -> Block {
    Block {
        text,
        start,
        end: end.max(start),
        tokens,
        heading: None,
    }
}

/// Chunks `text`; `count` gives the word pieces of a string (no special
/// tokens, no truncation).
pub fn chunk(text: &str, kind: Kind, p: ChunkParams, count: &dyn Fn(&str) -> usize) -> Vec<Chunk> {
    let max = p.max_tokens.max(8);
    let mut bl: Vec<Block> = Vec::new();
    for (t, s, e, h) in blocks(text, kind) {
        let tokens = count(&t);
        if h.is_some() || tokens <= max {
            bl.push(Block {
                text: t,
                start: s,
                end: e,
                tokens,
                heading: h,
            });
        } else {
            split_block(&t, s, max, count, &mut bl);
        }
    }

    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut cur: Vec<&Block> = Vec::new();
    let mut cur_tokens = 0usize;
    let mut cur_heading = String::new();
    let emit = |cur: &[&Block], heading: &str, out: &mut Vec<Chunk>| {
        // A chunk that is only a heading says nothing on its own.
        if cur.is_empty() || cur.iter().all(|b| b.heading.is_some()) {
            return;
        }
        out.push(Chunk {
            text: cur
                .iter()
                .map(|b| b.text.as_str())
                .collect::<Vec<_>>()
                .join("\n\n"),
            line_start: cur[0].start,
            line_end: cur[cur.len() - 1].end,
            heading: heading.to_string(),
        });
    };
    for b in &bl {
        if let Some((level, title)) = &b.heading {
            // A new section: close the chunk, no overlap across it.
            if !cur.iter().all(|b| b.heading.is_some()) {
                emit(&cur, &cur_heading, &mut out);
                cur.clear();
                cur_tokens = 0;
            }
            path.retain(|(l, _)| l < level);
            path.push((*level, title.clone()));
            cur_heading = path
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(" > ");
            cur.push(b);
            cur_tokens += b.tokens;
            continue;
        }
        if cur_tokens + b.tokens > max && !cur.is_empty() {
            emit(&cur, &cur_heading, &mut out);
            // overlap: trailing non-heading blocks within the budget
            let mut keep = Vec::new();
            let mut kt = 0;
            for prev in cur.iter().rev() {
                if prev.heading.is_some()
                    || kt + prev.tokens > p.overlap
                    || kt + prev.tokens + b.tokens > max
                {
                    break;
                }
                kt += prev.tokens;
                keep.push(*prev);
            }
            keep.reverse();
            cur = keep;
            cur_tokens = kt;
        }
        cur.push(b);
        cur_tokens += b.tokens;
    }
    emit(&cur, &cur_heading, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    #[test]
    fn paragraphs_pack_with_line_ranges() {
        let text = "one two\nthree\n\nfour five\n\n\nsix";
        let c = chunk(
            text,
            Kind::Text,
            ChunkParams {
                max_tokens: 100,
                overlap: 0,
            },
            &words,
        );
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].line_start, c[0].line_end), (1, 7));
        assert_eq!(c[0].text, "one two\nthree\n\nfour five\n\nsix");
    }

    #[test]
    fn budget_and_overlap() {
        let paras: Vec<String> = (0..10).map(|i| format!("p{i} a b c d")).collect();
        let text = paras.join("\n\n");
        let c = chunk(
            &text,
            Kind::Text,
            ChunkParams {
                max_tokens: 12,
                overlap: 5,
            },
            &words,
        );
        assert!(c.len() > 3);
        for ch in &c {
            assert!(words(&ch.text) <= 12, "{ch:?}");
        }
        // each chunk after the first starts with the previous chunk's last paragraph
        for w in c.windows(2) {
            let last = w[0].text.rsplit("\n\n").next().expect("para");
            assert!(w[1].text.starts_with(last), "{:?} -> {:?}", w[0], w[1]);
        }
        assert_eq!(c.last().map(|c| c.line_end), Some(19));
    }

    #[test]
    fn headings_start_chunks_and_name_them() {
        let text = "# Guide\n\nintro text\n\n## Install\n\nrun it\n\n```\ncode\n\n# not a heading\n```\n\n## Use\n\nuse it";
        let c = chunk(text, Kind::Markdown, ChunkParams::default(), &words);
        let heads: Vec<&str> = c.iter().map(|c| c.heading.as_str()).collect();
        assert_eq!(heads, ["Guide", "Guide > Install", "Guide > Use"]);
        assert!(
            c[1].text.contains("# not a heading"),
            "fenced code stays whole"
        );
        assert_eq!(c[1].line_start, 5);
        assert!(c[2].embed_text().starts_with("Guide > Use\n"));
    }

    #[test]
    fn long_lines_split_at_words() {
        let line = (0..50)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let c = chunk(
            &line,
            Kind::Text,
            ChunkParams {
                max_tokens: 10,
                overlap: 0,
            },
            &words,
        );
        assert_eq!(c.len(), 5);
        assert!(c.iter().all(|c| c.line_start == 1 && c.line_end == 1));
        let joined: String = c
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(joined.split_whitespace().count(), 50);
    }
}
