//! Tokenizer settings that no test model has, against llama.cpp: a real
//! vocabulary with one metadata key replaced (goldens from
//! tools/fixtures/text/make_pre_variant_goldens.py):
//! - pre_variant_goldens.json: qwen2.5's vocabulary under other `tokenizer.ggml.pre` types
//! - spm_variant_goldens.json: gemma3's SentencePiece vocabulary with add_space_prefix on

mod common;

use llmos_text::{Tokenizer, TokenizerSpec};
use serde_json::Value;

fn check_fixture(file: &str, apply: fn(&TokenizerSpec, &str) -> TokenizerSpec) {
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let fix: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"));
    let base = fix["base_model"].as_str().unwrap_or_default();
    let Some(model) = common::model_path(base) else {
        return;
    };
    let gguf = llmos_gguf::GgufFile::open(&model).unwrap_or_else(|e| panic!("{e}"));
    let spec = TokenizerSpec::from_gguf(&gguf).unwrap_or_else(|e| panic!("{e}"));
    let variants = fix["variants"]
        .as_object()
        .unwrap_or_else(|| panic!("{file}: no variants"));
    assert!(!variants.is_empty());
    let mut failures = Vec::new();
    for (name, cases) in variants {
        let tok =
            Tokenizer::from_spec(apply(&spec, name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let cases = cases
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no cases"));
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
                        "  {name} {field} {text:?}\n    want {want:?}\n    got  {got:?}"
                    ));
                }
            }
        }
        eprintln!(
            "{base} with {name}: {matched}/{} encodings match llama.cpp",
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

#[test]
fn pre_tokenizer_variants_match_llama_cpp() {
    check_fixture("pre_variant_goldens.json", |spec, pre| TokenizerSpec {
        pre: pre.to_string(),
        ..spec.clone()
    });
}

#[test]
fn spm_with_space_prefix_matches_llama_cpp() {
    check_fixture("spm_variant_goldens.json", |spec, name| {
        assert_eq!(name, "add_space_prefix=true");
        TokenizerSpec {
            add_space_prefix: Some(true),
            ..spec.clone()
        }
    });
}
