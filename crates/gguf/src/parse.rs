//! Parse the GGUF header (metadata and tensor infos) from a byte slice.
//!
//! Layout (GGUF v2/v3, little-endian):
//! magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//! | kv_count × (string key, u32 type, value)
//! | tensor_count × (string name, u32 n_dims, n_dims × u64 dim, u32 type, u64 offset)
//! | padding to `general.alignment` | tensor data.
//!
//! Every count is checked against the bytes that remain before anything is
//! allocated for it, and every size is computed with checked arithmetic, so a
//! hostile header fails with an error instead of an abort or a panic.

use std::collections::HashMap;

use crate::value::type_id;
use crate::{GgmlType, GgufError, TensorInfo, Value};

/// `GGUF` as read from the first four bytes.
pub(crate) const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: u32 = 4;
/// Deepest nesting of arrays inside arrays we accept. Real files use one
/// level; the bound keeps recursion off the end of the stack.
pub const MAX_ARRAY_DEPTH: u32 = 16;

/// Smallest encodings, used to bound counts by the bytes that remain.
const MIN_KV_BYTES: u64 = 8 + 4 + 1; // empty key, type, 1-byte value
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8; // empty name, n_dims 0, type, offset

/// What the header says, fully validated against the file size.
#[derive(Debug)]
pub(crate) struct Header {
    pub version: u32,
    pub alignment: u64,
    pub data_offset: u64,
    pub metadata: Vec<(String, Value)>,
    pub metadata_index: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    pub tensor_index: HashMap<String, usize>,
}

/// Parse and validate the header of a GGUF file held in `buf`.
/// `file` names the file in errors.
pub(crate) fn parse(buf: &[u8], file: &str) -> Result<Header, GgufError> {
    if buf.is_empty() {
        return Err(GgufError::Empty { file: file.into() });
    }
    let mut c = Cursor {
        rest: buf,
        pos: 0,
        file,
        context: String::from("header"),
    };

    // ---- magic, version, counts
    let magic: [u8; 4] = c.array("magic")?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic {
            file: file.into(),
            found: magic,
        });
    }
    let version = c.u32("version")?;
    match version {
        2 | 3 => {}
        // A big-endian writer puts the small version number in the high bytes.
        v if v > 0xffff && v.swap_bytes() <= 0xffff => {
            return Err(GgufError::BigEndian {
                file: file.into(),
                raw: v,
            })
        }
        v => {
            return Err(GgufError::UnsupportedVersion {
                file: file.into(),
                version: v,
            })
        }
    }
    let tensor_count_at = c.pos;
    let tensor_count = c.u64("tensor count")?;
    c.check_count(
        tensor_count,
        MIN_TENSOR_INFO_BYTES,
        tensor_count_at,
        "tensor",
    )?;
    let kv_count_at = c.pos;
    let kv_count = c.u64("metadata count")?;
    let n_kv = c.check_count(kv_count, MIN_KV_BYTES, kv_count_at, "metadata key/value")?;

    // ---- metadata
    let mut metadata = Vec::with_capacity(n_kv);
    let mut metadata_index = HashMap::with_capacity(n_kv);
    let mut alignment = DEFAULT_ALIGNMENT;
    for i in 0..n_kv {
        let entry_at = c.pos;
        c.context = format!("metadata entry #{i}");
        let key = c.string("metadata key")?;
        c.context = format!("metadata key {key:?}");
        let ty = c.u32("metadata value type")?;
        let value = c.value(ty, c.pos - 4, 0)?;
        if metadata_index.contains_key(&key) {
            return Err(GgufError::DuplicateKey {
                file: file.into(),
                offset: entry_at as u64,
                key,
            });
        }
        if key == "general.alignment" {
            alignment = match value.as_u64() {
                Some(a) if a.is_power_of_two() => a,
                _ => {
                    return Err(GgufError::BadAlignment {
                        file: file.into(),
                        offset: entry_at as u64,
                        value: format!("{} {value}", value.type_name()),
                    })
                }
            };
        }
        metadata_index.insert(key.clone(), i);
        metadata.push((key, value));
    }

    // ---- tensor infos
    c.context = String::from("tensor infos");
    let n_tensors = c.check_count(
        tensor_count,
        MIN_TENSOR_INFO_BYTES,
        tensor_count_at,
        "tensor",
    )?;
    let mut tensors = Vec::with_capacity(n_tensors);
    let mut info_offsets = Vec::with_capacity(n_tensors);
    let mut tensor_index = HashMap::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let info_at = c.pos;
        c.context = format!("tensor info #{i}");
        let t = c.tensor_info()?;
        if tensor_index.contains_key(&t.name) {
            return Err(GgufError::DuplicateTensor {
                file: file.into(),
                offset: info_at as u64,
                name: t.name,
            });
        }
        tensor_index.insert(t.name.clone(), i);
        tensors.push(t);
        info_offsets.push(info_at as u64);
    }

    // ---- data section: starts at the next multiple of the alignment
    let header_end = c.pos as u64;
    let data_offset = header_end
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| GgufError::SizeOverflow {
            file: file.into(),
            offset: header_end,
            what: format!("data section start {header_end} rounded up to alignment {alignment}"),
        })?;
    let file_size = buf.len() as u64;
    for (t, &info_at) in tensors.iter().zip(&info_offsets) {
        if t.offset % alignment != 0 {
            return Err(GgufError::MisalignedTensor {
                file: file.into(),
                offset: info_at,
                name: t.name.clone(),
                data_offset: t.offset,
                alignment,
            });
        }
        let overflow = || GgufError::SizeOverflow {
            file: file.into(),
            offset: info_at,
            what: format!(
                "tensor {:?}: data section start {data_offset} + offset {} + size {}",
                t.name, t.offset, t.n_bytes
            ),
        };
        let start = data_offset.checked_add(t.offset).ok_or_else(overflow)?;
        let end = start.checked_add(t.n_bytes).ok_or_else(overflow)?;
        if end > file_size {
            return Err(GgufError::TensorOutOfBounds {
                file: file.into(),
                offset: info_at,
                name: t.name.clone(),
                start,
                size: t.n_bytes,
                end,
                file_size,
            });
        }
    }

    Ok(Header {
        version,
        alignment,
        data_offset,
        metadata,
        metadata_index,
        tensors,
        tensor_index,
    })
}

/// A read position in the file with the context used in error messages.
struct Cursor<'a> {
    /// The unread bytes.
    rest: &'a [u8],
    /// Offset of `rest[0]` in the file.
    pos: usize,
    file: &'a str,
    /// What is being read, e.g. `metadata key "general.name"`.
    context: String,
}

impl<'a> Cursor<'a> {
    fn truncated(&self, what: &'static str, need: u64) -> GgufError {
        GgufError::Truncated {
            file: self.file.into(),
            offset: self.pos as u64,
            what,
            context: self.context.clone(),
            need,
            have: self.rest.len() as u64,
        }
    }

    /// Take the next `n` bytes.
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], GgufError> {
        match usize::try_from(n) {
            Ok(len) if len <= self.rest.len() => {
                let (head, tail) = self.rest.split_at(len);
                self.rest = tail;
                self.pos += len;
                Ok(head)
            }
            _ => Err(self.truncated(what, n)),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Check that `count` items of at least `per_item` bytes each can fit in
    /// what remains, so that allocating `count` slots is bounded by the file.
    fn check_count(
        &self,
        count: u64,
        per_item: u64,
        count_at: usize,
        what: &'static str,
    ) -> Result<usize, GgufError> {
        let remaining = self.rest.len() as u64;
        let fits = count
            .checked_mul(per_item)
            .is_some_and(|need| need <= remaining);
        match usize::try_from(count) {
            Ok(n) if fits => Ok(n),
            _ => Err(GgufError::CountTooLarge {
                file: self.file.into(),
                offset: count_at as u64,
                what,
                context: self.context.clone(),
                count,
                per_item,
                remaining,
            }),
        }
    }

    /// A u64 length followed by that many bytes of UTF-8.
    fn string(&mut self, what: &'static str) -> Result<String, GgufError> {
        let len = self.u64(what)?;
        let at = self.pos;
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(GgufError::InvalidUtf8 {
                file: self.file.into(),
                offset: (at + e.valid_up_to()) as u64,
                what,
                context: self.context.clone(),
            }),
        }
    }

    fn bool(&mut self) -> Result<bool, GgufError> {
        let [b] = self.array("bool value")?;
        self.decode_bool(b, self.pos - 1)
    }

    fn decode_bool(&self, b: u8, at: usize) -> Result<bool, GgufError> {
        match b {
            0 => Ok(false),
            1 => Ok(true),
            byte => Err(GgufError::InvalidBool {
                file: self.file.into(),
                offset: at as u64,
                context: self.context.clone(),
                byte,
            }),
        }
    }

    fn unknown_type(&self, id: u32, at: usize) -> GgufError {
        GgufError::UnknownValueType {
            file: self.file.into(),
            offset: at as u64,
            context: self.context.clone(),
            id,
        }
    }

    /// One value of type `ty` (read at offset `ty_at`).
    fn value(&mut self, ty: u32, ty_at: usize, depth: u32) -> Result<Value, GgufError> {
        Ok(match ty {
            type_id::U8 => Value::U8(u8::from_le_bytes(self.array("u8 value")?)),
            type_id::I8 => Value::I8(i8::from_le_bytes(self.array("i8 value")?)),
            type_id::U16 => Value::U16(u16::from_le_bytes(self.array("u16 value")?)),
            type_id::I16 => Value::I16(i16::from_le_bytes(self.array("i16 value")?)),
            type_id::U32 => Value::U32(u32::from_le_bytes(self.array("u32 value")?)),
            type_id::I32 => Value::I32(i32::from_le_bytes(self.array("i32 value")?)),
            type_id::F32 => Value::F32(f32::from_le_bytes(self.array("f32 value")?)),
            type_id::BOOL => Value::Bool(self.bool()?),
            type_id::STRING => Value::String(self.string("string value")?),
            type_id::ARRAY => self.array_value(depth)?,
            type_id::U64 => Value::U64(u64::from_le_bytes(self.array("u64 value")?)),
            type_id::I64 => Value::I64(i64::from_le_bytes(self.array("i64 value")?)),
            type_id::F64 => Value::F64(f64::from_le_bytes(self.array("f64 value")?)),
            id => return Err(self.unknown_type(id, ty_at)),
        })
    }

    /// An array: u32 element type, u64 count, elements. `depth` is the
    /// number of arrays this one sits inside.
    fn array_value(&mut self, depth: u32) -> Result<Value, GgufError> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::NestingTooDeep {
                file: self.file.into(),
                offset: self.pos as u64,
                context: self.context.clone(),
                limit: MAX_ARRAY_DEPTH,
            });
        }
        let ty_at = self.pos;
        let ty = self.u32("array element type")?;
        let count_at = self.pos;
        let count = self.u64("array length")?;
        let per_item = match ty {
            type_id::U8 | type_id::I8 | type_id::BOOL => 1,
            type_id::U16 | type_id::I16 => 2,
            type_id::U32 | type_id::I32 | type_id::F32 => 4,
            type_id::U64 | type_id::I64 | type_id::F64 => 8,
            type_id::STRING => 8,    // the length prefix
            type_id::ARRAY => 4 + 8, // element type and length
            id => return Err(self.unknown_type(id, ty_at)),
        };
        let n = self.check_count(count, per_item, count_at, "array element")?;

        // Fixed-size elements: one bounds check for the whole run, then a
        // tight decode loop (token score and type arrays are 262k long).
        fn fixed<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> Value) -> Vec<Value> {
            bytes
                .chunks_exact(N)
                .map(|c| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(c);
                    f(a)
                })
                .collect()
        }
        let what = "array elements";
        let items = match ty {
            type_id::U8 => fixed(self.take(count, what)?, |[b]| Value::U8(b)),
            type_id::I8 => fixed(self.take(count, what)?, |b| Value::I8(i8::from_le_bytes(b))),
            type_id::U16 => fixed(self.take(count * 2, what)?, |b| {
                Value::U16(u16::from_le_bytes(b))
            }),
            type_id::I16 => fixed(self.take(count * 2, what)?, |b| {
                Value::I16(i16::from_le_bytes(b))
            }),
            type_id::U32 => fixed(self.take(count * 4, what)?, |b| {
                Value::U32(u32::from_le_bytes(b))
            }),
            type_id::I32 => fixed(self.take(count * 4, what)?, |b| {
                Value::I32(i32::from_le_bytes(b))
            }),
            type_id::F32 => fixed(self.take(count * 4, what)?, |b| {
                Value::F32(f32::from_le_bytes(b))
            }),
            type_id::U64 => fixed(self.take(count * 8, what)?, |b| {
                Value::U64(u64::from_le_bytes(b))
            }),
            type_id::I64 => fixed(self.take(count * 8, what)?, |b| {
                Value::I64(i64::from_le_bytes(b))
            }),
            type_id::F64 => fixed(self.take(count * 8, what)?, |b| {
                Value::F64(f64::from_le_bytes(b))
            }),
            type_id::BOOL => {
                let start = self.pos;
                let bytes = self.take(count, what)?;
                let mut out = Vec::with_capacity(n);
                for (i, &b) in bytes.iter().enumerate() {
                    out.push(Value::Bool(self.decode_bool(b, start + i)?));
                }
                out
            }
            type_id::STRING => {
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    out.push(Value::String(self.string("array string")?));
                }
                out
            }
            _ => {
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    out.push(self.array_value(depth + 1)?);
                }
                out
            }
        };
        Ok(Value::Array(items))
    }

    /// One tensor info; its shape and size are checked, its placement in
    /// the data section is checked later by `parse`.
    fn tensor_info(&mut self) -> Result<TensorInfo, GgufError> {
        let info_at = self.pos as u64;
        let name = self.string("tensor name")?;
        self.context = format!("{} {name:?}", self.context);
        let n_dims_at = self.pos as u64;
        let n_dims = self.u32("tensor n_dims")?;
        if n_dims > MAX_DIMS {
            return Err(GgufError::TooManyDims {
                file: self.file.into(),
                offset: n_dims_at,
                name,
                n_dims,
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64("tensor dimension")?);
        }
        let ty_at = self.pos as u64;
        let ty_id = self.u32("tensor type")?;
        let Some(ty) = GgmlType::from_id(ty_id) else {
            return Err(GgufError::UnknownTensorType {
                file: self.file.into(),
                offset: ty_at,
                name,
                id: ty_id,
            });
        };
        let offset = self.u64("tensor data offset")?;

        let bad_shape = |name: String, dims: Vec<u64>, problem: String| GgufError::BadTensorShape {
            file: self.file.into(),
            offset: info_at,
            name,
            dims,
            ty,
            problem,
        };
        // ggml stores dims as int64_t.
        if let Some(d) = dims.iter().find(|&&d| d > i64::MAX as u64) {
            let problem = format!("dimension {d} exceeds i64::MAX");
            return Err(bad_shape(name, dims, problem));
        }
        let Some(n_elements) = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)) else {
            return Err(GgufError::SizeOverflow {
                file: self.file.into(),
                offset: info_at,
                what: format!("tensor {name:?}: element count of dims {dims:?} exceeds u64"),
            });
        };
        // ggml quantizes along rows: each row must be whole blocks.
        let row = dims.first().copied().unwrap_or(1);
        let block = ty.block_size() as u64;
        if row % block != 0 {
            let problem = format!("row length {row} is not a multiple of the block size {block}");
            return Err(bad_shape(name, dims, problem));
        }
        let Some(n_bytes) = (n_elements / block).checked_mul(ty.type_size() as u64) else {
            return Err(GgufError::SizeOverflow {
                file: self.file.into(),
                offset: info_at,
                what: format!(
                    "tensor {name:?}: {n_elements} elements of {ty} take more than u64::MAX bytes"
                ),
            });
        };
        Ok(TensorInfo {
            name,
            dims,
            ty,
            offset,
            n_bytes,
        })
    }
}
