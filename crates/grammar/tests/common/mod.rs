//! Shared by the grammar tests: locate test models, run constrained decoding.
#![allow(dead_code)]

use llmos_engine::{Engine, LoadOptions};
use llmos_grammar::{Constraint, GrammarVocab};
use llmos_model::Logits;
use std::path::PathBuf;

/// `$LLMOS_TEST_MODELS/<name>.gguf`. None (with a note) when absent, unless
/// `LLMOS_REQUIRE_MODELS=1`, where a missing model fails the test: CI must
/// never skip silently.
pub fn model_path(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("LLMOS_TEST_MODELS").map(PathBuf::from);
    let p = dir
        .map(|d| d.join(format!("{name}.gguf")))
        .filter(|p| p.is_file());
    if p.is_none() {
        assert!(
            std::env::var("LLMOS_REQUIRE_MODELS").as_deref() != Ok("1"),
            "model {name} not found under $LLMOS_TEST_MODELS and LLMOS_REQUIRE_MODELS=1"
        );
        eprintln!("skipping: model {name} not found (set LLMOS_TEST_MODELS)");
    }
    p
}

/// The engine for a test model (2 threads: the test machines are small).
pub fn engine(name: &str) -> Option<Engine> {
    let p = model_path(name)?;
    Some(
        Engine::load(
            &p,
            LoadOptions {
                threads: 2,
                template: None,
            },
        )
        .expect("load model"),
    )
}

/// How to pick a token from masked logits.
#[derive(Clone, Copy)]
pub enum Pick {
    Argmax,
    /// Sample from softmax(logits / t) with a seeded SplitMix64.
    Random {
        seed: u64,
        temperature: f32,
    },
}

/// What a constrained generation produced.
pub struct Run {
    pub text: String,
    pub tokens: Vec<u32>,
    /// The grammar finished, or the model chose an end-of-generation token.
    pub ended: bool,
    pub mean_mask: std::time::Duration,
}

fn splitmix(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick(logits: &[f32], how: Pick, state: &mut u64) -> u32 {
    match how {
        Pick::Argmax => {
            let mut best = 0;
            for (i, &l) in logits.iter().enumerate() {
                if l > logits[best] {
                    best = i;
                }
            }
            best as u32
        }
        Pick::Random { temperature, .. } => {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let w: Vec<f64> = logits
                .iter()
                .map(|&l| (((l - max) / temperature) as f64).exp())
                .collect();
            let total: f64 = w.iter().sum();
            let mut r = (splitmix(state) >> 11) as f64 / (1u64 << 53) as f64 * total;
            for (i, &x) in w.iter().enumerate() {
                if x > 0.0 {
                    if r < x {
                        return i as u32;
                    }
                    r -= x;
                }
            }
            logits.iter().rposition(|l| l.is_finite()).unwrap_or(0) as u32
        }
    }
}

/// Decodes up to `max_tokens` after the chat `prompt` with `c` masking every
/// step, over the model's real logits.
pub fn generate(
    eng: &Engine,
    c: &mut Constraint,
    prompt: &str,
    max_tokens: usize,
    how: Pick,
) -> Run {
    let ids = eng.encode_prompt(prompt, true);
    let mut st = eng.model.new_state(ids.len() + max_tokens + 1, 64);
    let mut logits = eng
        .model
        .forward(&eng.pool, &mut st, &ids, 0, Logits::Last)
        .expect("prefill")
        .to_vec();
    let mut state = match how {
        Pick::Random { seed, .. } => seed,
        Pick::Argmax => 0,
    };
    let mut out = Vec::new();
    let mut ended = false;
    for _ in 0..max_tokens {
        c.mask_logits(&mut logits).expect("mask");
        let t = pick(&logits, how, &mut state);
        if eng.tokenizer.is_eog(t) {
            ended = true;
            break;
        }
        c.commit(t).expect("commit a token the mask allowed");
        out.push(t);
        if c.is_finished() {
            ended = true;
            break;
        }
        let pos = ids.len() + out.len() - 1;
        logits = eng
            .model
            .forward(&eng.pool, &mut st, &[t], pos, Logits::Last)
            .expect("decode")
            .to_vec();
    }
    Run {
        text: eng.tokenizer.decode(&out, true),
        tokens: out,
        ended,
        mean_mask: c.mask_stats().0,
    }
}

/// The vocabulary for an engine's tokenizer.
pub fn vocab(eng: &Engine) -> GrammarVocab {
    GrammarVocab::new(&eng.tokenizer).expect("vocab")
}
