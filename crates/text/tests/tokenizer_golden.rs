//! Token ids equal llama.cpp's for every corpus string and every model present.
//!
//! Goldens: tests/fixtures/tokenizer/<model>.json, made by
//! tools/ref/make_tokenizer_goldens.py from llama.cpp's llama_tokenize (see the
//! README there). `ids` is add_special=true, parse_special=false;
//! `ids_parse_special` is add_special=true, parse_special=true.

mod common;

use llmos_text::Tokenizer;
use serde_json::Value;

fn fixture(stem: &str) -> Option<Value> {
    let path = format!(
        "{}/../../tests/fixtures/tokenizer/{stem}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("note: {path} not found; skipping {stem}");
        return None;
    };
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}")))
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap_or_else(|| panic!("ids should be a list: {v}"))
        .iter()
        .map(|x| {
            x.as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .unwrap_or_else(|| panic!("bad id {x}"))
        })
        .collect()
}

/// `id:"piece"` for each token, to see where two tokenizations part ways.
fn pieces(tok: &Tokenizer, ids: &[u32]) -> String {
    ids.iter()
        .map(|&id| format!("{id}:{:?}", String::from_utf8_lossy(tok.token_bytes(id))))
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(tok: &Tokenizer, text: &str, mode: &str, want: &[u32], got: &[u32]) -> String {
    let common = want.iter().zip(got).take_while(|(a, b)| a == b).count();
    format!(
        "  {text:?} ({mode}): first difference at token {common}\n    want {want:?}\n    got  {got:?}\n    want pieces {}\n    got pieces  {}",
        pieces(tok, &want[common.min(want.len())..]),
        pieces(tok, &got[common.min(got.len())..]),
    )
}

fn check_model(stem: &str) {
    let Some(fix) = fixture(stem) else { return };
    let Some((_, tok)) = common::load(stem) else {
        return;
    };
    let vocab = &fix["_meta"]["vocab"];
    assert_eq!(
        Some(tok.vocab_size() as u64),
        vocab["n_tokens"].as_u64(),
        "{stem}: vocab size"
    );
    assert_eq!(
        Some(tok.add_bos()),
        vocab["add_bos"].as_bool(),
        "{stem}: add_bos"
    );
    assert_eq!(
        Some(tok.add_eos()),
        vocab["add_eos"].as_bool(),
        "{stem}: add_eos"
    );
    assert_eq!(
        tok.bos().map(u64::from),
        vocab["bos"].as_u64(),
        "{stem}: bos"
    );
    assert_eq!(
        tok.eos().map(u64::from),
        vocab["eos"].as_u64(),
        "{stem}: eos"
    );

    let cases = fix["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{stem}: no cases"));
    let mut failures = Vec::new();
    let mut matched = 0;
    for case in cases {
        let text = case["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{stem}: case without text"));
        for (field, parse_special) in [("ids", false), ("ids_parse_special", true)] {
            let want = ids_of(&case[field]);
            let got = tok.encode(text, true, parse_special);
            if got == want {
                matched += 1;
            } else {
                failures.push(describe(&tok, text, field, &want, &got));
            }
        }
    }
    eprintln!(
        "{stem}: {matched}/{} encodings match llama.cpp",
        cases.len() * 2
    );
    assert!(
        failures.is_empty(),
        "{stem}: {} of {} encodings differ from llama.cpp:\n{}",
        failures.len(),
        cases.len() * 2,
        failures.join("\n")
    );
}

#[test]
fn smollm2_matches_llama_cpp() {
    check_model("smollm2-135m-instruct");
}

#[test]
fn qwen25_coder_05b_matches_llama_cpp() {
    check_model("qwen2.5-coder-0.5b-instruct");
}

#[test]
fn qwen25_coder_15b_matches_llama_cpp() {
    check_model("qwen2.5-coder-1.5b-instruct");
}

#[test]
fn gemma3_matches_llama_cpp() {
    check_model("gemma3-270m");
}
