//! SentencePiece-style tokenization (llama.cpp's `llm_tokenizer_spm_session`):
//! start from single characters and repeatedly merge the adjacent pair whose
//! concatenation is the highest-scoring token; characters left that are no
//! token fall back to `<0xXX>` byte tokens.

use crate::tokenizer::Tokenizer;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Clone, Copy)]
struct Symbol {
    /// byte range in the text
    start: usize,
    len: usize,
    prev: isize,
    next: isize,
}

struct Bigram {
    score: f32,
    left: isize,
    right: isize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Higher score first; ties go to the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}

/// Appends the tokens of `text` (spaces already escaped to U+2581).
pub(crate) fn tokenize(tok: &Tokenizer, text: &str, out: &mut Vec<u32>) {
    let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
    let n_chars = text.chars().count() as isize;
    for (i, (start, c)) in text.char_indices().enumerate() {
        let i = i as isize;
        symbols.push(Symbol {
            start,
            len: c.len_utf8(),
            prev: i - 1,
            next: if i + 1 == n_chars { -1 } else { i + 1 },
        });
    }
    let mut queue = BinaryHeap::with_capacity(symbols.len());
    for i in 1..symbols.len() as isize {
        try_add_bigram(tok, text, &symbols, i - 1, i, &mut queue);
    }
    while let Some(b) = queue.pop() {
        let (l, r) = (b.left as usize, b.right as usize);
        let (ls, rs) = (symbols[l], symbols[r]);
        if ls.len == 0 || rs.len == 0 || ls.len + rs.len != b.size {
            continue;
        }
        symbols[l].len += rs.len;
        symbols[r].len = 0;
        symbols[l].next = rs.next;
        if let Ok(nx) = usize::try_from(rs.next) {
            symbols[nx].prev = b.left;
        }
        try_add_bigram(tok, text, &symbols, symbols[l].prev, b.left, &mut queue);
        try_add_bigram(tok, text, &symbols, b.left, symbols[l].next, &mut queue);
    }
    let mut i = if symbols.is_empty() { -1 } else { 0 };
    while let Ok(iu) = usize::try_from(i) {
        let s = symbols[iu];
        let piece = text.get(s.start..s.start + s.len).unwrap_or("");
        match tok.token_id(piece) {
            Some(id) => out.push(id),
            // Merged symbols are always tokens, so this is one character that is
            // not: spell it in byte tokens. llama.cpp throws when a byte has no
            // token; we fall back to the unknown token.
            None => {
                for &b in piece.as_bytes() {
                    if let Some(id) = tok.byte_tokens[usize::from(b)].or(tok.unk) {
                        out.push(id);
                    }
                }
            }
        }
        i = s.next;
    }
}

fn try_add_bigram(
    tok: &Tokenizer,
    text: &str,
    symbols: &[Symbol],
    left: isize,
    right: isize,
    queue: &mut BinaryHeap<Bigram>,
) {
    let (Ok(l), Ok(r)) = (usize::try_from(left), usize::try_from(right)) else {
        return;
    };
    let (ls, rs) = (symbols[l], symbols[r]);
    let size = ls.len + rs.len;
    let Some(piece) = text.get(ls.start..ls.start + size) else {
        return;
    };
    if let Some(id) = tok.token_id(piece) {
        let score = tok.scores.get(id as usize).copied().unwrap_or(0.0);
        queue.push(Bigram {
            score,
            left,
            right,
            size,
        });
    }
}
