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

mod backend;
mod config;
mod error;
mod weights;

pub use backend::{AttnJob, Backend, Cpu, ATT_GROUPS, MAX_HEAD_DIM};
pub use config::{Activation, Arch, Config};
pub use error::ModelError;
pub use weights::{Layer, Mat, Weights};

use half::f16;
use llmos_gguf::GgufFile;
use llmos_kernels::matmul::MatmulScratch;
use llmos_kernels::ops::{self, Rope};
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
    backend: Box<dyn Backend>,
}

/// One sequence's KV cache: keys and values (f16, as llama.cpp's default
/// cache) for up to `n_ctx` positions, and how many are filled.
pub struct KvCache {
    n_ctx: usize,
    n_layer: usize,
    kv_dim: usize,
    v_dim: usize,
    /// Tokens whose keys and values are in the cache.
    filled: usize,
    key: Vec<f16>, // (n_layer, n_ctx, kv_dim)
    val: Vec<f16>, // (n_layer, n_ctx, v_dim)
}

impl KvCache {
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }
    /// Tokens currently held.
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
    /// Bytes allocated for keys and values.
    pub fn kv_bytes(&self) -> usize {
        (self.key.len() + self.val.len()) * std::mem::size_of::<f16>()
    }

    /// Makes positions `..upto` of this cache those of `src`, copying what
    /// this cache does not already hold, so a sequence can start from
    /// another's prefix (a shared system prompt) without recomputing it. The
    /// caller vouches that both caches hold the same tokens up to `upto`;
    /// positions this cache holds beyond `upto` are dropped.
    ///
    /// # Errors
    /// If `src` holds fewer than `upto` positions, this cache has room for
    /// fewer, or the caches belong to different models.
    pub fn copy_prefix_from(&mut self, src: &KvCache, upto: usize) -> Result<(), ModelError> {
        if (src.n_layer, src.kv_dim, src.v_dim) != (self.n_layer, self.kv_dim, self.v_dim) {
            return Err(ModelError::CacheMismatch);
        }
        if upto > src.filled {
            return Err(ModelError::BadPosition {
                pos: upto,
                filled: src.filled,
            });
        }
        if upto > self.n_ctx {
            return Err(ModelError::ContextFull {
                needed: upto,
                n_ctx: self.n_ctx,
                n_ctx_train: 0,
            });
        }
        let from = self.filled.min(upto);
        for il in 0..self.n_layer {
            for (dst, src_buf, d) in [
                (&mut self.key, &src.key, self.kv_dim),
                (&mut self.val, &src.val, self.v_dim),
            ] {
                let (db, sb) = (il * self.n_ctx * d, il * src.n_ctx * d);
                dst[db + from * d..db + upto * d]
                    .copy_from_slice(&src_buf[sb + from * d..sb + upto * d]);
            }
        }
        self.filled = upto;
        Ok(())
    }
}

/// Activation buffers for up to `max_batch` tokens per step, shared by every
/// sequence a step serves; allocated once, reused by every step.
pub struct Scratch {
    max_batch: usize,
    scores: Vec<f32>, // (ATT_GROUPS, n_ctx max) softmax scratch, one row per task group
    x: Vec<f32>,      // (B, n_embd) residual stream
    xb: Vec<f32>,     // (B, n_embd) normed input of a sub-block
    xb2: Vec<f32>,    // (B, n_embd) output of a sub-block
    q: Vec<f32>,      // (B, q_dim)
    k: Vec<f32>,      // (B, kv_dim)
    v: Vec<f32>,      // (B, v_dim)
    att: Vec<f32>,    // (B, n_head * head_dim_v)
    hb: Vec<f32>,     // (B, n_ff)
    hb2: Vec<f32>,    // (B, n_ff)
    /// Per token of the step: (index of its sequence, its position).
    tok_seq: Vec<(u32, u32)>,
    logits: Vec<f32>, // (n_out, n_vocab)
    mm: MatmulScratch,
}

impl Scratch {
    /// Most tokens one step may carry, over all its sequences.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }
}

/// One sequence's part of a [`Model::forward_multi`] step: `tokens` at
/// positions `pos..pos + tokens.len()` of `kv`, and which logits it wants.
pub struct SeqStep<'a> {
    pub kv: &'a mut KvCache,
    pub tokens: &'a [u32],
    pub pos: usize,
    pub logits: Logits,
}

/// A single sequence: its KV cache plus its own scratch buffers. The simple
/// interface for one user at a time (CLI, perplexity, bench).
pub struct State {
    kv: KvCache,
    scratch: Scratch,
}

impl State {
    pub fn n_ctx(&self) -> usize {
        self.kv.n_ctx
    }
    /// Tokens currently held in the KV cache.
    pub fn len(&self) -> usize {
        self.kv.filled
    }
    pub fn is_empty(&self) -> bool {
        self.kv.filled == 0
    }
    /// Forget everything from position `pos` on (e.g. to reuse a prefix).
    pub fn truncate(&mut self, pos: usize) {
        self.kv.truncate(pos);
    }
    /// Bytes held by the KV cache.
    pub fn kv_bytes(&self) -> usize {
        self.kv.kv_bytes()
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
            backend: Box::new(Cpu),
        })
    }

    /// Runs the heavy ops on `backend` from now on (the default is [`Cpu`]).
    pub fn set_backend(&mut self, backend: Box<dyn Backend>) {
        self.backend = backend;
    }

    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// Allocates a state holding `n_ctx` tokens, running up to `max_batch`
    /// tokens per step.
    pub fn new_state(&self, n_ctx: usize, max_batch: usize) -> State {
        State {
            kv: self.new_kv(n_ctx),
            scratch: self.new_scratch(max_batch, n_ctx),
        }
    }

    /// Allocates an empty KV cache for `n_ctx` positions.
    pub fn new_kv(&self, n_ctx: usize) -> KvCache {
        let c = &self.cfg;
        KvCache {
            n_ctx,
            n_layer: c.n_layer,
            kv_dim: c.kv_dim(),
            v_dim: c.v_dim(),
            filled: 0,
            key: vec![f16::ZERO; c.n_layer * n_ctx * c.kv_dim()],
            val: vec![f16::ZERO; c.n_layer * n_ctx * c.v_dim()],
        }
    }

    /// Allocates activation buffers for steps of up to `max_batch` tokens
    /// over KV caches of up to `max_ctx` positions.
    pub fn new_scratch(&self, max_batch: usize, max_ctx: usize) -> Scratch {
        let c = &self.cfg;
        let b = max_batch.max(1);
        Scratch {
            max_batch: b,
            scores: vec![0.0; ATT_GROUPS * max_ctx],
            x: vec![0.0; b * c.n_embd],
            xb: vec![0.0; b * c.n_embd],
            xb2: vec![0.0; b * c.n_embd],
            q: vec![0.0; b * c.q_dim()],
            k: vec![0.0; b * c.kv_dim()],
            v: vec![0.0; b * c.v_dim()],
            att: vec![0.0; b * c.n_head * c.head_dim_v],
            hb: vec![0.0; b * c.n_ff],
            hb2: vec![0.0; b * c.n_ff],
            tok_seq: Vec::with_capacity(b),
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
        self.check_seq(&st.kv, tokens, pos)?;
        // Logits are produced for tokens out_start.. of this call.
        let out_start = match want {
            Logits::Last => tokens.len() - 1,
            Logits::All => 0,
            Logits::Tail(n) => tokens.len() - n.clamp(1, tokens.len()),
        };
        let sc = &mut st.scratch;
        sc.logits
            .resize((tokens.len() - out_start) * c.n_vocab, 0.0);
        let mut done = 0;
        for chunk in tokens.chunks(sc.max_batch) {
            let p = pos + done;
            let mut seq = [SeqStep {
                kv: &mut st.kv,
                tokens: chunk,
                pos: p,
                logits: Logits::Last,
            }];
            self.step(pool, sc, &mut seq)?;
            let first = out_start.max(done);
            let end = done + chunk.len();
            if first < end {
                self.head(
                    pool,
                    sc,
                    first - done..end - done,
                    (first - out_start) * c.n_vocab,
                );
            }
            done = end;
        }
        Ok(&st.scratch.logits)
    }

    /// One pass over the weights for every sequence in `seqs` (continuous
    /// batching: a server's decode tokens and prefill chunks share a step).
    /// Each sequence's tokens go into its own KV cache; the result holds the
    /// logits each asked for, in the order of `seqs` (one row for
    /// [`Logits::Last`], `tokens.len()` for [`Logits::All`], `n` for
    /// [`Logits::Tail`]).
    ///
    /// # Errors
    /// An empty `seqs`, more tokens in all than `scratch.max_batch()`, or any
    /// error [`Model::forward`] reports for one of the sequences; then no
    /// cache is changed.
    pub fn forward_multi<'s>(
        &self,
        pool: &ThreadPool,
        sc: &'s mut Scratch,
        seqs: &mut [SeqStep<'_>],
    ) -> Result<&'s [f32], ModelError> {
        let c = &self.cfg;
        if seqs.is_empty() {
            return Err(ModelError::EmptyBatch);
        }
        let total: usize = seqs.iter().map(|s| s.tokens.len()).sum();
        if total > sc.max_batch {
            return Err(ModelError::BatchTooLarge {
                tokens: total,
                max_batch: sc.max_batch,
            });
        }
        for s in seqs.iter() {
            self.check_seq(s.kv, s.tokens, s.pos)?;
            if s.pos + s.tokens.len() > sc.scores.len() / ATT_GROUPS {
                return Err(ModelError::ContextFull {
                    needed: s.pos + s.tokens.len(),
                    n_ctx: sc.scores.len() / ATT_GROUPS,
                    n_ctx_train: c.n_ctx_train,
                });
            }
        }
        self.step(pool, sc, seqs)?;
        // The rows of the step that produce logits, gathered in order.
        let n_out: usize = seqs
            .iter()
            .map(|s| out_rows(s.logits, s.tokens.len()))
            .sum();
        sc.logits.resize(n_out * c.n_vocab, 0.0);
        let e = c.n_embd;
        let (mut row, mut out) = (0, 0);
        for s in seqs.iter() {
            let n = s.tokens.len();
            let k = out_rows(s.logits, n);
            for r in row + n - k..row + n {
                let xr = &sc.x[r * e..(r + 1) * e];
                ops::rmsnorm(
                    &mut sc.xb[out * e..(out + 1) * e],
                    xr,
                    &self.weights.output_norm,
                    c.norm_eps,
                );
                out += 1;
            }
            row += n;
        }
        self.backend.matmul(
            pool,
            &self.weights.output.q(&self.file),
            &sc.xb[..n_out * e],
            n_out,
            &mut sc.logits[..n_out * c.n_vocab],
            &mut sc.mm,
        );
        Ok(&sc.logits)
    }

    /// The checks every sequence of a step must pass.
    fn check_seq(&self, kv: &KvCache, tokens: &[u32], pos: usize) -> Result<(), ModelError> {
        let c = &self.cfg;
        if tokens.is_empty() {
            return Err(ModelError::EmptyBatch);
        }
        if pos > kv.filled {
            return Err(ModelError::BadPosition {
                pos,
                filled: kv.filled,
            });
        }
        if pos + tokens.len() > kv.n_ctx {
            return Err(ModelError::ContextFull {
                needed: pos + tokens.len(),
                n_ctx: kv.n_ctx,
                n_ctx_train: c.n_ctx_train,
            });
        }
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
            return Err(ModelError::BadToken {
                id,
                n_vocab: c.n_vocab,
            });
        }
        Ok(())
    }

    /// One step over the tokens of `seqs` (checked by the caller, at most
    /// `max_batch` in all), stacked as rows in order; leaves the final
    /// hidden states in `sc.x` and marks the tokens filled in each cache.
    fn step(
        &self,
        pool: &ThreadPool,
        sc: &mut Scratch,
        seqs: &mut [SeqStep<'_>],
    ) -> Result<(), ModelError> {
        let c = &self.cfg;
        let w = &self.weights;
        let f = &*self.file;
        let e = c.n_embd;
        sc.tok_seq.clear();
        for (i, s) in seqs.iter().enumerate() {
            for t in 0..s.tokens.len() {
                sc.tok_seq.push((i as u32, (s.pos + t) as u32));
            }
        }
        let b = sc.tok_seq.len();
        let st = sc;

        // embed: one dequantized row per token, scaled for Gemma
        let emb = w.tok_embd.q(f);
        let toks = seqs.iter().flat_map(|s| s.tokens.iter());
        for (t, &tok) in toks.enumerate() {
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
        trace("inp_scaled", 0, &st.x[..b * e]);

        for (il, l) in w.layers.iter().enumerate() {
            // attention norm
            norm_rows(
                &mut st.xb[..b * e],
                &st.x[..b * e],
                &l.attn_norm,
                e,
                c.norm_eps,
            );
            trace("attn_norm", il, &st.xb[..b * e]);
            // q, k, v projections (+ bias)
            self.backend.matmul_many(
                pool,
                &[&l.wq.q(f), &l.wk.q(f), &l.wv.q(f)],
                &st.xb[..b * e],
                b,
                &mut [
                    &mut st.q[..b * c.q_dim()],
                    &mut st.k[..b * c.kv_dim()],
                    &mut st.v[..b * c.v_dim()],
                ],
                &mut st.mm,
            );
            add_bias(&mut st.q[..b * c.q_dim()], l.bq.as_deref());
            add_bias(&mut st.k[..b * c.kv_dim()], l.bk.as_deref());
            add_bias(&mut st.v[..b * c.v_dim()], l.bv.as_deref());
            trace("Qcur", il, &st.q[..b * c.q_dim()]);
            trace("Kcur", il, &st.k[..b * c.kv_dim()]);
            trace("Vcur", il, &st.v[..b * c.v_dim()]);
            // per-head q/k norms (Gemma 3), then rope
            let rope = if c.is_swa(il) {
                &self.rope_swa
            } else {
                &self.rope
            };
            let hd = c.head_dim;
            for (t, &(_, p)) in st.tok_seq.iter().enumerate() {
                let p = p as usize;
                let qt = &mut st.q[t * c.q_dim()..(t + 1) * c.q_dim()];
                for head in qt.chunks_exact_mut(hd) {
                    if let Some(n) = &l.q_norm {
                        ops::rmsnorm_inplace(head, n, c.norm_eps);
                    }
                    rope.apply(head, p);
                }
                let kt = &mut st.k[t * c.kv_dim()..(t + 1) * c.kv_dim()];
                for head in kt.chunks_exact_mut(hd) {
                    if let Some(n) = &l.k_norm {
                        ops::rmsnorm_inplace(head, n, c.norm_eps);
                    }
                    rope.apply(head, p);
                }
            }
            // cache k, v at their positions (f16, as llama.cpp's default cache)
            let (kvd, vd) = (c.kv_dim(), c.v_dim());
            let mut row = 0;
            for s in seqs.iter_mut() {
                let (n, n_ctx) = (s.tokens.len(), s.kv.n_ctx);
                let kbase = (il * n_ctx + s.pos) * kvd;
                let vbase = (il * n_ctx + s.pos) * vd;
                to_f16(
                    &mut s.kv.key[kbase..kbase + n * kvd],
                    &st.k[row * kvd..(row + n) * kvd],
                );
                to_f16(
                    &mut s.kv.val[vbase..vbase + n * vd],
                    &st.v[row * vd..(row + n) * vd],
                );
                row += n;
            }
            // attention over each token's own cache: (token, head) pairs
            // split into groups, each group with its own row of softmax
            // scratch
            let window = if c.is_swa(il) { c.sliding_window } else { None };
            let hdv = c.head_dim_v;
            let job = AttnJob {
                il,
                q: &st.q,
                tokens: &st.tok_seq,
                seqs,
                n_head: c.n_head,
                n_head_kv: c.n_head_kv,
                head_dim: hd,
                head_dim_v: hdv,
                window,
                scale: c.attn_scale,
            };
            self.backend.attention(
                pool,
                &job,
                &mut st.att[..b * c.n_head * hdv],
                &mut st.scores,
            );
            // output projection, post-norm (Gemma), residual
            let att_dim = c.n_head * hdv;
            trace("kqv_out", il, &st.att[..b * att_dim]);
            self.backend.matmul(
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
            trace("attn_out", il, &st.xb2[..b * e]);
            ops::add_inplace(&mut st.x[..b * e], &st.xb2[..b * e]);
            trace("ffn_inp", il, &st.x[..b * e]);

            // ffn norm, gate/up, GLU, down, post-norm (Gemma), residual
            norm_rows(
                &mut st.xb[..b * e],
                &st.x[..b * e],
                &l.ffn_norm,
                e,
                c.norm_eps,
            );
            let nf = c.n_ff;
            self.backend.matmul_many(
                pool,
                &[&l.w_gate.q(f), &l.w_up.q(f)],
                &st.xb[..b * e],
                b,
                &mut [&mut st.hb[..b * nf], &mut st.hb2[..b * nf]],
                &mut st.mm,
            );
            trace("ffn_gate", il, &st.hb[..b * nf]);
            trace("ffn_up", il, &st.hb2[..b * nf]);
            match c.activation {
                Activation::Silu => ops::swiglu(&mut st.hb[..b * nf], &st.hb2[..b * nf]),
                Activation::GeluTanh => ops::geglu(&mut st.hb[..b * nf], &st.hb2[..b * nf]),
            }
            trace("ffn_swiglu", il, &st.hb[..b * nf]);
            self.backend.matmul(
                pool,
                &l.w_down.q(f),
                &st.hb[..b * nf],
                b,
                &mut st.xb2[..b * e],
                &mut st.mm,
            );
            trace("ffn_out", il, &st.xb2[..b * e]);
            if let Some(n) = &l.post_ffn_norm {
                norm_rows_inplace(&mut st.xb2[..b * e], n, e, c.norm_eps);
            }
            ops::add_inplace(&mut st.x[..b * e], &st.xb2[..b * e]);
            trace("l_out", il, &st.x[..b * e]);
        }
        for s in seqs.iter_mut() {
            s.kv.filled = s.pos + s.tokens.len();
        }
        Ok(())
    }

    /// Final norm and output head for `rows` of `sc.x`, written to
    /// `sc.logits[offset..]`.
    fn head(
        &self,
        pool: &ThreadPool,
        sc: &mut Scratch,
        rows: std::ops::Range<usize>,
        offset: usize,
    ) {
        let c = &self.cfg;
        let e = c.n_embd;
        let n = rows.len();
        let rows = rows.start * e..rows.end * e;
        norm_rows(
            &mut sc.xb[rows.clone()],
            &sc.x[rows.clone()],
            &self.weights.output_norm,
            e,
            c.norm_eps,
        );
        let out = &mut sc.logits[offset..offset + n * c.n_vocab];
        self.backend.matmul(
            pool,
            &self.weights.output.q(&self.file),
            &sc.xb[rows],
            n,
            out,
            &mut sc.mm,
        );
    }
}

/// How many of a sequence's `n` tokens produce logits.
fn out_rows(want: Logits, n: usize) -> usize {
    match want {
        Logits::Last => 1,
        Logits::All => n,
        Logits::Tail(k) => k.clamp(1, n),
    }
}

fn to_f16(dst: &mut [f16], src: &[f32]) {
    half::slice::HalfFloatSliceExt::convert_from_f32_slice(dst, src);
}

/// `LLMOS_TRACE_TENSORS=1` prints every intermediate's sum and first values
/// to stderr, named as llama.cpp's `llama-eval-callback` names them, so a new
/// architecture can be compared with the reference op by op.
fn trace_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LLMOS_TRACE_TENSORS").is_some_and(|v| v != "0"))
}

fn trace(name: &str, il: usize, x: &[f32]) {
    if trace_on() {
        let sum: f64 = x.iter().map(|&v| v as f64).sum();
        let (imax, amax) =
            x.iter().enumerate().fold(
                (0, 0.0f32),
                |m, (i, v)| if v.abs() > m.1 { (i, v.abs()) } else { m },
            );
        eprintln!(
            "trace {name}-{il}: n={} sum={sum:.6} max|x|={amax} at {imax} first={:?}",
            x.len(),
            &x[..x.len().min(3)]
        );
        // LLMOS_TRACE_DUMP=DIR also writes each tensor as raw f32 (little-endian).
        if let Some(dir) = std::env::var_os("LLMOS_TRACE_DUMP") {
            let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
            let path = std::path::Path::new(&dir).join(format!("{name}-{il}.f32"));
            if let Err(e) = std::fs::write(&path, bytes) {
                eprintln!("trace: cannot write {}: {e}", path.display());
            }
        }
    }
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
