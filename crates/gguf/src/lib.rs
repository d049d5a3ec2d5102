//! llmos-gguf: read GGUF model files over mmap, and write them.
//!
//! # Design
//! [`GgufFile::open`] maps the file read-only and parses the whole header
//! (metadata and tensor infos) up front into owned Rust values, validating
//! every count, size and tensor range against the file size. After that,
//! lookups are hash-map hits and [`GgufFile::tensor_data`] is a slice of the
//! mapping with no error path: a model loader borrows weights straight from
//! the page cache without copying them.
//!
//! The parser never trusts a count: before it allocates room for N items it
//! checks that N items of the smallest possible encoding fit in the bytes
//! that remain, so a header claiming 2^60 entries fails with
//! [`GgufError::CountTooLarge`] instead of aborting. Every error names the
//! file, the byte offset and the problem.
//!
//! Only GGUF v2 and v3, little-endian, are read. [`GgufWriter`] writes v3.
//!
//! ```
//! use llmos_gguf::{GgmlType, GgufFile, GgufWriter, Value};
//! # fn main() -> Result<(), llmos_gguf::GgufError> {
//! let mut w = GgufWriter::new();
//! w.add_metadata("general.architecture", Value::String("llama".into()))?
//!     .add_metadata("llama.block_count", Value::U32(2))?
//!     .add_tensor("output_norm.weight", &[4], GgmlType::F32, vec![0; 16])?;
//! let file = GgufFile::from_bytes(w.to_bytes())?;
//! assert_eq!(file.get_u64("llama.block_count"), Some(2));
//! let t = file.tensor("output_norm.weight").expect("written above");
//! assert_eq!(file.tensor_data(t).len(), 16);
//! # Ok(()) }
//! ```
mod error;
mod file;
mod map;
mod parse;
mod types;
mod value;
mod writer;

pub use error::GgufError;
pub use file::{GgufFile, TensorInfo, MEMORY_NAME};
pub use parse::{DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_DIMS};
pub use types::{GgmlType, QK_K};
pub use value::Value;
pub use writer::{GgufWriter, WRITE_VERSION};

#[cfg(test)]
mod tests {
    /// Loaders share one open file across threads, and binaries wrap the
    /// error in `anyhow`: both need these bounds.
    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<crate::GgufFile>();
        check::<crate::GgufError>();
        check::<crate::Value>();
        check::<crate::GgufWriter>();
    }
}
