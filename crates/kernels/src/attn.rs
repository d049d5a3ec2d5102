//! Attention inner loops over an f16 KV cache: scores `q·k_j`, the softmax
//! exponentials, and the probability-weighted sum of the values.
//!
//! Each is one call per (query head, token) over all its cached positions, so
//! the SIMD level is chosen once per call rather than once per key, and the
//! f16 keys and values are widened in registers (F16C) instead of being
//! copied to f32 rows first. Every function has a scalar twin (`*_scalar`)
//! and `tests/attn.rs` compares the two.
//!
//! Numerics follow llama.cpp's CPU path with an f16 cache: the query is
//! rounded to f16 by the caller, products are summed in f32, and each
//! probability is rounded to f16 before it weights a value row.
//!
//! ```
//! use half::f16;
//! use llmos_kernels::attn;
//!
//! let hd = 8;
//! let q: Vec<f16> = (0..hd).map(|i| f16::from_f32(i as f32 * 0.1)).collect();
//! let keys: Vec<f16> = (0..3 * hd).map(|i| f16::from_f32((i % 5) as f32 - 2.0)).collect();
//! let mut s = vec![0f32; 3];
//! attn::qk_f16(&q, &keys, hd, 0, 0.5, &mut s);
//! let mut s_ref = vec![0f32; 3];
//! attn::qk_f16_scalar(&q, &keys, hd, 0, 0.5, &mut s_ref);
//! assert!(s.iter().zip(&s_ref).all(|(a, b)| (a - b).abs() < 1e-5));
//! ```

#[cfg(target_arch = "x86_64")]
use crate::simd::{best_level, SimdLevel};
use half::f16;

/// `scores[j] = scale · Σ_d q[d]·keys[j·stride + off + d]` for every `j` in
/// `0..scores.len()`.
///
/// # Panics
/// If a key row runs past `keys`.
pub fn qk_f16(q: &[f16], keys: &[f16], stride: usize, off: usize, scale: f32, scores: &mut [f32]) {
    check_rows(keys.len(), scores.len(), stride, off, q.len());
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: AVX2, FMA and F16C are available (`use_avx2`); the rows
        // lie inside `keys` (`check_rows`).
        unsafe { x86::qk(q, keys, stride, off, scale, scores) };
        return;
    }
    qk_f16_scalar(q, keys, stride, off, scale, scores);
}

/// The reference [`qk_f16`]: each score summed in order, in f32.
pub fn qk_f16_scalar(
    q: &[f16],
    keys: &[f16],
    stride: usize,
    off: usize,
    scale: f32,
    scores: &mut [f32],
) {
    check_rows(keys.len(), scores.len(), stride, off, q.len());
    for (j, s) in scores.iter_mut().enumerate() {
        let k = &keys[j * stride + off..][..q.len()];
        let dot: f32 = q.iter().zip(k).map(|(a, b)| a.to_f32() * b.to_f32()).sum();
        *s = dot * scale;
    }
}

/// `s = exp(s - max)` for every score; returns the sum of the results.
pub fn exp_sub_sum(scores: &mut [f32], max: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: AVX2 and FMA are available (`use_avx2`).
        return unsafe { x86::exp_sub_sum(scores, max) };
    }
    exp_sub_sum_scalar(scores, max)
}

/// The reference [`exp_sub_sum`], with the standard library's `exp`.
pub fn exp_sub_sum_scalar(scores: &mut [f32], max: f32) -> f32 {
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    sum
}

/// `out = Σ_j f16(probs[j] · inv) · vals[j·stride + off ..][..out.len()]`:
/// the softmax normalisation `inv` is applied here, and each weight is
/// rounded to f16 as llama.cpp's f16 `kq · v` product does.
///
/// # Panics
/// If a value row runs past `vals`.
pub fn pv_f16(out: &mut [f32], probs: &[f32], inv: f32, vals: &[f16], stride: usize, off: usize) {
    check_rows(vals.len(), probs.len(), stride, off, out.len());
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: AVX2, FMA and F16C are available; the rows lie inside
        // `vals` (`check_rows`).
        unsafe { x86::pv(out, probs, inv, vals, stride, off) };
        return;
    }
    pv_f16_scalar(out, probs, inv, vals, stride, off);
}

/// The reference [`pv_f16`].
pub fn pv_f16_scalar(
    out: &mut [f32],
    probs: &[f32],
    inv: f32,
    vals: &[f16],
    stride: usize,
    off: usize,
) {
    check_rows(vals.len(), probs.len(), stride, off, out.len());
    out.iter_mut().for_each(|o| *o = 0.0);
    for (j, &p) in probs.iter().enumerate() {
        let w = f16::from_f32(p * inv).to_f32();
        let v = &vals[j * stride + off..][..out.len()];
        for (o, x) in out.iter_mut().zip(v) {
            *o += w * x.to_f32();
        }
    }
}

fn check_rows(len: usize, n: usize, stride: usize, off: usize, width: usize) {
    if n > 0 {
        let end = (n - 1)
            .checked_mul(stride)
            .and_then(|x| x.checked_add(off))
            .and_then(|x| x.checked_add(width));
        assert!(
            end.is_some_and(|e| e <= len),
            "attention: {n} rows of {width} at stride {stride} + {off} overrun a cache of {len}"
        );
    }
}

#[cfg(target_arch = "x86_64")]
fn use_avx2() -> bool {
    best_level() >= SimdLevel::Avx2
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use half::f16;
    use std::arch::x86_64::*;

    /// Eight f16 at `p` as f32.
    #[inline(always)]
    unsafe fn load8(p: *const f16) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
    }

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    /// # Safety
    /// AVX2 + FMA + F16C; rows `j·stride + off .. + q.len()` inside `keys`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn qk(
        q: &[f16],
        keys: &[f16],
        stride: usize,
        off: usize,
        scale: f32,
        scores: &mut [f32],
    ) {
        let hd = q.len();
        let body = hd / 8 * 8;
        let (qp, kp) = (q.as_ptr(), keys.as_ptr());
        for (j, s) in scores.iter_mut().enumerate() {
            let k = kp.add(j * stride + off);
            let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut d = 0;
            while d + 16 <= body {
                a0 = _mm256_fmadd_ps(load8(qp.add(d)), load8(k.add(d)), a0);
                a1 = _mm256_fmadd_ps(load8(qp.add(d + 8)), load8(k.add(d + 8)), a1);
                d += 16;
            }
            if d < body {
                a0 = _mm256_fmadd_ps(load8(qp.add(d)), load8(k.add(d)), a0);
                d += 8;
            }
            let mut dot = hsum(_mm256_add_ps(a0, a1));
            while d < hd {
                dot += (*qp.add(d)).to_f32() * (*k.add(d)).to_f32();
                d += 1;
            }
            *s = dot * scale;
        }
    }

    /// `exp(x)` for eight lanes: Cody–Waite range reduction `x = n·ln2 + r`
    /// and a degree-6 polynomial for `e^r` on |r| ≤ ln2/2 (relative error
    /// below 2 ulp, as Cephes' `expf`); inputs are clamped to [-87.3, 88.7],
    /// so anything below gives about 1e-38 rather than 0.
    #[inline(always)]
    unsafe fn exp8(x: __m256) -> __m256 {
        let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(-87.336_55));
        let x = _mm256_max_ps(x, _mm256_set1_ps(-87.336_55));
        let x = _mm256_min_ps(x, _mm256_set1_ps(88.722_83));
        let n = _mm256_round_ps(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.398_199_9e-3));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.333_452e-3));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166_579_6e-2));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.166_666_66));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5));
        let r2 = _mm256_mul_ps(r, r);
        let e = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0));
        // 2^n, n in [-126, 128]: build the exponent bits (n = 128 only when
        // x is at the clamp, where 2^127·2 is formed as two factors).
        let ni = _mm256_cvtps_epi32(n);
        let half_n = _mm256_srai_epi32(ni, 1);
        let p1 = _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_add_epi32(half_n, _mm256_set1_epi32(127)),
            23,
        ));
        let p2 = _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_add_epi32(_mm256_sub_epi32(ni, half_n), _mm256_set1_epi32(127)),
            23,
        ));
        _mm256_andnot_ps(tiny, _mm256_mul_ps(_mm256_mul_ps(e, p1), p2))
    }

    /// # Safety
    /// AVX2 + FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_sub_sum(scores: &mut [f32], max: f32) -> f32 {
        let n = scores.len();
        let p = scores.as_mut_ptr();
        let m = _mm256_set1_ps(max);
        let mut acc = _mm256_setzero_ps();
        let mut j = 0;
        while j + 8 <= n {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p.add(j)), m));
            _mm256_storeu_ps(p.add(j), e);
            acc = _mm256_add_ps(acc, e);
            j += 8;
        }
        let mut sum = hsum(acc);
        if j < n {
            let mut tail = [f32::NEG_INFINITY; 8];
            tail[..n - j].copy_from_slice(&scores[j..]);
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(tail.as_ptr()), m));
            _mm256_storeu_ps(tail.as_mut_ptr(), e);
            for (s, e) in scores[j..].iter_mut().zip(tail) {
                *s = e;
                sum += e;
            }
        }
        sum
    }

    /// # Safety
    /// AVX2 + FMA + F16C; rows `j·stride + off .. + out.len()` inside `vals`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn pv(
        out: &mut [f32],
        probs: &[f32],
        inv: f32,
        vals: &[f16],
        stride: usize,
        off: usize,
    ) {
        let hd = out.len();
        let body = hd / 8 * 8;
        out.iter_mut().for_each(|o| *o = 0.0);
        let (op, vp) = (out.as_mut_ptr(), vals.as_ptr());
        let mut j = 0;
        // Two value rows per pass over `out`.
        while j + 2 <= probs.len() {
            let w0 = _mm256_set1_ps(f16::from_f32(probs[j] * inv).to_f32());
            let w1 = _mm256_set1_ps(f16::from_f32(probs[j + 1] * inv).to_f32());
            let (v0, v1) = (vp.add(j * stride + off), vp.add((j + 1) * stride + off));
            let mut d = 0;
            while d < body {
                let o = _mm256_loadu_ps(op.add(d));
                let o = _mm256_fmadd_ps(w0, load8(v0.add(d)), o);
                let o = _mm256_fmadd_ps(w1, load8(v1.add(d)), o);
                _mm256_storeu_ps(op.add(d), o);
                d += 8;
            }
            let (w0, w1) = (_mm256_cvtss_f32(w0), _mm256_cvtss_f32(w1));
            while d < hd {
                *op.add(d) += w0 * (*v0.add(d)).to_f32();
                *op.add(d) += w1 * (*v1.add(d)).to_f32();
                d += 1;
            }
            j += 2;
        }
        if j < probs.len() {
            let w = f16::from_f32(probs[j] * inv).to_f32();
            let wv = _mm256_set1_ps(w);
            let v = vp.add(j * stride + off);
            let mut d = 0;
            while d < body {
                let o = _mm256_fmadd_ps(wv, load8(v.add(d)), _mm256_loadu_ps(op.add(d)));
                _mm256_storeu_ps(op.add(d), o);
                d += 8;
            }
            while d < hd {
                *op.add(d) += w * (*v.add(d)).to_f32();
                d += 1;
            }
        }
    }
}
