//! bench/bfcl end to end, small: the dataset validates against itself
//! (`run --check`), and the runner serves Qwen2.5-Coder-0.5B with the tool
//! grammar, sends the first case of each category through the `openai`
//! client and scores it. The calls it makes must all be valid (the issue's
//! target is 90% with constrained decoding). About 30 s on 2 cores; the full
//! benchmark and its figures are in BENCHMARKS.md.

mod common;

use std::path::Path;
use std::process::Command;

fn python_has(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn bfcl_runner_scores_one_case_per_category_with_valid_calls() {
    let Some(qwen) = common::model("qwen2.5-coder-0.5b-instruct") else {
        return;
    };
    if !python_has("openai, jsonschema") {
        assert!(
            std::env::var("LLMOS_REQUIRE_MODELS").as_deref() != Ok("1"),
            "python3 cannot import openai and jsonschema: python3 -m pip install -r bench/bfcl/requirements.txt"
        );
        eprintln!("skipping: python3 cannot import openai and jsonschema");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let run = root.join("bench/bfcl/run");
    let check = Command::new("python3")
        .arg(&run)
        .arg("--check")
        .output()
        .expect("python3");
    assert!(
        check.status.success(),
        "dataset check failed:\n{}",
        common::stdout(&check)
    );

    let home = qwen.parent().and_then(Path::parent).expect("LLMOS_HOME");
    let results = tempfile::tempdir().expect("tempdir");
    let out = Command::new("python3")
        .arg(&run)
        .args([
            "--models",
            "qwen2.5-coder-0.5b-instruct",
            "--modes",
            "constrained",
        ])
        .args(["--limit", "1", "--max-tokens", "128", "--min-valid", "90"])
        .arg("--llmos")
        .arg(env!("CARGO_BIN_EXE_llmos"))
        .arg("--results")
        .arg(results.path())
        .env("LLMOS_HOME", home)
        .output()
        .expect("python3");
    let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
    eprintln!("{stderr}\n{stdout}");
    assert!(out.status.success(), "bench/bfcl/run failed");
    // One row per category and the overall row, each with a case scored.
    for cat in [
        "simple",
        "multiple",
        "parallel",
        "irrelevance",
        "**overall**",
    ] {
        assert!(
            stdout.lines().any(|l| l.contains(&format!("| {cat} |"))),
            "no {cat} row in:\n{stdout}"
        );
    }
}
