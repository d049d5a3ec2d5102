//! Shared helpers for the CLI tests: locating test models and running the binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A catalog model's file, from `$LLMOS_TEST_MODELS/<name>.gguf`. Returns
/// None (and says so) when absent, unless `LLMOS_REQUIRE_MODELS=1`, where a
/// missing model fails the test: CI must never skip silently.
pub fn model(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("LLMOS_TEST_MODELS").map(PathBuf::from);
    let path = dir.map(|d| d.join(format!("{name}.gguf")));
    match path {
        Some(p) if p.is_file() => Some(p),
        _ => {
            if std::env::var("LLMOS_REQUIRE_MODELS").as_deref() == Ok("1") {
                panic!(
                    "model {name} not found under $LLMOS_TEST_MODELS and LLMOS_REQUIRE_MODELS=1"
                );
            }
            eprintln!("skipping: model {name} not found (set LLMOS_TEST_MODELS)");
            None
        }
    }
}

pub fn llmos() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llmos"));
    c.env_remove("LLMOS_MODEL");
    c
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
