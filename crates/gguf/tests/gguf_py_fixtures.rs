//! Files written by gguf-py (an independent writer; see
//! fixtures/make_fixtures.py) read back exactly. Expected values are the
//! ones the script wrote, confirmed with `gguf.GGUFReader` (gguf-py 0.19.0).

use std::path::PathBuf;

use llmos_gguf::{GgmlType, GgufFile, Value};

fn open(name: &str) -> GgufFile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    match GgufFile::open(&path) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    }
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

#[test]
fn all_value_types_from_gguf_py() {
    let f = open("all_types.gguf");
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.data_offset(), 672);
    let want: Vec<(String, Value)> = vec![
        ("general.architecture", s("llama")),
        ("t.u8", Value::U8(255)),
        ("t.i8", Value::I8(-128)),
        ("t.u16", Value::U16(65535)),
        ("t.i16", Value::I16(-32768)),
        ("t.u32", Value::U32(u32::MAX)),
        ("t.i32", Value::I32(i32::MIN)),
        ("t.f32", Value::F32(0.5)),
        ("t.bool", Value::Bool(true)),
        ("t.string", s("héllo 🦀")),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f64", Value::F64(3.25)),
        ("t.arr_str", Value::Array(vec![s("a"), s("bc"), s("")])),
        (
            "t.arr_i32",
            Value::Array(vec![Value::I32(1), Value::I32(-2), Value::I32(3)]),
        ),
        (
            "t.arr_f32",
            Value::Array(vec![Value::F32(1.5), Value::F32(-2.5)]),
        ),
        (
            "t.arr_nested",
            Value::Array(vec![
                Value::Array(vec![Value::I32(1), Value::I32(2)]),
                Value::Array(vec![Value::I32(3)]),
            ]),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(f.metadata(), want.as_slice());

    // (name, dims, type, offset, n_bytes) as GGUFReader reports them.
    let tensors: Vec<_> = f
        .tensors()
        .iter()
        .map(|t| (t.name.as_str(), t.dims.clone(), t.ty, t.offset, t.n_bytes))
        .collect();
    assert_eq!(
        tensors,
        vec![
            ("f32", vec![4, 2], GgmlType::F32, 0, 32),
            ("f16", vec![6], GgmlType::F16, 32, 12),
            ("q8", vec![32], GgmlType::Q8_0, 64, 34),
        ]
    );
    // np.arange(8, dtype=float32)
    let f32_data: Vec<u8> = (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect();
    assert_eq!(
        f.tensor("f32").map(|t| f.tensor_data(t)),
        Some(f32_data.as_slice())
    );
    assert_eq!(
        f.tensor("q8").map(|t| f.tensor_data(t)),
        Some(&[0u8; 34][..])
    );
}

#[test]
fn custom_alignment_from_gguf_py() {
    let f = open("align64.gguf");
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.get("general.alignment"), Some(&Value::U32(64)));
    assert_eq!(f.data_offset(), 192);
    let offsets: Vec<_> = f
        .tensors()
        .iter()
        .map(|t| (t.name.as_str(), t.offset))
        .collect();
    assert_eq!(offsets, vec![("x", 0), ("y", 64)]);
    assert_eq!(f.tensor("y").map(|t| f.tensor_data(t)), Some(&[1u8; 5][..]));
}

#[test]
fn metadata_only_file_from_gguf_py() {
    let f = open("no_tensors.gguf");
    assert!(f.tensors().is_empty());
    assert_eq!(f.architecture(), Some("llama"));
    let tokens = f.get_array("tokenizer.ggml.tokens").unwrap_or(&[]);
    assert_eq!(tokens, &[s("<s>"), s("</s>"), s("a")]);
}
