//! `llmos perplexity` against llama.cpp's `llama-perplexity` on the same text,
//! context and chunk count. Reference: tests/fixtures/ppl/llama_cpp.json, made
//! by tools/ref/make_ppl_fixture.py (command lines and llama.cpp version inside).
//! Tolerance: within 1% of llama.cpp's figure (flash attention off, its
//! default-precision path).

mod common;
use common::{llmos, model, stderr, stdout};
use serde_json::Value;
use std::path::Path;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ppl")
}

fn reference_ppl(model_file: &str, n_ctx: u64) -> f64 {
    let fx: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("llama_cpp.json")).unwrap())
            .unwrap();
    fx["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model_file"] == model_file && r["n_ctx"] == n_ctx && r["flash_attn"] == "off")
        .and_then(|r| r["ppl"].as_f64())
        .unwrap_or_else(|| panic!("no reference run for {model_file} c={n_ctx}"))
}

fn check(name: &str, ctx: u64) {
    let Some(m) = model(name) else { return };
    let text = fixtures().join("gpl3.txt");
    let o = llmos()
        .args([
            "perplexity",
            "-t",
            "2",
            "--chunks",
            "8",
            "-c",
            &ctx.to_string(),
            "-m",
        ])
        .arg(&m)
        .arg("-f")
        .arg(&text)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let last = out.lines().last().unwrap_or_default();
    let ppl: f64 = last
        .strip_prefix("PPL = ")
        .unwrap_or_else(|| panic!("last line {last:?}"))
        .parse()
        .unwrap();
    let want = reference_ppl(&format!("{name}.gguf"), ctx);
    let rel = (ppl - want).abs() / want;
    eprintln!(
        "{name} c={ctx}: llmos PPL {ppl:.4}, llama.cpp {want:.4}, diff {:.3}%",
        rel * 100.0
    );
    assert!(
        rel < 0.01,
        "{name}: PPL {ppl} vs llama.cpp {want}: {:.2}% apart (limit 1%)",
        rel * 100.0
    );
}

#[test]
fn smollm2_perplexity_matches_llama_cpp() {
    check("smollm2-135m-instruct", 256);
    check("smollm2-135m-instruct", 128);
}

#[test]
fn qwen2_0_5b_perplexity_matches_llama_cpp() {
    check("qwen2.5-coder-0.5b-instruct", 256);
}

#[test]
fn qwen2_1_5b_perplexity_matches_llama_cpp() {
    check("qwen2.5-coder-1.5b-instruct", 256);
}

#[test]
fn gemma3_perplexity_matches_llama_cpp() {
    check("gemma3-270m", 256);
}
