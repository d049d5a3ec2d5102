//! llmos-text: tokenizers built from GGUF metadata, streaming detokenization,
//! and chat templates.
//!
//! The design goal is token ids identical to llama.cpp's for the same GGUF:
//! prompts, KV-cache prefixes and golden tests then agree with the reference.
//! So the tokenizer follows llama.cpp's `llama-vocab.cpp` step by step (special
//! token partitioning, pre-tokenizer regexes and their hand-written matchers,
//! BPE merge order, SentencePiece bigram scoring, byte fallback, defaults per
//! vocabulary type) and classifies code points with the same Unicode 15.1
//! table; the tests compare against ids llama.cpp produced.
//!
//! ```no_run
//! use llmos_gguf::GgufFile;
//! use llmos_text::{ChatTemplate, Message, StreamDecoder, Tokenizer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let gguf = GgufFile::open("model.gguf")?;
//! let tok = Tokenizer::from_gguf(&gguf)?;
//! let template = match ChatTemplate::from_gguf(&gguf)? {
//!     Some(t) => t,
//!     None => ChatTemplate::builtin("chatml")?,
//! };
//! let prompt = template.render(&[Message::new("user", "Hi!")], true, None)?;
//! let ids = tok.encode(&prompt, true, true);
//! let mut stream = StreamDecoder::new();
//! for &id in &ids {
//!     print!("{}", stream.push(&tok, id));
//! }
//! print!("{}", stream.finish());
//! # Ok(())
//! # }
//! ```

mod bpe;
mod chat;
mod detok;
mod error;
mod hash;
mod pre_types;
mod pretokenize;
mod spec;
mod spm;
mod stream;
mod strings;
mod tokenizer;
mod unicode;
mod unicode_table;

pub use chat::{ChatTemplate, Message};
pub use error::TextError;
pub use spec::{SpecialIds, TokenizerSpec};
pub use stream::StreamDecoder;
pub use tokenizer::Tokenizer;
