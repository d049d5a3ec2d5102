//! The llguidance token environment built from each test model's tokenizer.

mod common;

use llmos_grammar::{Constraint, ConstraintSpec, GrammarVocab};
use std::time::Instant;

const MODELS: [&str; 4] = [
    "smollm2-135m-instruct",
    "qwen2.5-coder-0.5b-instruct",
    "qwen2.5-coder-1.5b-instruct",
    "gemma3-270m",
];

/// Ids of the tokens `mask_logits` leaves finite.
fn allowed(c: &mut Constraint, n: usize) -> Vec<u32> {
    let mut l = vec![0.0f32; n];
    c.mask_logits(&mut l).expect("mask");
    (0..n as u32)
        .filter(|&i| l[i as usize].is_finite())
        .collect()
}

#[test]
fn vocab_builds_for_every_model_and_masks_json_start() {
    for name in MODELS {
        let Some(eng) = common::engine(name) else {
            continue;
        };
        let tok = &eng.tokenizer;
        let t0 = Instant::now();
        let vocab = GrammarVocab::new(tok).expect("vocab");
        eprintln!(
            "{name}: vocab of {} tokens built in {:?}",
            vocab.n_vocab(),
            t0.elapsed()
        );
        assert_eq!(vocab.n_vocab(), tok.vocab_size());

        // The model's logits row may be padded past the vocabulary.
        let n_logits = eng.model.cfg.n_vocab;
        assert!(n_logits >= vocab.n_vocab());
        let mut c = Constraint::new(&vocab, &ConstraintSpec::JsonObject).expect("json_object");
        let ok = allowed(&mut c, n_logits);
        // A JSON object starts with "{" (maybe after bounded whitespace):
        // every allowed token's text starts with "{", " " or "\n".
        assert!(!ok.is_empty(), "{name}: nothing allowed");
        for &t in &ok {
            let b = tok.token_bytes(t);
            assert!(
                matches!(b.first(), Some(b'{' | b' ' | b'\n')),
                "{name}: token {t} {:?} allowed at the start of a JSON object",
                String::from_utf8_lossy(b)
            );
            assert!(!tok.is_eog(t), "{name}: EOS allowed before any JSON");
            assert!((t as usize) < vocab.n_vocab());
        }
        let brace = tok.encode("{", false, false);
        assert_eq!(brace.len(), 1);
        assert!(ok.contains(&brace[0]), "{name}: '{{' not allowed");

        // After a complete object only end-of-generation (and trailing
        // whitespace) may follow; EOS must be allowed.
        let ids = tok.encode("{\"a\": [1, true]}", false, false);
        for &t in &ids {
            c.commit(t).expect("commit");
        }
        let ok = allowed(&mut c, n_logits);
        let eos = tok.eos().expect("eos");
        assert!(
            ok.contains(&eos) || tok.eog_tokens().iter().any(|e| ok.contains(e)),
            "{name}: EOS not allowed after a complete object"
        );
        for &t in &ok {
            let b = tok.token_bytes(t);
            assert!(
                tok.is_eog(t) || b.iter().all(|c| c.is_ascii_whitespace()),
                "{name}: {:?} allowed after a complete object",
                String::from_utf8_lossy(b)
            );
        }
    }
}

#[test]
fn qwen_tool_call_tag_is_a_text_token() {
    let Some(eng) = common::engine("qwen2.5-coder-0.5b-instruct") else {
        return;
    };
    let tok = &eng.tokenizer;
    let id = tok
        .token_id("<tool_call>")
        .expect("<tool_call> in Qwen2.5's vocabulary");
    // user-defined, not control: llama.cpp's llguidance sees its text
    assert!(!tok.is_control(id));
    assert_eq!(tok.token_bytes(id), b"<tool_call>");
    assert!(!GrammarVocab::new(tok).expect("vocab").tool_tags_special());
    assert_eq!(tok.encode("<tool_call>", false, true), vec![id]);
}
