//! `GgufWriter`: build a GGUF v3 file in memory or on disk.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::parse::{DEFAULT_ALIGNMENT, MAGIC, MAX_ARRAY_DEPTH, MAX_DIMS};
use crate::value::type_id;
use crate::{GgmlType, GgufError, Value};

/// The version this writer produces.
pub const WRITE_VERSION: u32 = 3;

const ALIGNMENT_KEY: &str = "general.alignment";

/// Builds a GGUF v3 file: metadata in insertion order, then tensor infos,
/// then each tensor's data padded to the alignment.
///
/// Everything is validated as it is added, so writing can fail only on I/O.
///
/// ```
/// use llmos_gguf::{GgmlType, GgufFile, GgufWriter, Value};
/// # fn main() -> Result<(), llmos_gguf::GgufError> {
/// let mut w = GgufWriter::new();
/// w.add_metadata("general.architecture", Value::String("llama".into()))?;
/// w.add_tensor("x", &[2], GgmlType::F32, vec![0u8; 8])?;
/// let f = GgufFile::from_bytes(w.to_bytes())?;
/// assert_eq!(f.architecture(), Some("llama"));
/// assert_eq!(f.tensor_data(&f.tensors()[0]), &[0u8; 8]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GgufWriter {
    alignment: u64,
    metadata: Vec<(String, Value)>,
    keys: HashSet<String>,
    tensors: Vec<PendingTensor>,
    names: HashSet<String>,
}

#[derive(Debug, Clone)]
struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    data: Vec<u8>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// Gives each temp file of this process a distinct name.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl GgufWriter {
    /// An empty file with the default alignment of 32.
    pub fn new() -> Self {
        GgufWriter {
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            keys: HashSet::new(),
            tensors: Vec::new(),
            names: HashSet::new(),
        }
    }

    /// The alignment the data section will use.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Use `alignment` for the data section, recorded as the u32
    /// `general.alignment` (replacing any value added before).
    ///
    /// # Errors
    /// [`GgufError::WriterInvalid`] unless `alignment` is a nonzero power of
    /// two that fits in u32.
    pub fn set_alignment(&mut self, alignment: u64) -> Result<&mut Self, GgufError> {
        let a = u32::try_from(alignment)
            .ok()
            .filter(|a| a.is_power_of_two())
            .ok_or_else(|| GgufError::WriterInvalid {
                problem: format!(
                    "alignment {alignment} is not a nonzero power of two that fits u32"
                ),
            })?;
        self.alignment = alignment;
        match self.metadata.iter_mut().find(|(k, _)| k == ALIGNMENT_KEY) {
            Some((_, v)) => *v = Value::U32(a),
            None => {
                self.keys.insert(ALIGNMENT_KEY.into());
                self.metadata.push((ALIGNMENT_KEY.into(), Value::U32(a)));
            }
        }
        Ok(self)
    }

    /// Add one metadata entry. Adding `general.alignment` also sets the
    /// alignment used for the data.
    ///
    /// # Errors
    /// [`GgufError::WriterDuplicateKey`] if `key` was added before;
    /// [`GgufError::WriterInvalid`] if an array mixes element types or nests
    /// deeper than the reader accepts, or `general.alignment` is not an
    /// unsigned power of two.
    pub fn add_metadata(
        &mut self,
        key: impl Into<String>,
        value: Value,
    ) -> Result<&mut Self, GgufError> {
        let key = key.into();
        if self.keys.contains(&key) {
            return Err(GgufError::WriterDuplicateKey { key });
        }
        check_value(&key, &value, 0)?;
        if key == ALIGNMENT_KEY {
            match value.as_u64() {
                Some(a) if a.is_power_of_two() => self.alignment = a,
                _ => {
                    return Err(GgufError::WriterInvalid {
                        problem: format!(
                            "{ALIGNMENT_KEY} = {} {value} is not an unsigned nonzero power of two",
                            value.type_name()
                        ),
                    })
                }
            }
        }
        self.keys.insert(key.clone());
        self.metadata.push((key, value));
        Ok(self)
    }

    /// Add a tensor. `dims` are in ggml order (`dims[0]` is the row length);
    /// `data` must be exactly the size the dims and type imply.
    ///
    /// # Errors
    /// [`GgufError::WriterDuplicateTensor`] for a repeated name;
    /// [`GgufError::WriterInvalid`] for more than 4 dims, a row length that
    /// is not whole blocks of `ty`, or a `data` length that does not match.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> Result<&mut Self, GgufError> {
        let name = name.into();
        if self.names.contains(&name) {
            return Err(GgufError::WriterDuplicateTensor { name });
        }
        let invalid = |problem: String| GgufError::WriterInvalid {
            problem: format!("tensor {name:?} dims {dims:?} type {ty}: {problem}"),
        };
        if dims.len() > MAX_DIMS as usize {
            return Err(invalid(format!("{} dims, at most {MAX_DIMS}", dims.len())));
        }
        if dims.iter().any(|&d| d > i64::MAX as u64) {
            return Err(invalid("a dimension exceeds i64::MAX".into()));
        }
        let row = dims.first().copied().unwrap_or(1);
        if row % ty.block_size() as u64 != 0 {
            return Err(invalid(format!(
                "row length {row} is not a multiple of the block size {}",
                ty.block_size()
            )));
        }
        let expected = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .and_then(|n| ty.bytes_for(n))
            .ok_or_else(|| invalid("size overflows u64".into()))?;
        if data.len() as u64 != expected {
            return Err(invalid(format!(
                "data is {} bytes, expected {expected}",
                data.len()
            )));
        }
        self.names.insert(name.clone());
        self.tensors.push(PendingTensor {
            name,
            dims: dims.to_vec(),
            ty,
            data,
        });
        Ok(self)
    }

    /// The whole file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    /// Stream the file to `w`.
    ///
    /// # Errors
    /// Whatever `w` returns.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut w = Counting { inner: w, pos: 0 };
        w.put(&MAGIC)?;
        w.put(&WRITE_VERSION.to_le_bytes())?;
        w.put(&(self.tensors.len() as u64).to_le_bytes())?;
        w.put(&(self.metadata.len() as u64).to_le_bytes())?;
        let mut buf = Vec::new();
        for (key, value) in &self.metadata {
            buf.clear();
            put_string(&mut buf, key);
            buf.extend_from_slice(&value.type_id().to_le_bytes());
            put_value(&mut buf, value);
            w.put(&buf)?;
        }
        // Offsets are sums of in-memory buffer lengths padded to a u32
        // alignment, so they cannot overflow u64.
        let mut offset = 0u64;
        for t in &self.tensors {
            buf.clear();
            put_string(&mut buf, &t.name);
            buf.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                buf.extend_from_slice(&d.to_le_bytes());
            }
            buf.extend_from_slice(&t.ty.id().to_le_bytes());
            buf.extend_from_slice(&offset.to_le_bytes());
            w.put(&buf)?;
            offset = (offset + t.data.len() as u64).next_multiple_of(self.alignment);
        }
        w.pad_to(self.alignment)?;
        for t in &self.tensors {
            w.put(&t.data)?;
            w.pad_to(self.alignment)?;
        }
        Ok(())
    }

    /// Write the file to `path` atomically: write a temp file in the same
    /// directory, fsync it, rename it over `path`, fsync the directory.
    /// On failure the temp file is removed and `path` is untouched.
    ///
    /// # Errors
    /// [`GgufError::Write`] naming the path and the step that failed.
    pub fn write_to_path(&self, path: impl AsRef<Path>) -> Result<(), GgufError> {
        let path = path.as_ref();
        let err = |op, source| GgufError::Write {
            path: path.to_path_buf(),
            op,
            source,
        };
        let file_name = path.file_name().ok_or_else(|| {
            err(
                "split path",
                io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
            )
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{}",
            file_name.to_string_lossy(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = self
            .write_temp(&tmp)
            .and_then(|()| fs::rename(&tmp, path).map_err(|e| ("rename temp file into place", e)));
        if let Err((op, source)) = written {
            // Best effort: the original error is the one worth reporting.
            let _ = fs::remove_file(&tmp);
            return Err(err(op, source));
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| err("fsync directory", e))
    }

    fn write_temp(&self, tmp: &Path) -> Result<(), (&'static str, io::Error)> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(|e| ("create temp file", e))?;
        let mut w = BufWriter::new(file);
        self.write_to(&mut w).map_err(|e| ("write temp file", e))?;
        let file = w
            .into_inner()
            .map_err(|e| ("flush temp file", e.into_error()))?;
        file.sync_all().map_err(|e| ("fsync temp file", e))
    }
}

/// A writer that knows how many bytes went through it, for padding.
struct Counting<'w, W: Write> {
    inner: &'w mut W,
    pos: u64,
}

impl<W: Write> Counting<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.pos += bytes.len() as u64;
        self.inner.write_all(bytes)
    }

    /// Write zeros up to the next multiple of `align`.
    fn pad_to(&mut self, align: u64) -> io::Result<()> {
        const ZEROS: [u8; 64] = [0; 64];
        let mut n = self.pos.next_multiple_of(align) - self.pos;
        while n > 0 {
            let k = n.min(ZEROS.len() as u64);
            self.put(&ZEROS[..k as usize])?;
            n -= k;
        }
        Ok(())
    }
}

/// Reject values the format cannot hold: arrays mixing element types, and
/// nesting deeper than the reader accepts.
fn check_value(key: &str, value: &Value, depth: u32) -> Result<(), GgufError> {
    let Value::Array(items) = value else {
        return Ok(());
    };
    if depth >= MAX_ARRAY_DEPTH {
        return Err(GgufError::WriterInvalid {
            problem: format!("key {key:?}: arrays nested deeper than {MAX_ARRAY_DEPTH} levels"),
        });
    }
    if let Some(first) = items.first() {
        for (i, item) in items.iter().enumerate() {
            if item.type_id() != first.type_id() {
                return Err(GgufError::WriterInvalid {
                    problem: format!(
                        "key {key:?}: array mixes types: item 0 is {}, item {i} is {}",
                        first.type_name(),
                        item.type_name()
                    ),
                });
            }
            check_value(key, item, depth + 1)?;
        }
    }
    Ok(())
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// The value's payload (its type id is written by the caller).
fn put_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I8(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => buf.push(u8::from(*v)),
        Value::String(s) => put_string(buf, s),
        Value::U64(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::Array(items) => {
            // An empty array still needs an element type; u8 is as good as any.
            let elem = items.first().map_or(type_id::U8, Value::type_id);
            buf.extend_from_slice(&elem.to_le_bytes());
            buf.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(buf, item);
            }
        }
    }
}
