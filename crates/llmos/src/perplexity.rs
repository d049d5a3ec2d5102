//! `llmos perplexity`: llama.cpp's method, so the numbers compare directly.
//! The text is tokenized once (BOS per metadata), cut into non-overlapping
//! chunks of `ctx` tokens; each chunk starts with BOS (when the model adds
//! one) and only the second half of each chunk is scored, so every scored
//! token has at least ctx/2 tokens of context.

use crate::cli::PerplexityArgs;
use anyhow::{bail, Context, Result};
use llmos_engine::{Engine, LoadOptions};
use llmos_model::Logits;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn run(path: &Path, a: &PerplexityArgs) -> Result<ExitCode> {
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: invalid UTF-8 at byte {}",
            a.file.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    let engine = Engine::load(
        path,
        LoadOptions {
            threads: a.threads,
            template: None,
        },
    )?;
    let tk = &engine.tokenizer;
    let tokens = tk.encode(&text, true, false);
    let n_ctx = a.ctx;
    if n_ctx < 4 {
        bail!("--ctx {n_ctx} is too small: at least 4 tokens are needed");
    }
    if tokens.len() < 2 * n_ctx {
        bail!(
            "{} is {} tokens; perplexity with --ctx {n_ctx} needs at least {} (2 × ctx)",
            a.file.display(),
            tokens.len(),
            2 * n_ctx
        );
    }
    let mut n_chunk = tokens.len() / n_ctx;
    if let Some(c) = a.chunks {
        n_chunk = n_chunk.min(c.max(1));
    }
    let bos = if tk.add_bos() { tk.bos() } else { None };
    let n_vocab = engine.model.cfg.n_vocab;
    let first = n_ctx / 2;
    let mut st = engine.model.new_state(n_ctx, llmos_engine::MAX_BATCH);
    let mut nll_sum = 0.0f64;
    let mut nll2_sum = 0.0f64;
    let mut count = 0usize;
    let mut out = std::io::stdout().lock();
    eprintln!(
        "perplexity: {} tokens, {n_chunk} chunks of {n_ctx}, scoring positions {first}..{}",
        tokens.len(),
        n_ctx - 1
    );
    let t0 = std::time::Instant::now();
    let mut chunk_toks = vec![0u32; n_ctx];
    for c in 0..n_chunk {
        chunk_toks.copy_from_slice(&tokens[c * n_ctx..(c + 1) * n_ctx]);
        if let Some(b) = bos {
            chunk_toks[0] = b;
        }
        st.truncate(0);
        // Logits only for positions first..n_ctx, the ones that are scored.
        let logits = engine.model.forward(
            &engine.pool,
            &mut st,
            &chunk_toks,
            0,
            Logits::Tail(n_ctx - first),
        )?;
        for j in first..n_ctx - 1 {
            let row = &logits[(j - first) * n_vocab..(j - first + 1) * n_vocab];
            let target = tokens[c * n_ctx + j + 1] as usize;
            let nll = -log_softmax_at(row, target);
            nll_sum += nll;
            nll2_sum += nll * nll;
            count += 1;
        }
        write!(out, "[{}]{:.4},", c + 1, (nll_sum / count as f64).exp())?;
        out.flush()?;
    }
    let mean = nll_sum / count as f64;
    let var = (nll2_sum / count as f64 - mean * mean).max(0.0);
    let ppl = mean.exp();
    let err = ppl * (var / (count as f64 - 1.0).max(1.0)).sqrt();
    writeln!(out)?;
    eprintln!(
        "scored {count} tokens in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    writeln!(out, "Final estimate: PPL = {ppl:.4} +/- {err:.5}")?;
    writeln!(out, "PPL = {ppl:.4}")?;
    Ok(ExitCode::SUCCESS)
}

fn log_softmax_at(row: &[f32], i: usize) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&l| (l as f64 - max).exp()).sum();
    row[i] as f64 - max - sum.ln()
}
