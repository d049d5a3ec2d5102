//! Byte-level BPE (llama.cpp's `llm_tokenizer_bpe_session`).
//!
//! Merges are looked up by the ids of the two symbols, not their strings: every
//! string a merge mentions is interned (vocabulary strings keep their token id;
//! the rare merge string that is no token gets an id past the vocabulary).
//! String equality and id equality are then the same thing, so the result is
//! llama.cpp's, without building strings in the merge loop.

use crate::hash::FxMap;
use crate::pretokenize::PreTokenizer;
use crate::strings::StringTable;
use crate::tokenizer::Tokenizer;
use crate::unicode::byte_to_char_table;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Interned id meaning "this string is in no token and no merge".
const NONE: u32 = u32::MAX;

pub(crate) struct Bpe {
    pretok: PreTokenizer,
    /// (left id, right id) -> (rank, merged id)
    merges: FxMap<(u32, u32), (u32, u32)>,
    /// interned id of each byte's GPT-2 character
    byte_sym: [u32; 256],
    byte_char: [char; 256],
    n_vocab: u32,
    ignore_merges: bool,
}

impl std::fmt::Debug for Bpe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bpe")
            .field("merges", &self.merges.len())
            .field("ignore_merges", &self.ignore_merges)
            .finish()
    }
}

#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    /// byte range in the word
    start: u32,
    len: u32,
    prev: i32,
    next: i32,
}

impl Bpe {
    pub(crate) fn new(
        pretok: PreTokenizer,
        merge_lines: &[&str],
        strings: &mut StringTable,
        n_vocab: u32,
        ignore_merges: bool,
    ) -> Bpe {
        let mut merges = FxMap::with_capacity_and_hasher(merge_lines.len(), Default::default());
        let mut joined = String::new();
        for (rank, line) in merge_lines.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte; a line
            // without one names the pair ("", "") that never matches.
            let Some(pos) = line.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1) else {
                continue;
            };
            let (left, right) = (&line[..pos], &line[pos + 1..]);
            let l = strings.intern(left);
            let r = strings.intern(right);
            joined.clear();
            joined.push_str(left);
            joined.push_str(right);
            let m = strings.intern(&joined);
            // the first rank of a repeated pair wins (unordered_map::emplace)
            merges.entry((l, r)).or_insert((rank as u32, m));
        }
        let byte_char = byte_to_char_table();
        let mut byte_sym = [NONE; 256];
        for (slot, c) in byte_sym.iter_mut().zip(byte_char) {
            *slot = strings.find(c.encode_utf8(&mut [0; 4])).unwrap_or(NONE);
        }
        Bpe {
            pretok,
            merges,
            byte_sym,
            byte_char,
            n_vocab,
            ignore_merges,
        }
    }

    /// Appends the tokens of one text fragment.
    pub(crate) fn tokenize(&self, tok: &Tokenizer, text: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<Symbol> = Vec::new();
        let mut heap: BinaryHeap<Pair> = BinaryHeap::new();
        let mut encoded = String::new();
        for range in self.pretok.split(text) {
            let word = &text.as_bytes()[range];
            if self.ignore_merges {
                encoded.clear();
                encoded.extend(word.iter().map(|&b| self.byte_char[usize::from(b)]));
                if let Some(id) = tok.token_id(&encoded) {
                    out.push(id);
                    continue;
                }
            }
            symbols.clear();
            heap.clear();
            let n = word.len() as i32;
            symbols.extend(word.iter().enumerate().map(|(i, &b)| {
                let i = i as i32;
                Symbol {
                    id: self.byte_sym[usize::from(b)],
                    start: i as u32,
                    len: 1,
                    prev: i - 1,
                    next: if i + 1 == n { -1 } else { i + 1 },
                }
            }));
            for i in 1..symbols.len() {
                self.push_pair(&symbols, i as i32 - 1, i as i32, &mut heap);
            }
            // Lowest rank first; ties go to the leftmost pair.
            while let Some(Pair {
                left,
                right,
                left_len,
                right_len,
                ..
            }) = heap.pop()
            {
                let (l, ru) = (left as usize, right as usize);
                // Stale: a side has merged since the pair was queued.
                if symbols[l].len != left_len
                    || symbols[ru].len != right_len
                    || left_len == 0
                    || right_len == 0
                {
                    continue;
                }
                let Some(&(_, merged)) = self.merges.get(&(symbols[l].id, symbols[ru].id)) else {
                    continue;
                };
                symbols[l].id = merged;
                symbols[l].len += symbols[ru].len;
                symbols[ru].len = 0;
                symbols[l].next = symbols[ru].next;
                if let Ok(nx) = usize::try_from(symbols[ru].next) {
                    symbols[nx].prev = left;
                }
                self.push_pair(&symbols, symbols[l].prev, left, &mut heap);
                self.push_pair(&symbols, left, symbols[l].next, &mut heap);
            }
            for s in symbols.iter().filter(|s| s.len > 0) {
                if s.id < self.n_vocab {
                    out.push(s.id);
                    continue;
                }
                // Not a token: llama.cpp looks up each byte of the encoded text as
                // a one-byte token, which only printable ASCII can be.
                let bytes = &word[s.start as usize..(s.start + s.len) as usize];
                for &b in bytes {
                    if (0x21..=0x7E).contains(&b) {
                        if let Some(id) = tok.token_id(char::from(b).encode_utf8(&mut [0; 4])) {
                            out.push(id);
                        }
                    }
                }
            }
        }
    }

    fn push_pair(&self, symbols: &[Symbol], left: i32, right: i32, heap: &mut BinaryHeap<Pair>) {
        let (Ok(l), Ok(r)) = (usize::try_from(left), usize::try_from(right)) else {
            return;
        };
        let (sl, sr) = (symbols[l], symbols[r]);
        if let Some(&(rank, _)) = self.merges.get(&(sl.id, sr.id)) {
            heap.push(Pair {
                rank: Reverse(rank),
                left_first: Reverse(left),
                left,
                right,
                left_len: sl.len,
                right_len: sr.len,
            });
        }
    }
}

/// A queued merge. Field order is the priority: lowest rank, then leftmost.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Pair {
    rank: Reverse<u32>,
    left_first: Reverse<i32>,
    left: i32,
    right: i32,
    left_len: u32,
    right_len: u32,
}
