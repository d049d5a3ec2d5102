//! Streaming detokenization that never splits a UTF-8 character.

use crate::tokenizer::Tokenizer;

/// Turns tokens into text one at a time. A token may end inside a multi-byte
/// character (byte-fallback tokens spell an emoji in four tokens); those bytes
/// wait until the character is complete, so every returned string is whole.
#[derive(Debug, Default, Clone)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    skip_special: bool,
}

impl StreamDecoder {
    /// A decoder that renders control tokens as their text.
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// A decoder that renders control tokens (e.g. `<|im_end|>`) as nothing.
    pub fn skipping_special() -> StreamDecoder {
        StreamDecoder {
            pending: Vec::new(),
            skip_special: true,
        }
    }

    /// Adds token `id`; returns the text that is now complete (maybe empty).
    /// Bytes that can never form a character come out as U+FFFD.
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        if self.skip_special && tok.is_control(id) {
            return String::new();
        }
        self.pending.extend_from_slice(tok.token_bytes(id));
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // valid_up_to marks a char boundary, so this never fails
                    out.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        // an incomplete character at the end: keep it for later
                        None => {
                            rest = bad;
                            break;
                        }
                        Some(n) => {
                            out.push('\u{FFFD}');
                            rest = &bad[n..];
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }

    /// Whether bytes of an unfinished character are waiting.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Ends the stream: whatever is still waiting, as U+FFFD.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}
