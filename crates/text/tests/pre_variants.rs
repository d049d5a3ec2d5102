//! Pre-tokenizer types that no test model uses, against llama.cpp: the
//! qwen2.5 vocabulary with `tokenizer.ggml.pre` replaced (goldens from
//! tools/fixtures/text/make_pre_variant_goldens.py).

mod common;

use llmos_text::{Tokenizer, TokenizerSpec};
use serde_json::Value;

#[test]
fn pre_tokenizer_variants_match_llama_cpp() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pre_variant_goldens.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let fix: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"));
    let base = fix["base_model"].as_str().unwrap_or_default();
    let Some(model) = common::model_path(base) else {
        return;
    };
    let gguf = llmos_gguf::GgufFile::open(&model).unwrap_or_else(|e| panic!("{e}"));
    let spec = TokenizerSpec::from_gguf(&gguf).unwrap_or_else(|e| panic!("{e}"));
    let variants = fix["variants"]
        .as_object()
        .unwrap_or_else(|| panic!("no variants"));
    assert!(variants.len() >= 4);
    let mut failures = Vec::new();
    for (pre, cases) in variants {
        let tok = Tokenizer::from_spec(TokenizerSpec {
            pre: pre.clone(),
            ..spec.clone()
        })
        .unwrap_or_else(|e| panic!("{pre}: {e}"));
        let cases = cases
            .as_array()
            .unwrap_or_else(|| panic!("{pre}: no cases"));
        let mut matched = 0;
        for case in cases {
            let text = case["text"].as_str().unwrap_or_default();
            for (field, parse_special) in [("ids", false), ("ids_parse_special", true)] {
                let want: Vec<u32> = case[field]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_u64().and_then(|i| u32::try_from(i).ok()))
                    .collect();
                let got = tok.encode(text, false, parse_special);
                if got == want {
                    matched += 1;
                } else {
                    failures.push(format!(
                        "  {pre} {field} {text:?}\n    want {want:?}\n    got  {got:?}"
                    ));
                }
            }
        }
        eprintln!(
            "pre={pre}: {matched}/{} encodings match llama.cpp",
            cases.len() * 2
        );
    }
    assert!(
        failures.is_empty(),
        "{} encodings differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
