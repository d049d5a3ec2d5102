//! Arbitrary bytes, and arbitrary mutations of a valid file, give a Result:
//! never a panic, an abort or a runaway allocation.

mod common;

use common::small_file;
use llmos_gguf::{GgufFile, Value};
use proptest::prelude::*;

/// Walk everything a parsed file exposes, so a bad invariant would panic here.
fn exercise(f: &GgufFile) {
    for (k, v) in f.metadata() {
        // Compare identity, not value: NaN != NaN.
        assert!(f.get(k).is_some_and(|g| std::ptr::eq(g, v)), "get({k:?})");
        let _ = (v.as_u64(), v.as_i64(), v.as_f64(), v.as_bool(), v.as_str());
        let _ = v.to_string();
    }
    for t in f.tensors() {
        assert_eq!(f.tensor_data(t).len() as u64, t.n_bytes);
        assert_eq!(f.tensor(&t.name), Some(t));
        assert_eq!(f.data_offset() % f.alignment(), 0);
        let _ = t.n_elements();
    }
}

fn check(bytes: Vec<u8>) {
    if let Ok(f) = GgufFile::from_bytes(bytes) {
        exercise(&f);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite one byte.
    Set(usize, u8),
    /// Overwrite 8 bytes with a little-endian u64 (hits counts and lengths).
    SetU64(usize, u64),
    /// Cut the file.
    Truncate(usize),
    /// Insert bytes.
    Insert(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(1 << 60),
        Just(1 << 32),
        Just(i64::MAX as u64),
        0u64..64,
        any::<u64>(),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, v)| Mutation::SetU64(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match m {
        Mutation::Set(i, b) => {
            if let Some(x) = bytes.get_mut(i % len) {
                *x = *b;
            }
        }
        Mutation::SetU64(i, v) => {
            let at = i % len;
            for (k, b) in v.to_le_bytes().into_iter().enumerate() {
                if let Some(x) = bytes.get_mut(at + k) {
                    *x = b;
                }
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i % len),
        Mutation::Insert(i, b) => {
            let at = (i % len).min(bytes.len());
            bytes.splice(at..at, b.iter().copied());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_prefix_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..512),
        n_tensors in prop_oneof![Just(0u64), Just(1), Just(3), any::<u64>()],
        n_kv in prop_oneof![Just(0u64), Just(1), Just(3), any::<u64>()],
    ) {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&n_tensors.to_le_bytes());
        bytes.extend_from_slice(&n_kv.to_le_bytes());
        bytes.extend_from_slice(&tail);
        check(bytes);
    }

    #[test]
    fn mutated_valid_file_never_panics(muts in proptest::collection::vec(mutation(), 1..6)) {
        let mut bytes = small_file();
        for m in &muts {
            apply(&mut bytes, m);
        }
        check(bytes);
    }
}

/// Inputs the fuzzer (fuzz/fuzz_targets/gguf_parse.rs) found, kept so each
/// stays fixed: every file in tests/fixtures/fuzz_regressions is parsed and,
/// if accepted, exercised.
#[test]
fn fuzz_regressions_never_panic() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz_regressions");
    let entries = std::fs::read_dir(&dir).map(|d| d.filter_map(|e| e.ok()).collect::<Vec<_>>());
    let entries = entries.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert!(
        !entries.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    for e in entries {
        let bytes =
            std::fs::read(e.path()).unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
        check(bytes);
    }
}

/// Fuzz crash e7f7472f: a mutated f32 array held a NaN, and the harness
/// checked `get(k) == Some(v)`, which is false for NaN. The parser was right;
/// lookups must return the very entry, NaN or not.
#[test]
fn nan_metadata_is_found_by_key() {
    let mut w = llmos_gguf::GgufWriter::new();
    let nan = Value::Array(vec![Value::F32(f32::NAN)]);
    if let Err(e) = w.add_metadata("scores", nan) {
        panic!("{e}");
    }
    let f = GgufFile::from_bytes(w.to_bytes());
    let f = f.unwrap_or_else(|e| panic!("{e}"));
    let got = f
        .get_array("scores")
        .and_then(|a| a.first())
        .and_then(Value::as_f64);
    assert!(got.is_some_and(f64::is_nan), "{got:?}");
    exercise(&f);
}

#[test]
fn unmutated_small_file_parses() {
    let f = GgufFile::from_bytes(small_file());
    assert!(f.is_ok(), "{:?}", f.err());
    if let Ok(f) = f {
        exercise(&f);
        assert_eq!(f.get("b"), Some(&Value::Bool(true)));
    }
}
