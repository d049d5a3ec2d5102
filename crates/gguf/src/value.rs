//! Metadata values and their GGUF type ids.

use std::fmt;

/// One GGUF metadata value.
///
/// Arrays hold one element type in the file; nested arrays each carry their
/// own element type, so `Array(vec![Array(u8s), Array(strings)])` is valid.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(Vec<Value>),
}

/// GGUF value type ids (`gguf_type` in ggml's gguf.h).
pub(crate) mod type_id {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// Strings longer than this many chars are cut short by `Display`.
const DISPLAY_STR_CHARS: usize = 60;
/// Arrays longer than this are cut short by `Display`.
const DISPLAY_ARRAY_ITEMS: usize = 3;

impl Value {
    /// The value as `u64` if it is an integer type holding a non-negative value.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as `i64` if it is an integer type whose value fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => i64::try_from(v).ok(),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The value as `f64` if it is a float or an integer type (64-bit
    /// integers above 2^53 round to the nearest `f64`).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            Value::U64(v) => Some(v as f64),
            Value::I64(v) => Some(v as f64),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    /// The value if it is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value if it is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements if it is an `Array`.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The GGUF type name: "u8", "i8", ..., "string", "array".
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::F32(_) => "f32",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
            Value::Array(_) => "array",
        }
    }

    /// The GGUF type id written before this value.
    pub(crate) fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => type_id::U8,
            Value::I8(_) => type_id::I8,
            Value::U16(_) => type_id::U16,
            Value::I16(_) => type_id::I16,
            Value::U32(_) => type_id::U32,
            Value::I32(_) => type_id::I32,
            Value::F32(_) => type_id::F32,
            Value::Bool(_) => type_id::BOOL,
            Value::String(_) => type_id::STRING,
            Value::U64(_) => type_id::U64,
            Value::I64(_) => type_id::I64,
            Value::F64(_) => type_id::F64,
            Value::Array(_) => type_id::ARRAY,
        }
    }
}

/// A short, one-line human form for `llmos info`: strings are quoted and
/// escaped and cut after 60 chars, arrays show their first three items, e.g.
/// `["a", "b", "c", ... (49152 items)]`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::String(s) => {
                let n_chars = s.chars().count();
                if n_chars <= DISPLAY_STR_CHARS {
                    write!(f, "{s:?}")
                } else {
                    let head: String = s.chars().take(DISPLAY_STR_CHARS).collect();
                    let quoted = format!("{head:?}");
                    // Put the ellipsis inside the closing quote.
                    let open = quoted.strip_suffix('"').unwrap_or(&quoted);
                    write!(f, "{open}...\" ({} bytes)", s.len())
                }
            }
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().take(DISPLAY_ARRAY_ITEMS).enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                if items.len() > DISPLAY_ARRAY_ITEMS {
                    write!(f, ", ... ({} items)", items.len())?;
                }
                f.write_str("]")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_accessors_respect_sign_and_range() {
        assert_eq!(Value::I32(-1).as_u64(), None);
        assert_eq!(Value::I32(7).as_u64(), Some(7));
        assert_eq!(Value::U64(u64::MAX).as_i64(), None);
        assert_eq!(Value::U64(5).as_i64(), Some(5));
        assert_eq!(Value::I8(-3).as_i64(), Some(-3));
        assert_eq!(Value::F32(1.5).as_u64(), None);
        assert_eq!(Value::Bool(true).as_u64(), None);
        assert_eq!(Value::U16(9).as_f64(), Some(9.0));
        assert_eq!(Value::I64(-9).as_f64(), Some(-9.0));
        assert_eq!(Value::F32(0.5).as_f64(), Some(0.5));
        assert_eq!(Value::String("x".into()).as_f64(), None);
        assert_eq!(Value::U8(1).as_bool(), None);
        assert_eq!(Value::String("x".into()).as_str(), Some("x"));
        assert_eq!(Value::U8(1).as_array(), None);
    }

    #[test]
    fn display_abbreviates_arrays_and_long_strings() {
        let short = Value::Array(vec![Value::U8(1), Value::U8(2)]);
        assert_eq!(short.to_string(), "[1, 2]");
        let long = Value::Array((0..10).map(|i| Value::String(format!("t{i}"))).collect());
        assert_eq!(long.to_string(), r#"["t0", "t1", "t2", ... (10 items)]"#);
        assert_eq!(Value::String("a\nb".into()).to_string(), r#""a\nb""#);
        let big = Value::String("x".repeat(100));
        assert_eq!(
            big.to_string(),
            format!("\"{}...\" (100 bytes)", "x".repeat(60))
        );
        let nested = Value::Array(vec![Value::Array(vec![]), Value::Bool(true)]);
        assert_eq!(nested.to_string(), "[[], true]");
        assert_eq!(Value::F32(1e-5).to_string(), "0.00001");
    }
}
