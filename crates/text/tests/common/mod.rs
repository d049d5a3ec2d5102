//! Shared helpers: find the test models (env LLMOS_TEST_MODELS) and load them.
#![allow(dead_code)]

use llmos_gguf::GgufFile;
use llmos_text::Tokenizer;
use std::path::PathBuf;

/// The models tests look for, by file stem.
pub const MODELS: &[&str] = &[
    "smollm2-135m-instruct",
    "qwen2.5-coder-0.5b-instruct",
    "qwen2.5-coder-1.5b-instruct",
    "gemma3-270m",
];

/// `$LLMOS_TEST_MODELS/<stem>.gguf`, or `None` with a note on stderr.
pub fn model_path(stem: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("LLMOS_TEST_MODELS") else {
        eprintln!("note: LLMOS_TEST_MODELS is not set; skipping {stem}");
        return None;
    };
    let p = PathBuf::from(dir).join(format!("{stem}.gguf"));
    if p.exists() {
        Some(p)
    } else {
        eprintln!("note: {} not found; skipping", p.display());
        None
    }
}

/// Opens a model's GGUF and builds its tokenizer; `None` when the model is absent.
pub fn load(stem: &str) -> Option<(GgufFile, Tokenizer)> {
    let path = model_path(stem)?;
    let gguf = match GgufFile::open(&path) {
        Ok(g) => g,
        Err(e) => panic!("open {}: {e}", path.display()),
    };
    let tok = match Tokenizer::from_gguf(&gguf) {
        Ok(t) => t,
        Err(e) => panic!("tokenizer for {}: {e}", path.display()),
    };
    Some((gguf, tok))
}
