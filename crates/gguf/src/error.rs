//! The one error type of this crate.
//!
//! Read errors name the file (`<memory>` for [`crate::GgufFile::from_bytes`]),
//! the byte offset where the problem sits, and what was wrong, so that a user
//! holding a hex editor can find it.

use std::io;
use std::path::PathBuf;

use crate::GgmlType;

/// Everything that can go wrong reading or writing a GGUF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    // ---- Opening the file ------------------------------------------------
    #[error("cannot open GGUF file {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },

    #[error("cannot memory-map GGUF file {} ({len} bytes): {source}", path.display())]
    Map {
        path: PathBuf,
        len: u64,
        source: io::Error,
    },

    #[error("{}: not a regular file, cannot read it as GGUF", path.display())]
    NotAFile { path: PathBuf },

    #[error("{file}: file is empty (0 bytes); expected the GGUF magic at offset 0")]
    Empty { file: String },

    // ---- Header ----------------------------------------------------------
    #[error(
        "{file}: bad magic at offset 0: found bytes {} ({}), expected \"GGUF\" (47 47 55 46)",
        hex(found),
        printable(found)
    )]
    BadMagic { file: String, found: [u8; 4] },

    #[error(
        "{file}: unsupported GGUF version {version} at offset 4; llmos reads versions 2 and 3"
    )]
    UnsupportedVersion { file: String, version: u32 },

    #[error(
        "{file}: big-endian GGUF is not supported: version field at offset 4 reads {raw:#010x} \
         (version {} byte-swapped); convert the file to little-endian",
        raw.swap_bytes()
    )]
    BigEndian { file: String, raw: u32 },

    // ---- Structure -------------------------------------------------------
    #[error(
        "{file}: truncated at offset {offset} reading {what} ({context}): \
         need {need} bytes, only {have} remain"
    )]
    Truncated {
        file: String,
        offset: u64,
        what: &'static str,
        context: String,
        need: u64,
        have: u64,
    },

    #[error(
        "{file}: {what} count {count} at offset {offset} is too large ({context}): \
         that needs at least {per_item} bytes each but only {remaining} bytes remain (truncated or corrupt file)"
    )]
    CountTooLarge {
        file: String,
        offset: u64,
        what: &'static str,
        context: String,
        count: u64,
        per_item: u64,
        remaining: u64,
    },

    #[error("{file}: invalid UTF-8 in {what} at offset {offset} ({context})")]
    InvalidUtf8 {
        file: String,
        offset: u64,
        what: &'static str,
        context: String,
    },

    #[error("{file}: unknown metadata value type {id} at offset {offset} ({context}); known types are 0..=12")]
    UnknownValueType {
        file: String,
        offset: u64,
        context: String,
        id: u32,
    },

    #[error("{file}: bool value byte {byte} at offset {offset} is neither 0 nor 1 ({context})")]
    InvalidBool {
        file: String,
        offset: u64,
        context: String,
        byte: u8,
    },

    #[error("{file}: arrays nested deeper than {limit} levels at offset {offset} ({context})")]
    NestingTooDeep {
        file: String,
        offset: u64,
        context: String,
        limit: u32,
    },

    #[error("{file}: duplicate metadata key {key:?} at offset {offset}")]
    DuplicateKey {
        file: String,
        offset: u64,
        key: String,
    },

    #[error("{file}: duplicate tensor name {name:?} at offset {offset}")]
    DuplicateTensor {
        file: String,
        offset: u64,
        name: String,
    },

    #[error(
        "{file}: bad alignment: general.alignment at offset {offset} is {value}; \
         it must be an unsigned integer that is a nonzero power of two"
    )]
    BadAlignment {
        file: String,
        offset: u64,
        value: String,
    },

    #[error("{file}: tensor {name:?} at offset {offset} has {n_dims} dims; at most 4 are allowed")]
    TooManyDims {
        file: String,
        offset: u64,
        name: String,
        n_dims: u32,
    },

    #[error("{file}: tensor {name:?}: type id {id} at offset {offset} is not a known GGML type")]
    UnknownTensorType {
        file: String,
        offset: u64,
        name: String,
        id: u32,
    },

    #[error("{file}: tensor {name:?} (info at offset {offset}) has dims {dims:?} of type {ty}: {problem}")]
    BadTensorShape {
        file: String,
        offset: u64,
        name: String,
        dims: Vec<u64>,
        ty: GgmlType,
        problem: String,
    },

    #[error("{file}: size overflow at offset {offset}: {what}")]
    SizeOverflow {
        file: String,
        offset: u64,
        what: String,
    },

    #[error(
        "{file}: tensor {name:?} (info at offset {offset}): data offset {data_offset} \
         is not a multiple of the alignment {alignment}"
    )]
    MisalignedTensor {
        file: String,
        offset: u64,
        name: String,
        data_offset: u64,
        alignment: u64,
    },

    #[error(
        "{file}: tensor {name:?} (info at offset {offset}) is out of bounds: \
         its {size} bytes at file offset {start} end at {end}, past the file size {file_size}"
    )]
    TensorOutOfBounds {
        file: String,
        offset: u64,
        name: String,
        start: u64,
        size: u64,
        end: u64,
        file_size: u64,
    },

    // ---- Writing ---------------------------------------------------------
    #[error("GGUF writer: duplicate metadata key {key:?}")]
    WriterDuplicateKey { key: String },

    #[error("GGUF writer: duplicate tensor name {name:?}")]
    WriterDuplicateTensor { name: String },

    #[error("GGUF writer: {problem}")]
    WriterInvalid { problem: String },

    #[error("cannot write GGUF file {}: {op}: {source}", path.display())]
    Write {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
}

/// The magic bytes as hex, e.g. `47 47 4d 4c`.
fn hex(bytes: &[u8; 4]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(" ")
}

/// The magic bytes as text, with non-printable bytes as `.`.
fn printable(bytes: &[u8; 4]) -> String {
    let s: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{s:?}")
}
