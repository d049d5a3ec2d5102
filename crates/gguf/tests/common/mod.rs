//! Build GGUF bytes by hand, including invalid ones the writer refuses.
#![allow(dead_code)] // each test file uses a different subset

use llmos_gguf::{GgmlType, GgufWriter, Value};

/// GGUF value type ids, as in ggml's gguf.h.
pub mod ty {
    pub const U8: u32 = 0;
    pub const U32: u32 = 4;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
}

/// Little-endian byte builder.
#[derive(Clone, Default)]
pub struct Raw(pub Vec<u8>);

impl Raw {
    /// Magic, version and the two counts.
    pub fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        Raw::default()
            .bytes(b"GGUF")
            .u32(version)
            .u64(n_tensors)
            .u64(n_kv)
    }
    pub fn bytes(mut self, b: &[u8]) -> Raw {
        self.0.extend_from_slice(b);
        self
    }
    pub fn u8(self, v: u8) -> Raw {
        self.bytes(&[v])
    }
    pub fn u32(self, v: u32) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    pub fn u64(self, v: u64) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    pub fn string(self, s: &[u8]) -> Raw {
        self.u64(s.len() as u64).bytes(s)
    }
    /// A u32 metadata entry.
    pub fn kv_u32(self, key: &str, v: u32) -> Raw {
        self.string(key.as_bytes()).u32(ty::U32).u32(v)
    }
    /// A tensor info.
    pub fn tensor(self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> Raw {
        let mut r = self.string(name.as_bytes()).u32(dims.len() as u32);
        for &d in dims {
            r = r.u64(d);
        }
        r.u32(type_id).u64(offset)
    }
    /// Zeros up to the next multiple of `align`.
    pub fn pad_to(mut self, align: usize) -> Raw {
        let n = self.0.len().next_multiple_of(align);
        self.0.resize(n, 0);
        self
    }
    pub fn zeros(mut self, n: usize) -> Raw {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// A small valid file with metadata of several types and two tensors.
pub fn small_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    let build = |w: &mut GgufWriter| -> Result<(), llmos_gguf::GgufError> {
        w.add_metadata("general.architecture", Value::String("llama".into()))?
            .add_metadata("llama.block_count", Value::U32(2))?
            .add_metadata("f", Value::F32(0.5))?
            .add_metadata("b", Value::Bool(true))?
            .add_metadata(
                "tokens",
                Value::Array(vec![Value::String("a".into()), Value::String("bc".into())]),
            )?
            .add_metadata(
                "scores",
                Value::Array(vec![Value::F32(1.0), Value::F32(-2.0)]),
            )?
            .add_tensor("w", &[4, 2], GgmlType::F32, (0u8..32).collect())?
            .add_tensor("q", &[32], GgmlType::Q8_0, vec![7u8; 34])?;
        Ok(())
    };
    if let Err(e) = build(&mut w) {
        panic!("building the small test file: {e}");
    }
    w.to_bytes()
}

/// The error message of parsing `bytes`, failing the test if it parses.
pub fn parse_err(bytes: Vec<u8>) -> String {
    match llmos_gguf::GgufFile::from_bytes(bytes) {
        Ok(f) => panic!("expected a parse error, got {f:?}"),
        Err(e) => e.to_string(),
    }
}

/// Assert that `msg` contains every one of `parts`.
#[track_caller]
pub fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error {msg:?} does not mention {p:?}");
    }
}
