//! GgufWriter → GgufFile round trips, and the writer's own checks.

mod common;

use common::small_file;
use llmos_gguf::{GgmlType, GgufError, GgufFile, GgufWriter, Value};

fn parse(bytes: Vec<u8>) -> GgufFile {
    match GgufFile::from_bytes(bytes) {
        Ok(f) => f,
        Err(e) => panic!("parse of writer output failed: {e}"),
    }
}

fn ok<T>(r: Result<T, GgufError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// One value of every scalar type, at its extremes where that matters.
fn every_scalar() -> Vec<(String, Value)> {
    vec![
        ("u8".into(), Value::U8(u8::MAX)),
        ("i8".into(), Value::I8(i8::MIN)),
        ("u16".into(), Value::U16(u16::MAX)),
        ("i16".into(), Value::I16(i16::MIN)),
        ("u32".into(), Value::U32(u32::MAX)),
        ("i32".into(), Value::I32(i32::MIN)),
        ("f32".into(), Value::F32(-1.5e-7)),
        ("bool.t".into(), Value::Bool(true)),
        ("bool.f".into(), Value::Bool(false)),
        ("string".into(), Value::String("héllo\n\"wörld\" 🦀".into())),
        ("string.empty".into(), Value::String(String::new())),
        ("u64".into(), Value::U64(u64::MAX)),
        ("i64".into(), Value::I64(i64::MIN)),
        ("f64".into(), Value::F64(std::f64::consts::PI)),
    ]
}

#[test]
fn every_value_type_round_trips() {
    let mut entries = every_scalar();
    // An array of each scalar type.
    for (k, v) in every_scalar() {
        entries.push((format!("arr.{k}"), Value::Array(vec![v.clone(), v])));
    }
    entries.push(("arr.empty".into(), Value::Array(vec![])));
    // Nested arrays whose inner arrays have different element types.
    entries.push((
        "arr.nested".into(),
        Value::Array(vec![
            Value::Array(vec![Value::U8(1), Value::U8(2)]),
            Value::Array(vec![Value::String("x".into())]),
            Value::Array(vec![]),
            Value::Array(vec![Value::Array(vec![Value::I64(-1)])]),
        ]),
    ));
    let mut w = GgufWriter::new();
    for (k, v) in &entries {
        ok(w.add_metadata(k.clone(), v.clone()));
    }
    let f = parse(w.to_bytes());
    assert_eq!(f.version(), 3);
    assert_eq!(f.metadata(), entries.as_slice(), "metadata in file order");
    for (k, v) in &entries {
        assert_eq!(f.get(k), Some(v), "{k}");
    }
    assert_eq!(f.get("missing"), None);
}

#[test]
fn typed_getters() {
    let f = parse({
        let mut w = GgufWriter::new();
        for (k, v) in every_scalar() {
            ok(w.add_metadata(k, v));
        }
        ok(w.add_metadata("general.architecture", Value::String("qwen2".into())));
        ok(w.add_metadata("neg", Value::I32(-4)));
        w.to_bytes()
    });
    assert_eq!(f.get_u64("u8"), Some(255));
    assert_eq!(f.get_u64("u64"), Some(u64::MAX));
    assert_eq!(f.get_u64("neg"), None);
    assert_eq!(f.get_i64("neg"), Some(-4));
    assert_eq!(f.get_i64("u64"), None);
    assert_eq!(f.get_i64("i64"), Some(i64::MIN));
    assert_eq!(f.get_f64("f32"), Some(f64::from(-1.5e-7f32)));
    assert_eq!(f.get_f64("u32"), Some(f64::from(u32::MAX)));
    assert_eq!(f.get_f64("string"), None);
    assert_eq!(f.get_bool("bool.t"), Some(true));
    assert_eq!(f.get_bool("u8"), None);
    assert_eq!(f.get_str("string.empty"), Some(""));
    assert_eq!(f.get_str("u8"), None);
    assert_eq!(f.get_array("u8"), None);
    assert_eq!(f.architecture(), Some("qwen2"));
}

#[test]
fn tensors_round_trip_with_data() {
    let f = parse(small_file());
    assert_eq!(f.tensors().len(), 2);
    let w = f.tensor("w").cloned();
    let w = w.unwrap_or_else(|| panic!("tensor w missing"));
    assert_eq!(w.dims, vec![4, 2]);
    assert_eq!(w.ty, GgmlType::F32);
    assert_eq!(w.n_elements(), 8);
    assert_eq!(w.n_bytes, 32);
    assert_eq!(f.tensor_data(&w), (0u8..32).collect::<Vec<_>>().as_slice());
    let q = f
        .tensor("q")
        .cloned()
        .unwrap_or_else(|| panic!("tensor q missing"));
    assert_eq!(q.ty, GgmlType::Q8_0);
    assert_eq!(q.n_bytes, 34);
    assert_eq!(q.offset % 32, 0);
    assert_eq!(f.tensor_data(&q), &[7u8; 34]);
    assert_eq!(f.data_offset() % 32, 0);
    assert!(f.tensor("nope").is_none());
    assert_eq!(f.path(), None);
    assert_eq!(f.file_size(), small_file().len() as u64);
}

#[test]
fn every_ggml_type_round_trips() {
    let mut w = GgufWriter::new();
    for t in GgmlType::ALL {
        let row = t.block_size() as u64;
        let n = match t.bytes_for(row * 2) {
            Some(n) => n as usize,
            None => panic!("{t}: bytes_for"),
        };
        let data: Vec<u8> = (0..n).map(|i| (i * 7 + t.id() as usize) as u8).collect();
        ok(w.add_tensor(format!("t.{t}"), &[row, 2], t, data));
    }
    let f = parse(w.to_bytes());
    for (t, info) in GgmlType::ALL.iter().zip(f.tensors()) {
        assert_eq!(info.ty, *t);
        assert_eq!(info.name, format!("t.{t}"));
        let data = f.tensor_data(info);
        assert_eq!(data.len() as u64, info.n_bytes);
        assert_eq!(data.first().copied(), Some(t.id() as u8));
    }
}

#[test]
fn zero_dim_and_scalar_tensors() {
    let mut w = GgufWriter::new();
    ok(w.add_tensor("scalar", &[], GgmlType::F32, vec![1, 2, 3, 4]));
    ok(w.add_tensor("empty", &[0, 3], GgmlType::F16, vec![]));
    let f = parse(w.to_bytes());
    let s = &f.tensors()[0];
    assert_eq!((s.n_elements(), s.n_bytes), (1, 4));
    assert_eq!(f.tensor_data(s), &[1, 2, 3, 4]);
    let e = &f.tensors()[1];
    assert_eq!((e.n_elements(), e.n_bytes), (0, 0));
    assert!(f.tensor_data(e).is_empty());
}

#[test]
fn custom_alignment_is_honoured() {
    for align in [1u64, 8, 64, 4096] {
        let mut w = GgufWriter::new();
        ok(w.set_alignment(align));
        ok(w.add_tensor("a", &[3], GgmlType::I8, vec![1, 2, 3]));
        ok(w.add_tensor("b", &[1], GgmlType::F64, vec![9; 8]));
        let f = parse(w.to_bytes());
        assert_eq!(f.alignment(), align);
        assert_eq!(f.get_u64("general.alignment"), Some(align));
        assert_eq!(f.data_offset() % align, 0);
        for t in f.tensors() {
            assert_eq!(t.offset % align, 0, "{} at align {align}", t.name);
        }
        assert_eq!(f.tensor("b").map(|t| f.tensor_data(t)), Some(&[9u8; 8][..]));
    }
}

#[test]
fn alignment_from_metadata_sets_the_writer_alignment() {
    let mut w = GgufWriter::new();
    ok(w.add_metadata("general.alignment", Value::U32(128)));
    assert_eq!(w.alignment(), 128);
    ok(w.set_alignment(16));
    let f = parse(w.to_bytes());
    assert_eq!(f.alignment(), 16);
    assert_eq!(f.metadata().len(), 1, "set_alignment replaces the key");
}

#[test]
fn version_2_files_read() {
    let mut bytes = small_file();
    bytes[4] = 2;
    assert_eq!(parse(bytes).version(), 2);
}

#[test]
fn write_to_path_is_atomic_and_leaves_no_temp_file() {
    let dir = std::env::temp_dir().join(format!("llmos-gguf-write-{}", std::process::id()));
    ok(std::fs::create_dir_all(&dir).map_err(|e| GgufError::Write {
        path: dir.clone(),
        op: "create test dir",
        source: e,
    }));
    let path = dir.join("model.gguf");
    std::fs::write(&path, b"old contents").ok();
    let mut w = GgufWriter::new();
    ok(w.add_metadata("general.architecture", Value::String("llama".into())));
    ok(w.add_tensor("x", &[2], GgmlType::F32, vec![1; 8]));
    ok(w.write_to_path(&path));
    let f = ok(GgufFile::open(&path));
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.path(), Some(path.as_path()));
    assert_eq!(
        f.tensor("x").map(|t| f.tensor_data(t).to_vec()),
        Some(vec![1; 8])
    );
    let names: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec![std::ffi::OsString::from("model.gguf")]);
    drop(f);

    // A missing directory fails naming the path; nothing is created.
    let bad = dir.join("no/such/dir/m.gguf");
    let msg = w
        .write_to_path(&bad)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        msg.contains("no/such/dir/m.gguf") && msg.contains("create temp file"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn writer_rejects_invalid_input() {
    let mut w = GgufWriter::new();
    ok(w.add_metadata("k", Value::U8(1)));
    let e = w
        .add_metadata("k", Value::U8(2))
        .err()
        .map(|e| e.to_string());
    assert!(e.is_some_and(|m| m.contains("duplicate metadata key \"k\"")));

    let mixed = Value::Array(vec![Value::U8(1), Value::I8(1)]);
    let e = w
        .add_metadata("m", mixed)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("mixes types") && e.contains("item 1 is i8"),
        "{e}"
    );

    let e = w.add_metadata("general.alignment", Value::U32(12)).err();
    assert!(e.is_some(), "alignment 12 accepted");
    assert!(w.set_alignment(0).is_err());
    assert!(w.set_alignment(1 << 33).is_err());

    ok(w.add_tensor("t", &[32], GgmlType::Q8_0, vec![0; 34]));
    let e = w
        .add_tensor("t", &[32], GgmlType::Q8_0, vec![0; 34])
        .err()
        .map(|e| e.to_string());
    assert!(e.is_some_and(|m| m.contains("duplicate tensor name \"t\"")));
    let e = w
        .add_tensor("u", &[32], GgmlType::Q8_0, vec![0; 33])
        .err()
        .map(|e| e.to_string());
    assert!(e.is_some_and(|m| m.contains("33 bytes, expected 34")));
    let e = w
        .add_tensor("v", &[1, 1, 1, 1, 1], GgmlType::F32, vec![0; 4])
        .err();
    assert!(e.is_some_and(|m| m.to_string().contains("5 dims")));
    let e = w.add_tensor("x", &[16], GgmlType::Q4_0, vec![0; 9]).err();
    assert!(e.is_some_and(|m| m.to_string().contains("row length 16")));
    let e = w
        .add_tensor("y", &[1 << 62, 1 << 62], GgmlType::F32, vec![])
        .err();
    assert!(e.is_some_and(|m| m.to_string().contains("overflow")));

    // The failed calls left the writer consistent.
    let f = parse(w.to_bytes());
    assert_eq!(f.metadata().len(), 1);
    assert_eq!(f.tensors().len(), 1);
}

#[test]
fn display_abbreviates_token_arrays() {
    let tokens = Value::Array((0..49152).map(|i| Value::String(format!("t{i}"))).collect());
    assert_eq!(
        tokens.to_string(),
        r#"["t0", "t1", "t2", ... (49152 items)]"#
    );
    assert_eq!(tokens.type_name(), "array");
}
