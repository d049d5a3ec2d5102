//! Feed arbitrary bytes to the GGUF parser. It must return a Result, never
//! panic or abort; anything it accepts must be internally consistent.
//!
//! From the repository root, seeded with the gguf-py fixtures:
//!
//! cargo +nightly fuzz run gguf_parse fuzz/corpus/gguf_parse crates/gguf/tests/fixtures

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmos_gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    // Everything the file exposes must hold together.
    assert_eq!(f.data_offset() % f.alignment(), 0);
    for (k, v) in f.metadata() {
        // Compare identity, not value: NaN != NaN.
        assert!(f.get(k).is_some_and(|g| std::ptr::eq(g, v)), "get({k:?})");
        let _ = v.to_string();
    }
    for t in f.tensors() {
        assert_eq!(f.tensor(&t.name), Some(t));
        assert_eq!(f.tensor_data(t).len() as u64, t.n_bytes);
        assert_eq!(t.offset % f.alignment(), 0);
    }
});
