//! The seam between the decoder (what to compute, in `lib.rs`) and the
//! hardware that computes it.
//!
//! The decoder spends its time in two kinds of op: matrix products against
//! the weights and attention over the KV caches. Both go through
//! [`Backend`]; everything else (norms, rope, GLU, residual adds) is a few
//! percent of a step and stays in the decoder. [`Cpu`] is the backend every
//! build has: the SIMD kernels of `llmos-kernels` on the thread pool.
//!
//! A GPU backend implements the same two calls. Weights are addressed by
//! their bytes in the model file (`QMatrix::data`), which stay at one
//! address for the model's life, so a backend can upload each matrix on
//! first use and key its copy by that address; the decoder does not change.
//! Activations are host slices in this version, so a GPU backend pays a copy
//! per call; keeping them resident is the next step of the seam.

use crate::{KvCache, SeqStep};
use half::f16;
use llmos_kernels::attn;
use llmos_kernels::matmul::{matmul, MatmulScratch, QMatrix};
use llmos_kernels::par::for_each_chunk_pair_mut;
use llmos_kernels::pool::ThreadPool;

/// Task groups for attention: enough to balance two to eight threads.
pub const ATT_GROUPS: usize = 16;

/// Largest head size attention supports (the f16 query lives on the stack).
pub const MAX_HEAD_DIM: usize = 512;

/// The heavy ops of a forward step.
pub trait Backend: Send + Sync {
    /// Short name for logs and `llmos bench`.
    fn name(&self) -> &str;

    /// `y (n, w.rows) = x (n, w.cols) · Wᵀ`. The result of each element must
    /// not depend on `n` or on the other rows of `x` (sequences that share a
    /// step must get the results they would get alone).
    fn matmul(
        &self,
        pool: &ThreadPool,
        w: &QMatrix,
        x: &[f32],
        n: usize,
        y: &mut [f32],
        scratch: &mut MatmulScratch,
    );

    /// Several products of the same `x` (q/k/v, gate/up), each with exactly
    /// the result [`Backend::matmul`] gives it; a backend may fuse them.
    fn matmul_many(
        &self,
        pool: &ThreadPool,
        ws: &[&QMatrix],
        x: &[f32],
        n: usize,
        ys: &mut [&mut [f32]],
        scratch: &mut MatmulScratch,
    ) {
        for (w, y) in ws.iter().zip(ys.iter_mut()) {
            self.matmul(pool, w, x, n, y, scratch);
        }
    }

    /// For every (token, head) pair of a step, attention of the query over
    /// the cached positions of the token's own sequence in layer `job.il`;
    /// writes `out` (tokens × n_head × head_dim_v). `scores` is scratch of
    /// [`ATT_GROUPS`] rows of `scores.len() / ATT_GROUPS` floats.
    fn attention(&self, pool: &ThreadPool, job: &AttnJob, out: &mut [f32], scores: &mut [f32]);
}

/// One layer's attention for a step.
pub struct AttnJob<'b, 'a> {
    pub il: usize,
    /// Queries, (tokens, n_head × head_dim), roped.
    pub q: &'b [f32],
    /// Per token: (index into `seqs`, position).
    pub tokens: &'b [(u32, u32)],
    /// The step's sequences; their caches already hold this step's keys
    /// and values.
    pub seqs: &'b [SeqStep<'a>],
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    /// Keys attend to positions `p + 1 - window ..= p` only (Gemma's local
    /// layers); `None`: all of `0..=p`.
    pub window: Option<usize>,
    pub scale: f32,
}

/// The CPU backend: `llmos-kernels` on the thread pool.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu;

impl Backend for Cpu {
    fn name(&self) -> &str {
        "cpu"
    }

    fn matmul(
        &self,
        pool: &ThreadPool,
        w: &QMatrix,
        x: &[f32],
        n: usize,
        y: &mut [f32],
        scratch: &mut MatmulScratch,
    ) {
        matmul(pool, w, x, n, y, scratch);
    }

    fn matmul_many(
        &self,
        pool: &ThreadPool,
        ws: &[&QMatrix],
        x: &[f32],
        n: usize,
        ys: &mut [&mut [f32]],
        scratch: &mut MatmulScratch,
    ) {
        llmos_kernels::matmul::matmul_many(pool, ws, x, n, ys, scratch);
    }

    fn attention(&self, pool: &ThreadPool, job: &AttnJob, out: &mut [f32], scores: &mut [f32]) {
        let (hd, hdv) = (job.head_dim, job.head_dim_v);
        let (kvd, vd) = (job.n_head_kv * hd, job.n_head_kv * hdv);
        let q_dim = job.n_head * hd;
        let group = job.n_head / job.n_head_kv;
        let pairs = job.tokens.len() * job.n_head;
        let per = pairs.div_ceil(ATT_GROUPS);
        let score_row = scores.len() / ATT_GROUPS;
        let il = job.il;
        for_each_chunk_pair_mut(
            pool,
            &mut out[..pairs * hdv],
            per * hdv,
            scores,
            score_row,
            |g, out, scores| {
                for (k, o) in out.chunks_exact_mut(hdv).enumerate() {
                    let i = g * per + k;
                    let (t, h) = (i / job.n_head, i % job.n_head);
                    let (si, p) = job.tokens[t];
                    let (kv, p): (&KvCache, usize) = (&*job.seqs[si as usize].kv, p as usize);
                    let qh = &job.q[t * q_dim + h * hd..][..hd];
                    let kvh = h / group;
                    let lo = job.window.map_or(0, |win| (p + 1).saturating_sub(win));
                    let n_ctx = kv.n_ctx;
                    let view = KvView {
                        k: &kv.key[il * n_ctx * kvd..(il * n_ctx + p + 1) * kvd],
                        v: &kv.val[il * n_ctx * vd..(il * n_ctx + p + 1) * vd],
                        k_stride: kvd,
                        v_stride: vd,
                        k_off: kvh * hd,
                        v_off: kvh * hdv,
                    };
                    attend(o, qh, &view, lo, p, job.scale, scores);
                }
            },
        );
    }
}

/// One layer's cached keys and values, and where a kv head sits in a row.
struct KvView<'a> {
    k: &'a [f16],
    v: &'a [f16],
    k_stride: usize,
    v_stride: usize,
    k_off: usize,
    v_off: usize,
}

/// Attention of one query head over cached positions `lo..=p`:
/// out = Σ_j softmax(q·k_j·scale)_j v_j.
///
/// The numerics follow llama.cpp's default CPU path (f16 cache, no flash
/// attention): q is rounded to f16 and dotted with the f16 keys in f32; the
/// softmax is f32; the probabilities are rounded to f16 before weighting the
/// values.
fn attend(
    out: &mut [f32],
    q: &[f32],
    kv: &KvView,
    lo: usize,
    p: usize,
    scale: f32,
    scores: &mut [f32],
) {
    let hd = q.len();
    let mut q16 = [f16::ZERO; MAX_HEAD_DIM];
    half::slice::HalfFloatSliceExt::convert_from_f32_slice(&mut q16[..hd], q);
    let scores = &mut scores[..p + 1 - lo];
    let keys = &kv.k[lo * kv.k_stride..];
    attn::qk_f16(&q16[..hd], keys, kv.k_stride, kv.k_off, scale, scores);
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
    let sum = attn::exp_sub_sum(scores, max);
    let vals = &kv.v[lo * kv.v_stride..];
    attn::pv_f16(out, scores, 1.0 / sum, vals, kv.v_stride, kv.v_off);
}
