//! The one place that maps a file into memory.
//!
//! `unsafe_code` is denied across the workspace; it is allowed here only,
//! for the single call to `Mmap::map`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::Mmap;

/// Map `file` read-only.
///
/// The file must be non-empty: mapping 0 bytes fails on Linux.
pub(crate) fn map_read_only(file: &File) -> io::Result<Mmap> {
    // SAFETY: `Mmap::map` is unsafe because another process could change or
    // truncate the file while it is mapped, which would change memory that
    // Rust code holds as `&[u8]` (or fault on access past a truncation). We
    // open the file read-only and map it read-only (MAP_PRIVATE, PROT_READ),
    // so this process never writes through the mapping; like llama.cpp, we
    // document that modifying a model file while llmos has it open is
    // undefined behaviour. Nothing else about the call can be unsound.
    unsafe { Mmap::map(file) }
}
