//! Logits and greedy continuations against llama.cpp.
//!
//! Fixtures: tests/fixtures/logits/<model>.json (+ .f32 last-position logits),
//! produced by tools/ref/make_logit_fixtures.py with llama.cpp (see the
//! `_meta` block of each file for version, parameters and date).
//!
//! Tolerances, and why: llama.cpp keeps the KV cache in f16 and runs flash
//! attention in f16 where llmos keeps f32, and both quantize activations to
//! 8 bits, so logits differ by float noise that grows with depth. We require
//! (1) the same argmax at the last prompt position, (2) max |Δlogit| ≤ 2% of
//! the reference logit range, with RMS Δ ≤ 0.5% of it, (3) the top-5 sets to
//! agree, and (4) the first 32 greedy tokens to be identical.

use llmos_gguf::GgufFile;
use llmos_kernels::pool::ThreadPool;
use llmos_model::{Logits, Model};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAX_ABS_FRAC: f32 = 0.02;
const RMS_FRAC: f32 = 0.005;
const GREEDY_MUST_MATCH: usize = 32;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/logits")
}

fn model(name: &str) -> Option<Model> {
    let dir = std::env::var_os("LLMOS_TEST_MODELS").map(PathBuf::from);
    let p = dir
        .map(|d| d.join(format!("{name}.gguf")))
        .filter(|p| p.is_file());
    let Some(p) = p else {
        assert!(
            std::env::var("LLMOS_REQUIRE_MODELS").as_deref() != Ok("1"),
            "{name} missing"
        );
        eprintln!("skipping: {name} not found (set LLMOS_TEST_MODELS)");
        return None;
    };
    Some(Model::load(Arc::new(GgufFile::open(p).unwrap())).unwrap())
}

fn argmax(l: &[f32]) -> usize {
    let mut b = 0;
    for (i, &v) in l.iter().enumerate() {
        if v > l[b] {
            b = i;
        }
    }
    b
}

fn top_k(l: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..l.len()).collect();
    idx.sort_by(|&a, &b| l[b].total_cmp(&l[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx.sort();
    idx
}

fn check(name: &str) {
    let path = fixtures().join(format!("{name}.json"));
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let Some(m) = model(name) else { return };
    let pool = ThreadPool::new(2);
    for (k, p) in fx["prompts"].as_array().unwrap().iter().enumerate() {
        let ids: Vec<u32> = p["prompt_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let bytes =
            std::fs::read(fixtures().join(p["last_logits_file"].as_str().unwrap())).unwrap();
        let want: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let mut st = m.new_state(ids.len() + 64, 64);
        let got = m
            .forward(&pool, &mut st, &ids, 0, Logits::Last)
            .unwrap()
            .to_vec();
        assert_eq!(got.len(), want.len(), "{name}[{k}]: vocab size");

        let range = want.iter().copied().fold(f32::NEG_INFINITY, f32::max)
            - want.iter().copied().fold(f32::INFINITY, f32::min);
        let max_abs = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let rms = (got
            .iter()
            .zip(&want)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            / got.len() as f64)
            .sqrt() as f32;
        eprintln!(
            "{name}[{k}]: {} prompt tokens, logit range {range:.2}, max|Δ| {max_abs:.4} ({:.3}%), rms Δ {rms:.5}",
            ids.len(),
            100.0 * max_abs / range
        );
        assert_eq!(argmax(&got), argmax(&want), "{name}[{k}]: argmax differs");
        assert!(
            max_abs <= MAX_ABS_FRAC * range,
            "{name}[{k}]: max |Δlogit| {max_abs} > {MAX_ABS_FRAC} × range {range}"
        );
        assert!(
            rms <= RMS_FRAC * range,
            "{name}[{k}]: rms Δ {rms} > {RMS_FRAC} × range {range}"
        );
        assert_eq!(
            top_k(&got, 5),
            top_k(&want, 5),
            "{name}[{k}]: top-5 sets differ"
        );

        // Greedy continuation, fed back one token at a time like the reference.
        let g = &p["greedy"];
        let ref_ids: Vec<u32> = g["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let mut ours = Vec::new();
        let mut logits = got;
        for _ in 0..ref_ids.len() {
            let t = argmax(&logits) as u32;
            ours.push(t);
            let pos = ids.len() + ours.len() - 1;
            logits = m
                .forward(&pool, &mut st, &[t], pos, Logits::Last)
                .unwrap()
                .to_vec();
        }
        let same = ours
            .iter()
            .zip(&ref_ids)
            .take_while(|(a, b)| a == b)
            .count();
        eprintln!(
            "{name}[{k}]: greedy matches llama.cpp for {same}/{} tokens",
            ref_ids.len()
        );
        let need = GREEDY_MUST_MATCH.min(ref_ids.len());
        assert!(same >= need, "{name}[{k}]: greedy diverges at token {same} (need {need}): ours {ours:?} vs llama.cpp {ref_ids:?}");
    }
}

#[test]
fn smollm2_matches_llama_cpp() {
    check("smollm2-135m-instruct");
}

#[test]
fn qwen2_0_5b_matches_llama_cpp() {
    check("qwen2.5-coder-0.5b-instruct");
}

#[test]
fn qwen2_1_5b_matches_llama_cpp() {
    check("qwen2.5-coder-1.5b-instruct");
}

#[test]
fn gemma3_matches_llama_cpp() {
    check("gemma3-270m");
}
