//! `GgufFile`: a parsed header plus the bytes it describes.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::parse::{self, Header};
use crate::{map, GgmlType, GgufError, Value};

/// Name used in errors for files that came from [`GgufFile::from_bytes`].
pub const MEMORY_NAME: &str = "<memory>";

/// One tensor's entry in the GGUF header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous (row) length.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Start of the data, relative to [`GgufFile::data_offset`].
    pub offset: u64,
    /// Bytes of data, from the dims and the type's block geometry.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements: the product of `dims` (1 for no dims). Exact for
    /// infos from a [`GgufFile`], which checked it at open; saturates at
    /// `u64::MAX` for hand-built infos.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }
}

/// The bytes behind a `GgufFile`.
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An open GGUF file: validated header, metadata, tensor infos, and the
/// file's bytes (memory-mapped, or owned for [`GgufFile::from_bytes`]).
///
/// Opening checks every tensor's data range against the file, so
/// [`GgufFile::tensor_data`] needs no error path.
pub struct GgufFile {
    path: Option<PathBuf>,
    bytes: Bytes,
    header: Header,
}

impl GgufFile {
    /// Map the file at `path` read-only and parse its header.
    ///
    /// Modifying or truncating the file while it is open is undefined
    /// behaviour (as in llama.cpp); llmos never writes to model files.
    ///
    /// # Errors
    /// [`GgufError::Open`] / [`GgufError::Map`] / [`GgufError::NotAFile`]
    /// for I/O failures, [`GgufError::Empty`] for a 0-byte file, and any
    /// parse error, each naming the path.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let open_err = |source| GgufError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        if !meta.is_file() {
            return Err(GgufError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let name = path.display().to_string();
        if meta.len() == 0 {
            return Err(GgufError::Empty { file: name });
        }
        let mmap = map::map_read_only(&file).map_err(|source| GgufError::Map {
            path: path.to_path_buf(),
            len: meta.len(),
            source,
        })?;
        let header = parse::parse(&mmap, &name)?;
        Ok(GgufFile {
            path: Some(path.to_path_buf()),
            bytes: Bytes::Mapped(mmap),
            header,
        })
    }

    /// Parse a GGUF file held in memory; errors name it `<memory>`.
    ///
    /// Tensor data is only as aligned as `bytes`' allocation.
    ///
    /// # Errors
    /// Any parse error.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        let header = parse::parse(&bytes, MEMORY_NAME)?;
        Ok(GgufFile {
            path: None,
            bytes: Bytes::Owned(bytes),
            header,
        })
    }

    /// The path given to [`GgufFile::open`]; `None` for `from_bytes`.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// Alignment of the data section and of every tensor offset.
    pub fn alignment(&self) -> u64 {
        self.header.alignment
    }

    /// File offset where the data section starts.
    pub fn data_offset(&self) -> u64 {
        self.header.data_offset
    }

    /// Size of the whole file in bytes.
    pub fn file_size(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }

    /// All metadata, in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.header.metadata
    }

    /// The value for `key` (hash lookup).
    pub fn get(&self, key: &str) -> Option<&Value> {
        let &i = self.header.metadata_index.get(key)?;
        self.header.metadata.get(i).map(|(_, v)| v)
    }

    /// The value for `key` if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// The value for `key` if it is a non-negative integer of any type.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    /// The value for `key` if it is an integer that fits `i64`.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_i64()
    }

    /// The value for `key` if it is a float or an integer.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    /// The value for `key` if it is a bool.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    /// The value for `key` if it is an array.
    pub fn get_array(&self, key: &str) -> Option<&[Value]> {
        self.get(key)?.as_array()
    }

    /// `general.architecture`, e.g. "llama".
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    /// The tensor named `name` (hash lookup).
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        let &i = self.header.tensor_index.get(name)?;
        self.header.tensors.get(i)
    }

    /// The `t.n_bytes` bytes of tensor `t`'s data. Its start is aligned to
    /// [`GgufFile::alignment`] relative to the file start (a mapped file
    /// starts on a page boundary).
    ///
    /// # Panics
    /// If `t` is not one of this file's [`GgufFile::tensors`] and its range
    /// lies outside the file; ranges of this file's tensors were checked at
    /// open.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let bytes = self.bytes.as_slice();
        let range = self
            .header
            .data_offset
            .checked_add(t.offset)
            .and_then(|start| Some(start..start.checked_add(t.n_bytes)?))
            .and_then(|r| Some(usize::try_from(r.start).ok()?..usize::try_from(r.end).ok()?));
        match range.and_then(|r| bytes.get(r)) {
            Some(data) => data,
            None => panic!(
                "tensor_data: tensor {:?} (offset {}, {} bytes) is not in this GGUF file ({} bytes, data at {}); \
                 pass a TensorInfo from this file's tensors()",
                t.name,
                t.offset,
                t.n_bytes,
                bytes.len(),
                self.header.data_offset
            ),
        }
    }
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.header.version)
            .field("file_size", &self.file_size())
            .field("metadata", &self.header.metadata.len())
            .field("tensors", &self.header.tensors.len())
            .finish()
    }
}
