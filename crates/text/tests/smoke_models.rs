//! Properties of the real models' tokenizers that hold whatever the goldens say.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

#[test]
fn print_some_encodings() {
    for stem in common::MODELS {
        let Some(path) = common::model_path(stem) else {
            continue;
        };
        let g = llmos_gguf::GgufFile::open(&path).unwrap();
        let t0 = Instant::now();
        let tok = llmos_text::Tokenizer::from_gguf(&g).unwrap();
        eprintln!(
            "{stem}: built in {:?}, vocab {}",
            t0.elapsed(),
            tok.vocab_size()
        );
        for s in [
            "Hello world",
            "  leading spaces and 12345 digits\n\n\ttab",
            "<|im_start|>user\nhi<|im_end|>",
            "émoji 🤖 中文",
            "<start_of_turn>user\n",
        ] {
            let ids = tok.encode(s, true, true);
            let pieces: Vec<String> = ids
                .iter()
                .map(|&i| format!("{:?}", tok.token_text(i).unwrap_or("?")))
                .collect();
            eprintln!("  {s:?} -> {ids:?} {}", pieces.join(" "));
        }
    }
}

#[test]
fn startup_time_breakdown() {
    for stem in common::MODELS {
        let Some(path) = common::model_path(stem) else {
            continue;
        };
        let g = llmos_gguf::GgufFile::open(&path).unwrap();
        let t0 = Instant::now();
        let spec = llmos_text::TokenizerSpec::from_gguf(&g).unwrap();
        let t1 = Instant::now();
        let _tok = llmos_text::Tokenizer::from_spec(spec).unwrap();
        let t2 = Instant::now();
        eprintln!("{stem}: spec {:?} build {:?}", t1 - t0, t2 - t1);
    }
}
