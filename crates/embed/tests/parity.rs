//! Embedding parity with sentence-transformers on all-MiniLM-L6-v2.
//!
//! Reference: `tests/fixtures/embed/minilm.{json,bin}`, made once by
//! `tools/ref/make_embed_fixtures.py` (its JSON header records the versions
//! and the command). The bar is cosine ≥ 0.999 per text, for 60 texts: short,
//! empty after strip, unicode, code, and longer than the 256-piece limit
//! (truncated as sentence-transformers truncates).
//!
//! The model comes from `$LLMOS_TEST_MODELS/all-minilm-l6-v2/` (`.ci/run`
//! pulls it); without it the tests print a note and pass, unless
//! `LLMOS_REQUIRE_MODELS=1`.

use llmos_embed::{Embedder, LoadOptions, WeightFormat};
use std::path::PathBuf;

fn model_dir() -> Option<PathBuf> {
    let dir =
        std::env::var_os("LLMOS_TEST_MODELS").map(|d| PathBuf::from(d).join("all-minilm-l6-v2"));
    match dir {
        Some(d) if d.join("model.safetensors").is_file() => Some(d),
        _ => {
            assert!(
                std::env::var("LLMOS_REQUIRE_MODELS").as_deref() != Ok("1"),
                "all-minilm-l6-v2 not found under $LLMOS_TEST_MODELS and LLMOS_REQUIRE_MODELS=1"
            );
            eprintln!("note: all-minilm-l6-v2 not under $LLMOS_TEST_MODELS; skipping");
            None
        }
    }
}

struct Fixture {
    texts: Vec<String>,
    n_tokens: Vec<usize>,
    dim: usize,
    vecs: Vec<Vec<f32>>,
}

fn fixture() -> Fixture {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/embed");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("minilm.json")).expect("minilm.json"))
            .expect("minilm.json parses");
    let texts: Vec<String> = meta["texts"]
        .as_array()
        .expect("texts")
        .iter()
        .map(|t| t.as_str().expect("text").to_string())
        .collect();
    let n_tokens = meta["n_tokens"]
        .as_array()
        .expect("n_tokens")
        .iter()
        .map(|n| n.as_u64().expect("count") as usize)
        .collect();
    let dim = meta["dim"].as_u64().expect("dim") as usize;
    let bin = std::fs::read(root.join("minilm.bin")).expect("minilm.bin");
    assert_eq!(bin.len(), texts.len() * dim * 4, "minilm.bin size");
    let all: Vec<f32> = bin
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let vecs = all.chunks_exact(dim).map(<[f32]>::to_vec).collect();
    Fixture {
        texts,
        n_tokens,
        dim,
        vecs,
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn check(format: WeightFormat, bar: f64) {
    let Some(dir) = model_dir() else { return };
    let fx = fixture();
    assert!(fx.texts.len() >= 50);
    let e = Embedder::load_with(&dir, &LoadOptions { threads: 2, format }).expect("load");
    assert_eq!(e.dim(), fx.dim);
    assert_eq!(e.max_tokens(), 256);
    let refs: Vec<&str> = fx.texts.iter().map(String::as_str).collect();
    let t0 = std::time::Instant::now();
    let (got, total) = e.embed_counted(&refs).expect("embed");
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(total, fx.n_tokens.iter().sum::<usize>(), "total tokens");
    let mut worst = (1.0f64, 0usize);
    for (i, (g, r)) in got.iter().zip(&fx.vecs).enumerate() {
        assert_eq!(
            e.count_tokens(&fx.texts[i]),
            fx.n_tokens[i],
            "tokens of text {i} {:?}",
            fx.texts[i]
        );
        let c = cosine(g, r);
        if c < worst.0 {
            worst = (c, i);
        }
        let norm: f64 = g.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "text {i}: norm {norm}");
    }
    eprintln!(
        "{format:?}: {total} tokens in {secs:.2}s; worst cosine {:.6} on text {} {:?}",
        worst.0,
        worst.1,
        fx.texts[worst.1].chars().take(40).collect::<String>()
    );
    assert!(
        worst.0 >= bar,
        "{format:?}: cosine {} < {bar} on text {}",
        worst.0,
        worst.1
    );
}

#[test]
fn f32_matches_sentence_transformers() {
    check(WeightFormat::F32, 0.999);
}

#[test]
fn one_by_one_equals_batched() {
    let Some(dir) = model_dir() else { return };
    let e = Embedder::load(&dir).expect("load");
    let texts = ["short", "a somewhat longer sentence about retrieval", ""];
    let batched = e.embed(&texts).expect("embed");
    for (t, b) in texts.iter().zip(&batched) {
        let one = e.embed(&[t]).expect("embed");
        assert!(cosine(&one[0], b) > 0.999_999, "{t:?}");
    }
}

/// F16 weights are allowed by the bar too (0.999999 measured), though not
/// faster on the dot4 path; Q8_0 misses it (0.998 on "???"), so it is not
/// offered as a default.
#[test]
fn f16_matches_sentence_transformers() {
    check(WeightFormat::F16, 0.999);
}

/// bf16 on AMX tiles, the default where the CPU has AMX (PyTorch with both
/// GEMM inputs rounded to bf16 predicted a worst cosine of 0.99996 on
/// these texts). Without AMX this loads as F32 and checks that again.
#[test]
fn bf16_matches_sentence_transformers() {
    eprintln!(
        "bf16: AMX {}",
        if llmos_kernels::amx::available() {
            "present"
        } else {
            "absent: F32 path"
        }
    );
    check(WeightFormat::Bf16, 0.999);
}
