//! Detokenization helpers: each token's bytes, and llama.cpp's clean-up of
//! spaces before punctuation.

use crate::strings::StringTable;
use crate::tokenizer::{ATTR_BYTE, ATTR_CONTROL, ATTR_NORMAL, ATTR_UNKNOWN, ATTR_USER_DEFINED};
use crate::unicode::byte_to_char_table;

/// The bytes each token detokenizes to, special tokens as their text
/// (llama.cpp's `token_to_piece(.., special = true)` cache).
pub(crate) fn build_pieces(
    strings: &StringTable,
    attrs: &[u16],
    is_bpe: bool,
) -> (Vec<u8>, Vec<u32>) {
    let byte_of_char = byte_level_decoder();
    let mut pieces = Vec::with_capacity(attrs.len() * 8);
    let mut at = Vec::with_capacity(attrs.len() + 1);
    for (i, &attr) in attrs.iter().enumerate() {
        let text = strings.get(i as u32).unwrap_or("");
        at.push(pieces.len() as u32);
        if attr & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED) != 0 {
            pieces.extend_from_slice(text.as_bytes());
        } else if attr & ATTR_NORMAL != 0 {
            if is_bpe {
                for c in text.chars() {
                    match byte_of_char(c) {
                        Some(b) => pieces.push(b),
                        None => {
                            // llama.cpp's llama_decode_text marks chars outside the byte alphabet
                            pieces.extend_from_slice(b"[UNK_BYTE_0x");
                            for b in c.encode_utf8(&mut [0; 4]).bytes() {
                                pieces.extend_from_slice(format!("{b:02x}").as_bytes());
                            }
                            pieces.extend_from_slice(text.as_bytes());
                            pieces.push(b']');
                        }
                    }
                }
            } else {
                for part in text.split('\u{2581}').enumerate() {
                    if part.0 > 0 {
                        pieces.push(b' ');
                    }
                    pieces.extend_from_slice(part.1.as_bytes());
                }
            }
        } else if attr & ATTR_BYTE != 0 {
            // "<0xXX>": strtol of the two hex digits, 0 when they are not hex
            let b = text
                .get(3..5)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .unwrap_or(0);
            pieces.push(b);
        }
    }
    at.push(pieces.len() as u32);
    (pieces, at)
}

/// Inverse of GPT-2's byte-to-unicode map.
fn byte_level_decoder() -> impl Fn(char) -> Option<u8> {
    let table = byte_to_char_table();
    let mut inverse = [None; 324];
    for (b, &c) in table.iter().enumerate() {
        if let Some(slot) = inverse.get_mut(c as usize) {
            *slot = u8::try_from(b).ok();
        }
    }
    move |c: char| inverse.get(c as usize).copied().flatten()
}

/// llama.cpp's `clean_spaces` passes over detokenized text: " ?" " !" " ." " ,"
/// lose the space, " ' " becomes "'", and " 's" " 'm" " 're" " 've" lose the space.
pub(crate) fn clean_up_spaces(t: &mut Vec<u8>) {
    // pass 1
    if t.len() > 1 {
        let mut w = 1;
        for i in 1..t.len() {
            let x = t[i];
            if t[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
                w -= 1;
            }
            t[w] = x;
            w += 1;
        }
        t.truncate(w);
    }
    // pass 2: " ' " -> "'"
    if t.len() > 1 {
        let n = t.len();
        let mut w = 1;
        let mut i = 1;
        while i < n {
            let x = t[i];
            if x == b'\'' && i + 1 < n && t[i - 1] == b' ' && t[i + 1] == b' ' {
                w -= 1;
                // skip the space after; llama.cpp zeroes it, which later reads see
                i += 1;
                t[i] = 0;
            }
            t[w] = x;
            w += 1;
            i += 1;
        }
        t.truncate(w);
    }
    // pass 3: contractions
    if t.len() > 1 {
        let n = t.len();
        let mut w = 1;
        for i in 1..n {
            let x = t[i];
            if t[i - 1] == b' ' && x == b'\'' && i + 1 < n {
                let x1 = t[i + 1];
                let x2 = t.get(i + 2).copied().filter(|_| i + 2 < n);
                let drop = matches!(x1, b's' | b'm')
                    || matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e')));
                if drop {
                    w -= 1;
                }
            }
            t[w] = x;
            w += 1;
        }
        t.truncate(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        let mut v = s.as_bytes().to_vec();
        clean_up_spaces(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn clean_up_spaces_like_llama_cpp() {
        assert_eq!(clean("Hello , world ! Ok ?"), "Hello, world! Ok?");
        assert_eq!(clean("a ' b"), "a'b");
        assert_eq!(clean("it 's we 're I 'm you 've"), "it's we're I'm you've");
        // " 't", " 'd" and " 'll" keep their space
        assert_eq!(clean("don 't I 'd they 'll"), "don 't I 'd they 'll");
        // llama.cpp zeroes the space it skips in pass 2; the next quote then
        // sees no space before it
        assert_eq!(clean("a ' ' b"), "a'' b");
        assert_eq!(clean(""), "");
        assert_eq!(clean(" "), " ");
    }

    #[test]
    fn byte_level_pieces_decode_gpt2_alphabet() {
        let mut strings = StringTable::with_capacity(4, 16);
        for t in ["Ġhi", "Ċ", "<|x|>", "<0x41>"] {
            strings.push(t);
        }
        let attrs = [ATTR_NORMAL, ATTR_NORMAL, ATTR_CONTROL, ATTR_BYTE];
        let (pieces, at) = build_pieces(&strings, &attrs, true);
        let piece = |i: usize| &pieces[at[i] as usize..at[i + 1] as usize];
        assert_eq!(piece(0), b" hi");
        assert_eq!(piece(1), b"\n");
        assert_eq!(piece(2), b"<|x|>");
        assert_eq!(piece(3), b"A");
    }
}
