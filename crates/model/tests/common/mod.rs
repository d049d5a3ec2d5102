//! Shared by the model tests: load a catalog model from `$LLMOS_TEST_MODELS`.

use llmos_gguf::GgufFile;
use llmos_model::Model;
use std::path::PathBuf;
use std::sync::Arc;

/// `$LLMOS_TEST_MODELS/<name>.gguf`, loaded. None (with a note) when absent,
/// unless `LLMOS_REQUIRE_MODELS=1`, where a missing model fails the test.
pub fn model(name: &str) -> Option<Model> {
    let dir = std::env::var_os("LLMOS_TEST_MODELS").map(PathBuf::from);
    let p = dir
        .map(|d| d.join(format!("{name}.gguf")))
        .filter(|p| p.is_file());
    let Some(p) = p else {
        assert!(
            std::env::var("LLMOS_REQUIRE_MODELS").as_deref() != Ok("1"),
            "{name} missing"
        );
        eprintln!("skipping: {name} not found (set LLMOS_TEST_MODELS)");
        return None;
    };
    Some(Model::load(Arc::new(GgufFile::open(p).unwrap())).unwrap())
}
