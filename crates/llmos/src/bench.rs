//! `llmos bench`: prompt-processing and generation speed, modelled on
//! llama.cpp's `llama-bench`, so the two tables read the same way.
//!
//! - `pp{P}`: P seeded random token ids run as one prompt (batched in
//!   `MAX_BATCH` steps by `Model::forward`) on an empty cache.
//! - `tg{N}`: N single-token steps starting from an empty cache, as
//!   llama-bench's tg does (no prompt before it).
//!
//! Each test runs once to warm up (page in the mmap, size the scratch),
//! then `reps` timed times; the report is mean ± sample stddev of tokens/s.
//! No tokenizer or sampler runs: this measures the forward pass only.

use crate::cli::BenchArgs;
use anyhow::{bail, Context, Result};
use llmos_gguf::GgufFile;
use llmos_kernels::pool::ThreadPool;
use llmos_model::{Logits, Model, State};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Seed for the prompt's token ids: fixed, so runs compare.
const SEED: u64 = 0x6c6c_6d6f_7362_656e;

/// One test's result.
struct TestResult {
    name: String,
    n_prompt: usize,
    n_gen: usize,
    /// Tokens per second, one per timed rep.
    samples: Vec<f64>,
}

pub fn run(path: &Path, a: &BenchArgs) -> Result<ExitCode> {
    if a.reps == 0 {
        bail!("-r/--reps 0: at least one repetition is needed");
    }
    let file = GgufFile::open(path).with_context(|| format!("opening {}", path.display()))?;
    let model =
        Model::load(Arc::new(file)).with_context(|| format!("loading {}", path.display()))?;
    let n_ctx_train = model.cfg.n_ctx_train;
    for (flag, n) in [("-p/--n-prompt", a.n_prompt), ("-n/--n-gen", a.n_gen)] {
        if n > n_ctx_train {
            bail!("{flag} {n} is larger than the model's context (n_ctx_train = {n_ctx_train})");
        }
    }
    if a.n_prompt == 0 && a.n_gen == 0 {
        bail!("-p 0 and -n 0: nothing to measure");
    }
    // Each test starts from an empty cache, so the larger one sets the size;
    // rounded up to 256 (as llama.cpp pads its KV cache) but never past training.
    let need = a.n_prompt.max(a.n_gen);
    let n_ctx = need.next_multiple_of(256).min(n_ctx_train).max(need);
    let threads = match a.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t,
    };
    let pool = ThreadPool::new(threads);
    let mut st = model.new_state(n_ctx, llmos_engine::MAX_BATCH);

    let mut results = Vec::new();
    if a.n_prompt > 0 {
        let toks = random_tokens(a.n_prompt, model.cfg.n_vocab, SEED);
        let samples = repeat(a.reps, || prefill(&model, &pool, &mut st, &toks))?;
        results.push(TestResult {
            name: format!("pp{}", a.n_prompt),
            n_prompt: a.n_prompt,
            n_gen: 0,
            samples,
        });
    }
    if a.n_gen > 0 {
        let toks = random_tokens(a.n_gen, model.cfg.n_vocab, SEED ^ 1);
        let samples = repeat(a.reps, || decode(&model, &pool, &mut st, &toks))?;
        results.push(TestResult {
            name: format!("tg{}", a.n_gen),
            n_prompt: 0,
            n_gen: a.n_gen,
            samples,
        });
    }

    let info = ModelInfo::of(path, &model);
    let threads = pool.n_threads();
    let simd = llmos_kernels::simd::simd_level();
    let rss = peak_rss_bytes();
    let mut out = std::io::stdout().lock();
    if a.json {
        for r in &results {
            let (mean, sd) = mean_stddev(&r.samples);
            let v = serde_json::json!({
                "model": info.name,
                "model_size_bytes": info.bytes,
                "model_n_params": info.params,
                "arch": model.cfg.arch.name(),
                "simd": simd,
                "threads": threads,
                "n_prompt": r.n_prompt,
                "n_gen": r.n_gen,
                "n_ctx": n_ctx,
                "test": r.name,
                "reps": a.reps,
                "tokens_per_second": mean,
                "stddev": sd,
                "samples_ts": r.samples,
                "peak_rss_bytes": rss,
            });
            writeln!(out, "{v}")?;
        }
    } else {
        print_table(&mut out, &info, simd, threads, &results)?;
        let rss = rss.map_or_else(|| "n/a".to_string(), |b| format!("{:.2} GiB", gib(b)));
        writeln!(out, "\npeak RSS: {rss}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One warm-up call, then `reps` timed calls; each returns tokens/s.
fn repeat(reps: usize, mut f: impl FnMut() -> Result<f64>) -> Result<Vec<f64>> {
    f()?;
    (0..reps).map(|_| f()).collect()
}

/// The whole prompt in one `forward` call on an empty cache.
fn prefill(model: &Model, pool: &ThreadPool, st: &mut State, toks: &[u32]) -> Result<f64> {
    st.truncate(0);
    let t0 = Instant::now();
    model.forward(pool, st, toks, 0, Logits::Last)?;
    Ok(toks.len() as f64 / t0.elapsed().as_secs_f64())
}

/// One token per `forward` call, positions 0..N, as generation runs.
fn decode(model: &Model, pool: &ThreadPool, st: &mut State, toks: &[u32]) -> Result<f64> {
    st.truncate(0);
    let t0 = Instant::now();
    for (pos, t) in toks.iter().enumerate() {
        model.forward(pool, st, std::slice::from_ref(t), pos, Logits::Last)?;
    }
    Ok(toks.len() as f64 / t0.elapsed().as_secs_f64())
}

/// `n` ids in `0..n_vocab` from SplitMix64: valid, seeded, no tokenizer needed.
fn random_tokens(n: usize, n_vocab: usize, seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z % n_vocab as u64) as u32
        })
        .collect()
}

/// Mean and sample standard deviation (n - 1; 0 for a single sample).
fn mean_stddev(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// What the table's first columns say about the model.
struct ModelInfo {
    name: String,
    /// Bytes of tensor data (weights), as llama-bench's "size".
    bytes: u64,
    params: u64,
}

impl ModelInfo {
    fn of(path: &Path, model: &Model) -> ModelInfo {
        let tensors = model.file().tensors();
        ModelInfo {
            name: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            bytes: tensors.iter().map(|t| t.n_bytes).sum(),
            params: tensors.iter().map(|t| t.n_elements()).sum(),
        }
    }
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

fn human_params(p: u64) -> String {
    if p >= 1_000_000_000 {
        format!("{:.2} B", p as f64 / 1e9)
    } else {
        format!("{:.2} M", p as f64 / 1e6)
    }
}

fn print_table(
    out: &mut impl Write,
    m: &ModelInfo,
    simd: &str,
    threads: usize,
    results: &[TestResult],
) -> std::io::Result<()> {
    let w = m.name.len().max(5);
    writeln!(
        out,
        "| {:<w$} | {:>10} | {:>10} | {:<16} | {:>7} | {:>8} | {:>20} |",
        "model", "size", "params", "backend", "threads", "test", "t/s"
    )?;
    writeln!(
        out,
        "| {:-<w$} | {:->9}: | {:->9}: | {:-<16} | {:->6}: | {:->7}: | {:->19}: |",
        "", "", "", "", "", "", ""
    )?;
    for r in results {
        let (mean, sd) = mean_stddev(&r.samples);
        writeln!(
            out,
            "| {:<w$} | {:>6.2} GiB | {:>10} | {:<16} | {:>7} | {:>8} | {:>20} |",
            m.name,
            gib(m.bytes),
            human_params(m.params),
            format!("CPU {simd}"),
            threads,
            r.name,
            format!("{mean:.2} ± {sd:.2}"),
        )?;
    }
    Ok(())
}

/// Peak resident set size (VmHWM), where the OS reports it.
fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stddev_is_the_sample_one() {
        let (m, s) = mean_stddev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        assert!((s - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_stddev(&[3.0]), (3.0, 0.0));
    }

    #[test]
    fn tokens_are_seeded_and_in_range() {
        let a = random_tokens(1000, 49152, 7);
        assert_eq!(a, random_tokens(1000, 49152, 7));
        assert!(a.iter().all(|&t| t < 49152));
        assert_ne!(a, random_tokens(1000, 49152, 8));
    }
}
