//! f32 GEMM for encoder models (BERT): `y (n, rows) = x (n, cols) · Wᵀ`
//! with W packed once at load.
//!
//! Packing: W's rows in panels of [`PANEL`] (16, one zmm of outputs), each
//! panel stored k-major (`panel[k][16]`), the last panel padded with zero
//! rows. The AVX-512 micro-kernel keeps an 8-token × 32-row tile of outputs
//! in 16 zmm accumulators; per k it loads two panel vectors and broadcasts
//! eight activations, so it is bound by FMA throughput, not loads. Tasks
//! are (64-token block, 128-row group) pairs: a token block of x stays in L2
//! while the panels of the group pass over it.
//!
//! [`sgemm_scalar`] is the plain reference; the test compares the two.

use crate::matmul::OutPtr;
use crate::pool::ThreadPool;

/// Rows per packed panel (one zmm of f32 outputs).
pub const PANEL: usize = 16;
/// Tokens per task block.
const TOKEN_BLOCK: usize = 64;
/// Rows per task (a multiple of 2 × PANEL).
const ROW_GROUP: usize = 128;

/// A row-major `(rows, cols)` f32 matrix packed for [`sgemm`].
#[derive(Clone, Debug)]
pub struct PackedF32 {
    rows: usize,
    cols: usize,
    /// `rows.div_ceil(PANEL)` panels of `cols × PANEL` floats.
    data: Vec<f32>,
}

impl PackedF32 {
    /// Packs `w` (`rows × cols`, row-major).
    ///
    /// # Panics
    /// If `w` is shorter than `rows × cols`.
    pub fn pack(w: &[f32], rows: usize, cols: usize) -> PackedF32 {
        assert!(
            w.len() >= rows * cols,
            "pack: {} floats < {rows} x {cols}",
            w.len()
        );
        let panels = rows.div_ceil(PANEL);
        let mut data = vec![0f32; panels * cols * PANEL];
        for r in 0..rows {
            let (p, i) = (r / PANEL, r % PANEL);
            let panel = &mut data[p * cols * PANEL..(p + 1) * cols * PANEL];
            for (k, &v) in w[r * cols..(r + 1) * cols].iter().enumerate() {
                panel[k * PANEL + i] = v;
            }
        }
        PackedF32 { rows, cols, data }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element (r, k) of the original matrix.
    pub fn get(&self, r: usize, k: usize) -> f32 {
        self.data[(r / PANEL) * self.cols * PANEL + k * PANEL + r % PANEL]
    }

    fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * self.cols * PANEL..(p + 1) * self.cols * PANEL]
    }
}

/// The plain reference: one f32 dot per output, in k order.
pub fn sgemm_scalar(w: &PackedF32, x: &[f32], n: usize, y: &mut [f32]) {
    let (rows, cols) = (w.rows, w.cols);
    for t in 0..n {
        for r in 0..rows {
            let mut s = 0f32;
            for k in 0..cols {
                s += x[t * cols + k] * w.get(r, k);
            }
            y[t * rows + r] = s;
        }
    }
}

/// `y (n, rows) = x (n, cols) · Wᵀ`, split over the pool. Equals
/// [`sgemm_scalar`] up to float reassociation (the SIMD path accumulates
/// each output in one lane, in k order, with fused multiply-adds).
///
/// # Panics
/// If `x` or `y` is too short.
pub fn sgemm(pool: &ThreadPool, w: &PackedF32, x: &[f32], n: usize, y: &mut [f32]) {
    let (rows, cols) = (w.rows, w.cols);
    assert!(
        x.len() >= n * cols,
        "sgemm: x has {} floats, need {n} x {cols}",
        x.len()
    );
    assert!(
        y.len() >= n * rows,
        "sgemm: y has {} floats, need {n} x {rows}",
        y.len()
    );
    if n == 0 || rows == 0 {
        return;
    }
    let t_blocks = n.div_ceil(TOKEN_BLOCK);
    let r_groups = rows.div_ceil(ROW_GROUP);
    let out = OutPtr(y.as_mut_ptr());
    pool.run(t_blocks * r_groups, |task| {
        let (tb, rg) = (task / r_groups, task % r_groups);
        let (t0, t1) = (tb * TOKEN_BLOCK, ((tb + 1) * TOKEN_BLOCK).min(n));
        let (r0, r1) = (rg * ROW_GROUP, ((rg + 1) * ROW_GROUP).min(rows));
        // SAFETY: `out` holds n × rows floats (checked above) and this task
        // alone writes rows r0..r1 of tokens t0..t1.
        unsafe { range(w, x, t0, t1, r0, r1, out.get()) };
    });
}

/// [`sgemm`] on the calling thread.
///
/// # Panics
/// If `x` or `y` is too short.
pub fn sgemm_serial(w: &PackedF32, x: &[f32], n: usize, y: &mut [f32]) {
    assert!(
        x.len() >= n * w.cols,
        "sgemm: x has {} floats, need {n} x {}",
        x.len(),
        w.cols
    );
    assert!(
        y.len() >= n * w.rows,
        "sgemm: y has {} floats, need {n} x {}",
        y.len(),
        w.rows
    );
    // SAFETY: y holds n × rows floats, borrowed mutably for the call.
    unsafe { range(w, x, 0, n, 0, w.rows, y.as_mut_ptr()) };
}

/// Outputs (t0..t1) × (r0..r1), r0 a multiple of [`PANEL`].
///
/// # Safety
/// `y` points at `t1 × w.rows` writable floats, of which nobody else touches
/// this block during the call; `x` holds `t1 × w.cols` floats.
unsafe fn range(w: &PackedF32, x: &[f32], t0: usize, t1: usize, r0: usize, r1: usize, y: *mut f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: avx512f was detected; the rest is the caller's promise.
        unsafe { x86::block(w, x, t0, t1, r0, r1, y) };
        return;
    }
    let (rows, cols) = (w.rows, w.cols);
    for t in t0..t1 {
        for r in r0..r1 {
            let mut s = 0f32;
            for k in 0..cols {
                s = x[t * cols + k].mul_add(w.get(r, k), s);
            }
            // SAFETY: the caller's promise.
            unsafe { *y.add(t * rows + r) = s };
        }
    }
}

/// Bidirectional self-attention of an encoder over texts packed end to end.
///
/// `qkv` is `(T, 3 d)`: each token's query, key and value rows side by side;
/// `spans` are the texts' `(start, len)` token ranges; every token attends to
/// all tokens of its own text, `softmax(q·k · scale) · v` per head of width
/// `d / n_head`. Writes `out (T, d)`. One pool task per (text, head), each
/// two [`sgemm_serial`] calls: scores = Q Kᵀ, then context = P V.
///
/// # Panics
/// If the slices are too short for the spans or `n_head` does not divide `d`.
pub fn encoder_attention(
    pool: &ThreadPool,
    qkv: &[f32],
    d: usize,
    n_head: usize,
    spans: &[(usize, usize)],
    scale: f32,
    out: &mut [f32],
) {
    assert!(
        n_head > 0 && d % n_head == 0,
        "attention: {n_head} heads do not divide {d}"
    );
    let t_end = spans.iter().map(|&(s, l)| s + l).max().unwrap_or(0);
    assert!(
        qkv.len() >= t_end * 3 * d && out.len() >= t_end * d,
        "attention: short buffers"
    );
    let hd = d / n_head;
    let out_ptr = OutPtr(out.as_mut_ptr());
    pool.run(spans.len() * n_head, |task| {
        let ((start, len), h) = (spans[task / n_head], task % n_head);
        if len == 0 {
            return;
        }
        let col = |t: usize, part: usize| &qkv[t * 3 * d + part * d + h * hd..][..hd];
        let q: Vec<f32> = (start..start + len)
            .flat_map(|t| col(t, 0).iter().copied())
            .collect();
        let k: Vec<f32> = (start..start + len)
            .flat_map(|t| col(t, 1).iter().copied())
            .collect();
        let mut vt = vec![0f32; hd * len];
        for j in 0..len {
            for (c, &v) in col(start + j, 2).iter().enumerate() {
                vt[c * len + j] = v;
            }
        }
        let mut p = vec![0f32; len * len];
        sgemm_serial(&PackedF32::pack(&k, len, hd), &q, len, &mut p);
        crate::vecops::softmax_rows(&mut p, len, scale);
        let mut ctx = vec![0f32; len * hd];
        sgemm_serial(&PackedF32::pack(&vt, hd, len), &p, len, &mut ctx);
        for (i, row) in ctx.chunks_exact(hd).enumerate() {
            // SAFETY: token start + i < t_end (checked above), columns
            // h·hd..(h+1)·hd of its row: no other task writes this (text,
            // head) block, and `out` stays borrowed until `run` returns.
            let dst = unsafe { out_ptr.get().add((start + i) * d + h * hd) };
            // SAFETY: as above, hd floats.
            unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), dst, hd) };
        }
    });
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{PackedF32, PANEL};
    use std::arch::x86_64::*;

    /// Rows `r0..r1` (r0 a multiple of PANEL) of tokens `t0..t1`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn block(
        w: &PackedF32,
        x: &[f32],
        t0: usize,
        t1: usize,
        r0: usize,
        r1: usize,
        y: *mut f32,
    ) {
        let mut p = r0 / PANEL;
        while p * PANEL < r1 {
            let two = (p + 1) * PANEL < r1;
            let mut t = t0;
            while t < t1 {
                let nt = (t1 - t).min(8);
                // SAFETY: forwarded from the caller.
                unsafe {
                    match (nt, two) {
                        (8, true) => tile::<8, 2>(w, x, t, p, r1, y),
                        (8, false) => tile::<8, 1>(w, x, t, p, r1, y),
                        (4..=7, true) => tile::<4, 2>(w, x, t, p, r1, y),
                        (4..=7, false) => tile::<4, 1>(w, x, t, p, r1, y),
                        (_, true) => tile::<1, 2>(w, x, t, p, r1, y),
                        (_, false) => tile::<1, 1>(w, x, t, p, r1, y),
                    }
                }
                t += match nt {
                    8 => 8,
                    4..=7 => 4,
                    _ => 1,
                };
            }
            p += if two { 2 } else { 1 };
        }
    }

    /// T tokens from `t` × P panels from panel `p`; outputs past `r_end`
    /// (the padding of the last panel) are not stored.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const T: usize, const P: usize>(
        w: &PackedF32,
        x: &[f32],
        t: usize,
        p: usize,
        r_end: usize,
        y: *mut f32,
    ) {
        let (rows, cols) = (w.rows, w.cols);
        let mut acc = [[_mm512_setzero_ps(); P]; T];
        let panels: [&[f32]; P] = std::array::from_fn(|j| w.panel(p + j));
        let xs: [&[f32]; T] = std::array::from_fn(|i| &x[(t + i) * cols..(t + i + 1) * cols]);
        for k in 0..cols {
            // SAFETY: k < cols, and each panel holds cols × PANEL floats.
            let b: [__m512; P] = std::array::from_fn(|j| unsafe {
                _mm512_loadu_ps(panels[j].as_ptr().add(k * PANEL))
            });
            for i in 0..T {
                // SAFETY: k < cols = xs[i].len().
                let a = _mm512_set1_ps(unsafe { *xs[i].get_unchecked(k) });
                for j in 0..P {
                    acc[i][j] = _mm512_fmadd_ps(a, b[j], acc[i][j]);
                }
            }
        }
        for i in 0..T {
            for j in 0..P {
                let r = (p + j) * PANEL;
                let valid = r_end.saturating_sub(r).min(PANEL);
                let dst = y.add((t + i) * rows + r);
                if valid == PANEL {
                    // SAFETY: the caller's y holds n × rows floats and
                    // r + 16 <= r_end <= rows.
                    unsafe { _mm512_storeu_ps(dst, acc[i][j]) };
                } else {
                    let mask: __mmask16 = ((1u32 << valid) - 1) as __mmask16;
                    // SAFETY: only the first `valid` lanes (rows < r_end) are written.
                    unsafe { _mm512_mask_storeu_ps(dst, mask, acc[i][j]) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn sgemm_matches_scalar_twin_on_ragged_shapes() {
        let pool = ThreadPool::new(2);
        // rows: panel multiples, a ragged last panel, an odd panel count;
        // tokens: the 8/4/1 tile paths and several token blocks.
        for &(rows, cols) in &[(384, 384), (40, 64), (16, 8), (1, 3), (130, 96)] {
            for n in [1, 3, 4, 7, 8, 9, 70, 131] {
                let w = data(rows * cols, 7);
                let x = data(n * cols, 11);
                let p = PackedF32::pack(&w, rows, cols);
                let mut want = vec![0f32; n * rows];
                sgemm_scalar(&p, &x, n, &mut want);
                let mut got = vec![f32::NAN; n * rows + 5];
                sgemm(&pool, &p, &x, n, &mut got);
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    let tol = 1e-5 * (cols as f32).sqrt().max(1.0);
                    assert!(
                        (a - b).abs() <= tol,
                        "{rows}x{cols} n={n} [{i}]: {a} vs {b}"
                    );
                }
                assert!(got[n * rows..].iter().all(|v| v.is_nan()), "wrote past y");
            }
        }
    }

    #[test]
    fn encoder_attention_matches_naive() {
        let pool = ThreadPool::new(2);
        let (d, nh) = (48, 3);
        let spans = [(0usize, 5usize), (5, 1), (6, 19), (25, 0), (25, 8)];
        let t = 33;
        let qkv = data(t * 3 * d, 5);
        let scale = 1.0 / ((d / nh) as f32).sqrt();
        let mut got = vec![0f32; t * d];
        encoder_attention(&pool, &qkv, d, nh, &spans, scale, &mut got);
        let hd = d / nh;
        for &(start, len) in &spans {
            for i in start..start + len {
                for h in 0..nh {
                    let q = &qkv[i * 3 * d + h * hd..][..hd];
                    let mut sc: Vec<f64> = (start..start + len)
                        .map(|j| {
                            let k = &qkv[j * 3 * d + d + h * hd..][..hd];
                            q.iter().zip(k).map(|(a, b)| (*a * *b) as f64).sum::<f64>()
                                * scale as f64
                        })
                        .collect();
                    let m = sc.iter().copied().fold(f64::MIN, f64::max);
                    sc.iter_mut().for_each(|v| *v = (*v - m).exp());
                    let z: f64 = sc.iter().sum();
                    for c in 0..hd {
                        let want: f64 = (start..start + len)
                            .zip(&sc)
                            .map(|(j, p)| p / z * qkv[j * 3 * d + 2 * d + h * hd + c] as f64)
                            .sum();
                        let g = got[i * d + h * hd + c] as f64;
                        assert!(
                            (g - want).abs() < 1e-5,
                            "token {i} head {h} col {c}: {g} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn pack_round_trips() {
        let w = data(37 * 5, 3);
        let p = PackedF32::pack(&w, 37, 5);
        for r in 0..37 {
            for k in 0..5 {
                assert_eq!(p.get(r, k), w[r * 5 + k]);
            }
        }
    }
}
