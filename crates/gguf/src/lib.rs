//! llmos-gguf: read GGUF files over mmap.
mod types;
pub use types::{GgmlType, QK_K};
