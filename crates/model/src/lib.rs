//! llmos-model: transformer forward passes over GGUF weights.
//!
//! The state is split three ways, as in llama2.c: [`Config`] (hyperparameters
//! from metadata), [`Weights`] (borrowed from the mmap; only norms and biases
//! are copied) and [`State`] (KV cache and scratch, allocated once). Nothing is
//! allocated in the token loop.
//!
//! Llama, Qwen2 and Gemma 3 are the same pre-norm decoder with switches (QKV
//! bias, q/k norms, post-norms, GeGLU, embedding scale, sliding windows), so
//! one [`forward`](Model::forward) serves all three and the per-architecture
//! differences live in [`Config::from_gguf`] and [`Weights::load`]. A prompt is
//! processed as a matrix of tokens (prefill is a GEMM, not a loop of GEMVs).

mod config;
mod error;
mod weights;

pub use config::{Activation, Arch, Config};
pub use error::ModelError;
pub use weights::{Layer, Mat, Weights};

use llmos_gguf::GgufFile;
use llmos_kernels::matmul::{matmul, MatmulScratch};
use llmos_kernels::ops::{self, Rope};
use llmos_kernels::par::for_each_chunk_mut;
use llmos_kernels::pool::ThreadPool;
use llmos_kernels::quant;
use std::sync::Arc;

/// Which logits a forward call produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only after the last token: (n_vocab).
    Last,
    /// After every token: (n_tokens, n_vocab) — for scoring.
    All,
    /// After each of the last `n` tokens: (n, n_vocab) — perplexity scores
    /// only the second half of a chunk, and the head is the biggest matmul.
    Tail(usize),
}

/// A loaded model: hyperparameters plus weights borrowed from the file.
pub struct Model {
    pub cfg: Config,
    pub weights: Weights,
    file: Arc<GgufFile>,
    rope: Rope,
    rope_swa: Rope,
}

/// Per-sequence state: the KV cache and scratch buffers for up to
/// `max_batch` tokens per forward step.
pub struct State {
    n_ctx: usize,
    max_batch: usize,
    /// Tokens whose keys and values are in the cache.
    filled: usize,
    key_cache: Vec<f32>, // (n_layer, n_ctx, kv_dim)
    val_cache: Vec<f32>, // (n_layer, n_ctx, v_dim)
    x: Vec<f32>,         // (B, n_embd) residual stream
    xb: Vec<f32>,        // (B, n_embd) normed input of a sub-block
    xb2: Vec<f32>,       // (B, n_embd) output of a sub-block
    q: Vec<f32>,         // (B, q_dim)
    k: Vec<f32>,         // (B, kv_dim)
    v: Vec<f32>,         // (B, v_dim)
    att: Vec<f32>,       // (B, n_head * head_dim_v)
    hb: Vec<f32>,        // (B, n_ff)
    hb2: Vec<f32>,       // (B, n_ff)
    logits: Vec<f32>,    // (n_out, n_vocab)
    mm: MatmulScratch,
}

impl State {
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }
    /// Tokens currently held in the KV cache.
    pub fn len(&self) -> usize {
        self.filled
    }
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }
    /// Forget everything from position `pos` on (e.g. to reuse a prefix).
    pub fn truncate(&mut self, pos: usize) {
        self.filled = self.filled.min(pos);
    }
    /// Bytes held by the KV cache.
    pub fn kv_bytes(&self) -> usize {
        (self.key_cache.len() + self.val_cache.len()) * std::mem::size_of::<f32>()
    }
}

impl Model {
    /// Reads the configuration and checks every tensor.
    ///
    /// # Errors
    /// Unknown architecture, missing metadata or tensors, bad shapes and
    /// unsupported tensor types, each naming the culprit.
    pub fn load(file: Arc<GgufFile>) -> Result<Model, ModelError> {
        let cfg = Config::from_gguf(&file)?;
        let weights = Weights::load(&file, &cfg)?;
        let ff = weights.rope_freqs.as_deref();
        let rope = Rope::new(
            cfg.rope_style,
            cfg.rope_dims,
            cfg.rope_base,
            cfg.rope_freq_scale,
            ff,
        );
        let rope_swa = Rope::new(cfg.rope_style, cfg.rope_dims, cfg.rope_base_swa, 1.0, ff);
        Ok(Model {
            cfg,
            weights,
            file,
            rope,
            rope_swa,
        })
    }

    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// Allocates a state holding `n_ctx` tokens, running up to `max_batch`
    /// tokens per step.
    pub fn new_state(&self, n_ctx: usize, max_batch: usize) -> State {
        let c = &self.cfg;
        let b = max_batch.max(1);
        State {
            n_ctx,
            max_batch: b,
            filled: 0,
            key_cache: vec![0.0; c.n_layer * n_ctx * c.kv_dim()],
            val_cache: vec![0.0; c.n_layer * n_ctx * c.v_dim()],
            x: vec![0.0; b * c.n_embd],
            xb: vec![0.0; b * c.n_embd],
            xb2: vec![0.0; b * c.n_embd],
            q: vec![0.0; b * c.q_dim()],
            k: vec![0.0; b * c.kv_dim()],
            v: vec![0.0; b * c.v_dim()],
            att: vec![0.0; b * c.n_head * c.head_dim_v],
            hb: vec![0.0; b * c.n_ff],
            hb2: vec![0.0; b * c.n_ff],
            logits: Vec::new(),
            mm: MatmulScratch::default(),
        }
    }

    /// Runs `tokens` at positions `pos..pos + tokens.len()` and returns the
    /// logits asked for. Long inputs are split into `max_batch` steps.
    ///
    /// # Errors
    /// A token outside the vocabulary, a position past the cached tokens, or
    /// a context overflow; the state is unchanged then.
    pub fn forward<'s>(
        &self,
        pool: &ThreadPool,
        st: &'s mut State,
        tokens: &[u32],
        pos: usize,
        want: Logits,
    ) -> Result<&'s [f32], ModelError> {
        let c = &self.cfg;
        if tokens.is_empty() {
            return Err(ModelError::EmptyBatch);
        }
        if pos > st.filled {
            return Err(ModelError::BadPosition {
                pos,
                filled: st.filled,
            });
        }
        if pos + tokens.len() > st.n_ctx {
            return Err(ModelError::ContextFull {
                needed: pos + tokens.len(),
                n_ctx: st.n_ctx,
                n_ctx_train: c.n_ctx_train,
            });
        }
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
            return Err(ModelError::BadToken {
                id,
                n_vocab: c.n_vocab,
            });
        }
        // Logits are produced for tokens out_start.. of this call.
        let out_start = match want {
            Logits::Last => tokens.len() - 1,
            Logits::All => 0,
            Logits::Tail(n) => tokens.len() - n.clamp(1, tokens.len()),
        };
        st.logits
            .resize((tokens.len() - out_start) * c.n_vocab, 0.0);
        let mut done = 0;
        for chunk in tokens.chunks(st.max_batch) {
            let p = pos + done;
            self.forward_batch(pool, st, chunk, p)?;
            st.filled = p + chunk.len();
            let first = out_start.max(done);
            let end = done + chunk.len();
            if first < end {
                self.head(
                    pool,
                    st,
                    end - first,
                    first - done,
                    (first - out_start) * c.n_vocab,
                );
            }
            done = end;
        }
        Ok(&st.logits)
    }

    /// One step over `toks` (≤ max_batch) at positions `pos..`; leaves the
    /// final hidden states in `st.x`.
    fn forward_batch(
        &self,
        pool: &ThreadPool,
        st: &mut State,
        toks: &[u32],
        pos: usize,
    ) -> Result<(), ModelError> {
        let c = &self.cfg;
        let w = &self.weights;
        let f = &*self.file;
        let (b, e) = (toks.len(), c.n_embd);

        // embed: one dequantized row per token, scaled for Gemma
        let emb = w.tok_embd.q(f);
        for (t, &tok) in toks.iter().enumerate() {
            let row = &emb.data[tok as usize * emb.row_bytes()..][..emb.row_bytes()];
            let x = &mut st.x[t * e..(t + 1) * e];
            quant::dequantize_row(emb.ty, row, x).map_err(|source| ModelError::Kernel {
                name: "token_embd.weight".into(),
                source,
            })?;
            if let Some(s) = c.embd_scale {
                x.iter_mut().for_each(|v| *v *= s);
            }
        }

        for (il, l) in w.layers.iter().enumerate() {
            // attention norm
            norm_rows(
                &mut st.xb[..b * e],
                &st.x[..b * e],
                &l.attn_norm,
                e,
                c.norm_eps,
            );
            // q, k, v projections (+ bias)
            matmul(
                pool,
                &l.wq.q(f),
                &st.xb[..b * e],
                b,
                &mut st.q[..b * c.q_dim()],
                &mut st.mm,
            );
            matmul(
                pool,
                &l.wk.q(f),
                &st.xb[..b * e],
                b,
                &mut st.k[..b * c.kv_dim()],
                &mut st.mm,
            );
            matmul(
                pool,
                &l.wv.q(f),
                &st.xb[..b * e],
                b,
                &mut st.v[..b * c.v_dim()],
                &mut st.mm,
            );
            add_bias(&mut st.q[..b * c.q_dim()], l.bq.as_deref());
            add_bias(&mut st.k[..b * c.kv_dim()], l.bk.as_deref());
            add_bias(&mut st.v[..b * c.v_dim()], l.bv.as_deref());
            // per-head q/k norms (Gemma 3), then rope
            let rope = if c.is_swa(il) {
                &self.rope_swa
            } else {
                &self.rope
            };
            let hd = c.head_dim;
            for t in 0..b {
                let qt = &mut st.q[t * c.q_dim()..(t + 1) * c.q_dim()];
                for head in qt.chunks_exact_mut(hd) {
                    if let Some(n) = &l.q_norm {
                        ops::rmsnorm_inplace(head, n, c.norm_eps);
                    }
                    rope.apply(head, pos + t);
                }
                let kt = &mut st.k[t * c.kv_dim()..(t + 1) * c.kv_dim()];
                for head in kt.chunks_exact_mut(hd) {
                    if let Some(n) = &l.k_norm {
                        ops::rmsnorm_inplace(head, n, c.norm_eps);
                    }
                    rope.apply(head, pos + t);
                }
            }
            // cache k, v at their positions
            let (kvd, vd) = (c.kv_dim(), c.v_dim());
            let kbase = il * st.n_ctx * kvd;
            let vbase = il * st.n_ctx * vd;
            st.key_cache[kbase + pos * kvd..kbase + (pos + b) * kvd]
                .copy_from_slice(&st.k[..b * kvd]);
            st.val_cache[vbase + pos * vd..vbase + (pos + b) * vd].copy_from_slice(&st.v[..b * vd]);
            // attention over the cache, one (token, head) pair per task
            let window = if c.is_swa(il) { c.sliding_window } else { None };
            let kc = &st.key_cache[kbase..kbase + (pos + b) * kvd];
            let vc = &st.val_cache[vbase..vbase + (pos + b) * vd];
            let q = &st.q;
            let hdv = c.head_dim_v;
            let group = c.n_head / c.n_head_kv;
            for_each_chunk_mut(pool, &mut st.att[..b * c.n_head * hdv], hdv, |i, out| {
                let (t, h) = (i / c.n_head, i % c.n_head);
                let qh = &q[t * c.q_dim() + h * hd..][..hd];
                let kvh = h / group;
                let p = pos + t;
                let lo = window.map_or(0, |win| (p + 1).saturating_sub(win));
                attend(
                    out,
                    qh,
                    kc,
                    vc,
                    kvd,
                    vd,
                    kvh * hd,
                    kvh * hdv,
                    lo,
                    p,
                    c.attn_scale,
                );
            });
            // output projection, post-norm (Gemma), residual
            let att_dim = c.n_head * hdv;
            matmul(
                pool,
                &l.wo.q(f),
                &st.att[..b * att_dim],
                b,
                &mut st.xb2[..b * e],
                &mut st.mm,
            );
            if let Some(n) = &l.post_attn_norm {
                norm_rows_inplace(&mut st.xb2[..b * e], n, e, c.norm_eps);
            }
            ops::add_inplace(&mut st.x[..b * e], &st.xb2[..b * e]);

            // ffn norm, gate/up, GLU, down, post-norm (Gemma), residual
            norm_rows(
                &mut st.xb[..b * e],
                &st.x[..b * e],
                &l.ffn_norm,
                e,
                c.norm_eps,
            );
            let nf = c.n_ff;
            matmul(
                pool,
                &l.w_gate.q(f),
                &st.xb[..b * e],
                b,
                &mut st.hb[..b * nf],
                &mut st.mm,
            );
            matmul(
                pool,
                &l.w_up.q(f),
                &st.xb[..b * e],
                b,
                &mut st.hb2[..b * nf],
                &mut st.mm,
            );
            match c.activation {
                Activation::Silu => ops::swiglu(&mut st.hb[..b * nf], &st.hb2[..b * nf]),
                Activation::GeluTanh => ops::geglu(&mut st.hb[..b * nf], &st.hb2[..b * nf]),
            }
            matmul(
                pool,
                &l.w_down.q(f),
                &st.hb[..b * nf],
                b,
                &mut st.xb2[..b * e],
                &mut st.mm,
            );
            if let Some(n) = &l.post_ffn_norm {
                norm_rows_inplace(&mut st.xb2[..b * e], n, e, c.norm_eps);
            }
            ops::add_inplace(&mut st.x[..b * e], &st.xb2[..b * e]);
        }
        Ok(())
    }

    /// Final norm and output head for `n` rows of `st.x` starting at row
    /// `first`, written to `st.logits[offset..]`.
    fn head(&self, pool: &ThreadPool, st: &mut State, n: usize, first: usize, offset: usize) {
        let c = &self.cfg;
        let e = c.n_embd;
        let rows = first * e..(first + n) * e;
        norm_rows(
            &mut st.xb[rows.clone()],
            &st.x[rows.clone()],
            &self.weights.output_norm,
            e,
            c.norm_eps,
        );
        let out = &mut st.logits[offset..offset + n * c.n_vocab];
        matmul(
            pool,
            &self.weights.output.q(&self.file),
            &st.xb[rows],
            n,
            out,
            &mut st.mm,
        );
    }
}

/// Attention of one query head over cached positions `lo..=p`, with an online
/// softmax so no score buffer is needed: out = Σ softmax(q·k·scale)_j v_j.
#[allow(clippy::too_many_arguments)]
fn attend(
    out: &mut [f32],
    q: &[f32],
    kc: &[f32],
    vc: &[f32],
    kv_stride: usize,
    v_stride: usize,
    k_off: usize,
    v_off: usize,
    lo: usize,
    p: usize,
    scale: f32,
) {
    let hd = q.len();
    out.iter_mut().for_each(|o| *o = 0.0);
    let (mut max, mut sum) = (f32::NEG_INFINITY, 0.0f32);
    for j in lo..=p {
        let k = &kc[j * kv_stride + k_off..][..hd];
        let s = ops::dot_f32(q, k) * scale;
        if s > max {
            let correction = (max - s).exp();
            out.iter_mut().for_each(|o| *o *= correction);
            sum *= correction;
            max = s;
        }
        let wgt = (s - max).exp();
        sum += wgt;
        ops::axpy(out, wgt, &vc[j * v_stride + v_off..][..out.len()]);
    }
    let inv = 1.0 / sum;
    out.iter_mut().for_each(|o| *o *= inv);
}

fn norm_rows(out: &mut [f32], x: &[f32], w: &[f32], e: usize, eps: f32) {
    for (o, xr) in out.chunks_exact_mut(e).zip(x.chunks_exact(e)) {
        ops::rmsnorm(o, xr, w, eps);
    }
}

fn norm_rows_inplace(x: &mut [f32], w: &[f32], e: usize, eps: f32) {
    for r in x.chunks_exact_mut(e) {
        ops::rmsnorm_inplace(r, w, eps);
    }
}

fn add_bias(x: &mut [f32], bias: Option<&[f32]>) {
    if let Some(bias) = bias {
        for row in x.chunks_exact_mut(bias.len()) {
            ops::add_inplace(row, bias);
        }
    }
}
