//! AVX2 dots of the k-quants (q2_K .. q6_K) with q8_K activations.
//!
//! Each super-block's integer sums are computed exactly in i32 lanes
//! (`vpmaddubsw` for quant × activation, then `vpmaddwd` by the sub-block
//! scale and an add, or one `vpdpwssd` with VNNI),
//! reduced to one i32, and combined with the float scales by *the same
//! expression* as the scalar reference in `quant::kquants`. So these kernels
//! agree with `vec_dot_scalar` bit for bit, not just up to reassociation.
//!
//! Signed quants are handled unsigned: q6_K's `q - 32` and q3_K's `q - 4`
//! become `q_u · a` minus `32 · Σ sc · bsum` (resp. 4 ·), using q8_K's
//! per-16 `bsums` instead of a second pass over the activations.
//!
//! Bounds for exactness: `vpmaddubsw` pairs are at most 2 · 63 · 127 < 2^15
//! (q6_K, unsigned 0..64), scales fit i16, and a super-block's total is at
//! most 256 · 64 · 127 · 128 < 2^31.

use super::{f16_at, hsum_i32, load256, IDot};
use crate::quant::blocks::{q2_k, q3_k, q4_k, q5_k, q6_k, q8_k, QK_K};
use core::arch::x86_64::*;
use std::ptr::read_unaligned;

/// `[sc[2p]; 8] ++ [sc[2p + 1]; 8]` as i16, from sixteen i8 scales: the
/// per-16 scales of 32 consecutive elements, lined up with the i16 pair sums
/// of `vpmaddubsw`.
#[inline(always)]
unsafe fn scale_pair(sc8: __m128i, p: usize) -> __m256i {
    let idx = _mm_add_epi8(
        _mm_set_epi64x(0x0101_0101_0101_0101, 0),
        _mm_set1_epi8((2 * p) as i8),
    );
    _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, idx))
}

/// `acc` plus the i32 lanes of `Σ q·a` over 32 elements (u8 × i8), each
/// pair sum times its i16 scale.
#[inline(always)]
unsafe fn scaled_dot<I: IDot>(acc: __m256i, q: __m256i, a: __m256i, scale: __m256i) -> __m256i {
    I::acc_scaled(acc, _mm256_maddubs_epi16(q, a), scale)
}

/// The q8_K block `i` of token `k`: (pointer to block, its d).
#[inline(always)]
unsafe fn q8k_block(ap: *const u8, k: usize, stride: usize, i: usize) -> (*const u8, f32) {
    let y = ap.add(k * stride + i * q8_k::BYTES);
    (y, read_unaligned(y.add(q8_k::D).cast::<f32>()))
}

/// The sixteen i16 bsums of a q8_K block.
#[inline(always)]
unsafe fn bsums(y: *const u8) -> __m256i {
    load256(y.add(q8_k::BSUMS))
}

/// Checks the row lengths once; bounds every pointer formed below.
#[inline(always)]
fn check(w: &[u8], wb: usize, a: &[u8], stride: usize, tokens: usize, n: usize) -> usize {
    let nb = n / QK_K;
    assert!(
        w.len() >= nb * wb && a.len() >= (tokens - 1) * stride + nb * q8_k::BYTES,
        "k-quant dot: short rows"
    );
    nb
}

/// q4_K: `sum += dy·d·Σ sc·isum − dy·dmin·Σ m·bsum` per super-block.
#[inline(always)]
pub(super) unsafe fn q4_k<I: IDot, const N: usize>(
    w: &[u8],
    a: &[u8],
    stride: usize,
    n: usize,
) -> [f32; N] {
    let nb = check(w, q4_k::BYTES, a, stride, N, n);
    let (wp, ap) = (w.as_ptr(), a.as_ptr());
    let mut sum = [0f32; N];
    for i in 0..nb {
        let x = wp.add(i * q4_k::BYTES);
        let (d, dmin) = (f16_at(x.add(q4_k::D)), f16_at(x.add(q4_k::DMIN)));
        let (sc, mins) = k4_scales_mins(x.add(q4_k::SCALES));
        let mut acc = [_mm256_setzero_si256(); N];
        for c in 0..4 {
            let raw = load256(x.add(q4_k::QS + 32 * c));
            let lo = _mm256_and_si256(raw, _mm256_set1_epi8(0x0f));
            let hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), _mm256_set1_epi8(0x0f));
            let (s_lo, s_hi) = (scale_of(sc, 2 * c), scale_of(sc, 2 * c + 1));
            for (k, acc) in acc.iter_mut().enumerate() {
                let (y, _) = q8k_block(ap, k, stride, i);
                let y = y.add(q8_k::QS + 64 * c);
                *acc = scaled_dot::<I>(*acc, lo, load256(y), s_lo);
                *acc = scaled_dot::<I>(*acc, hi, load256(y.add(32)), s_hi);
            }
        }
        for (k, sum) in sum.iter_mut().enumerate() {
            let (y, dy) = q8k_block(ap, k, stride, i);
            let scaled = hsum_i32(acc[k]);
            let m = hsum_i32(_mm256_madd_epi16(bsums(y), mins));
            *sum += dy * d * scaled as f32 - dy * dmin * m as f32;
        }
    }
    sum
}

/// q5_K: as q4_K, with bit 4 of sub-block s's element l in `qh[l] >> s`.
#[inline(always)]
pub(super) unsafe fn q5_k<I: IDot, const N: usize>(
    w: &[u8],
    a: &[u8],
    stride: usize,
    n: usize,
) -> [f32; N] {
    let nb = check(w, q5_k::BYTES, a, stride, N, n);
    let (wp, ap) = (w.as_ptr(), a.as_ptr());
    let mut sum = [0f32; N];
    for i in 0..nb {
        let x = wp.add(i * q5_k::BYTES);
        let (d, dmin) = (f16_at(x.add(q5_k::D)), f16_at(x.add(q5_k::DMIN)));
        let (sc, mins) = k4_scales_mins(x.add(q5_k::SCALES));
        let mut qh = load256(x.add(q5_k::QH));
        let mut acc = [_mm256_setzero_si256(); N];
        let bit4 = _mm256_set1_epi8(0x10);
        for c in 0..4 {
            let raw = load256(x.add(q5_k::QS + 32 * c));
            // Bits 0 and 1 of each qh byte (after the running shift) move to
            // bit 4; 16-bit shifts are fine since only in-byte bits survive
            // the mask.
            let h_lo = _mm256_and_si256(_mm256_slli_epi16(qh, 4), bit4);
            let h_hi = _mm256_and_si256(_mm256_slli_epi16(qh, 3), bit4);
            qh = _mm256_srli_epi16(qh, 2);
            let lo = _mm256_or_si256(_mm256_and_si256(raw, _mm256_set1_epi8(0x0f)), h_lo);
            let hi = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(raw, 4), _mm256_set1_epi8(0x0f)),
                h_hi,
            );
            let (s_lo, s_hi) = (scale_of(sc, 2 * c), scale_of(sc, 2 * c + 1));
            for (k, acc) in acc.iter_mut().enumerate() {
                let (y, _) = q8k_block(ap, k, stride, i);
                let y = y.add(q8_k::QS + 64 * c);
                *acc = scaled_dot::<I>(*acc, lo, load256(y), s_lo);
                *acc = scaled_dot::<I>(*acc, hi, load256(y.add(32)), s_hi);
            }
        }
        for (k, sum) in sum.iter_mut().enumerate() {
            let (y, dy) = q8k_block(ap, k, stride, i);
            let scaled = hsum_i32(acc[k]);
            let m = hsum_i32(_mm256_madd_epi16(bsums(y), mins));
            *sum += dy * d * scaled as f32 - dy * dmin * m as f32;
        }
    }
    sum
}

/// The packed 6-bit scales of a q4_K / q5_K block, decoded with 32-bit
/// masks as ggml does: returns the eight scales as i16 in both 128-bit
/// lanes (for [`scale_of`]) and the mins doubled up (`[m0, m0, m1, m1, ..]`)
/// to line up with the sixteen bsums. Equals `blocks::k4_scale_min` (tested
/// through the bit-exact dots).
#[inline(always)]
unsafe fn k4_scales_mins(p: *const u8) -> (__m256i, __m256i) {
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let q = read_unaligned(p.cast::<[u32; 3]>()).map(u32::from_le);
    let u = [
        q[0] & LOW6,                                        // scales 0..4
        (q[2] & LOW4) | (((q[0] >> 6) & LOW2) << 4),        // scales 4..8
        q[1] & LOW6,                                        // mins 0..4
        ((q[2] >> 4) & LOW4) | (((q[1] >> 6) & LOW2) << 4), // mins 4..8
    ];
    let v = _mm_set_epi32(u[3] as i32, u[2] as i32, u[1] as i32, u[0] as i32);
    let scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(v));
    let mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(v, v));
    (scales, mins)
}

/// i16 lane `j` (0..8) of each 128-bit half of `scales`, in every lane.
#[inline(always)]
unsafe fn scale_of(scales: __m256i, j: usize) -> __m256i {
    let lo = (2 * j) as i16;
    _mm256_shuffle_epi8(scales, _mm256_set1_epi16(lo | (lo + 1) << 8))
}

/// q6_K: `sum += d·dy·(Σ sc·isum(q_u) − 32·Σ sc·bsum)`, q_u = q + 32 in 0..64.
#[inline(always)]
pub(super) unsafe fn q6_k<I: IDot, const N: usize>(
    w: &[u8],
    a: &[u8],
    stride: usize,
    n: usize,
) -> [f32; N] {
    let nb = check(w, q6_k::BYTES, a, stride, N, n);
    let (wp, ap) = (w.as_ptr(), a.as_ptr());
    let mut sum = [0f32; N];
    let m4 = _mm256_set1_epi8(0x0f);
    let m2 = _mm256_set1_epi8(0x30);
    for i in 0..nb {
        let x = wp.add(i * q6_k::BYTES);
        let d = f16_at(x.add(q6_k::D));
        let sc8 = _mm_loadu_si128(x.add(q6_k::SCALES).cast());
        let mut acc = [_mm256_setzero_si256(); N];
        for h in 0..2 {
            let l0 = load256(x.add(q6_k::QL + 64 * h));
            let l1 = load256(x.add(q6_k::QL + 64 * h + 32));
            let qh = load256(x.add(q6_k::QH + 32 * h));
            // Element 128h + 32k + l: low nibble of ql[64h + l + 32 (k & 1)]
            // (high nibble for k >= 2), high bits (qh[32h + l] >> 2k) & 3.
            let q = [
                _mm256_or_si256(
                    _mm256_and_si256(l0, m4),
                    _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(l1, m4),
                    _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                    _mm256_and_si256(qh, m2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                    _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2),
                ),
            ];
            for (j, q) in q.into_iter().enumerate() {
                let s = scale_pair(sc8, 4 * h + j);
                for (k, acc) in acc.iter_mut().enumerate() {
                    let (y, _) = q8k_block(ap, k, stride, i);
                    let av = load256(y.add(q8_k::QS + 128 * h + 32 * j));
                    *acc = scaled_dot::<I>(*acc, q, av, s);
                }
            }
        }
        let sc16 = _mm256_cvtepi8_epi16(sc8);
        for (k, sum) in sum.iter_mut().enumerate() {
            let (y, dy) = q8k_block(ap, k, stride, i);
            let offset = hsum_i32(_mm256_madd_epi16(bsums(y), sc16));
            let total = hsum_i32(acc[k]) - 32 * offset;
            *sum += d * dy * total as f32;
        }
    }
    sum
}

/// q3_K: `sum += d·dy·(Σ sc·isum(q_u) − 4·Σ sc·bsum)`, sc = scale − 32,
/// q_u = low2 | hbit << 2 in 0..8 (q = q_u − 4).
#[inline(always)]
pub(super) unsafe fn q3_k<I: IDot, const N: usize>(
    w: &[u8],
    a: &[u8],
    stride: usize,
    n: usize,
) -> [f32; N] {
    let nb = check(w, q3_k::BYTES, a, stride, N, n);
    let (wp, ap) = (w.as_ptr(), a.as_ptr());
    let mut sum = [0f32; N];
    let m3 = _mm256_set1_epi8(3);
    let m1 = _mm256_set1_epi8(1);
    for i in 0..nb {
        let x = wp.add(i * q3_k::BYTES);
        let d = f16_at(x.add(q3_k::D));
        let sc8 = q3k_scales8(x.add(q3_k::SCALES));
        let hm = load256(x.add(q3_k::HMASK));
        let mut acc = [_mm256_setzero_si256(); N];
        for h in 0..2 {
            let qs = load256(x.add(q3_k::QS + 32 * h));
            for j in 0..4 {
                // Run g = 4h + j: low bits (qs >> 2j) & 3, high bit hmask >> g.
                let low =
                    _mm256_and_si256(_mm256_srl_epi16(qs, _mm_cvtsi32_si128(2 * j as i32)), m3);
                let g = _mm_cvtsi32_si128((4 * h + j) as i32);
                let hb = _mm256_and_si256(_mm256_srl_epi16(hm, g), m1);
                let q = _mm256_or_si256(low, _mm256_slli_epi16(hb, 2));
                let s = scale_pair(sc8, 4 * h + j);
                for (k, acc) in acc.iter_mut().enumerate() {
                    let (y, _) = q8k_block(ap, k, stride, i);
                    let av = load256(y.add(q8_k::QS + 128 * h + 32 * j));
                    *acc = scaled_dot::<I>(*acc, q, av, s);
                }
            }
        }
        let sc16 = _mm256_cvtepi8_epi16(sc8);
        for (k, sum) in sum.iter_mut().enumerate() {
            let (y, dy) = q8k_block(ap, k, stride, i);
            let offset = hsum_i32(_mm256_madd_epi16(bsums(y), sc16));
            let total = hsum_i32(acc[k]) - 4 * offset;
            *sum += d * dy * total as f32;
        }
    }
    sum
}

/// The sixteen 6-bit scales of a q3_K block minus 32, as i8, decoded with
/// 32-bit masks as ggml does (equals `blocks::q3k_scales` − 32; tested
/// through the bit-exact dots).
#[inline(always)]
unsafe fn q3k_scales8(p: *const u8) -> __m128i {
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let q = read_unaligned(p.cast::<[u32; 3]>()).map(u32::from_le);
    // Scale j: low 4 bits from byte j % 8 (high nibble for j >= 8), high
    // 2 bits from byte 8 + j % 4 at bit 2 (j / 4).
    let u = [
        (q[0] & LOW4) | ((q[2] & LOW2) << 4),
        (q[1] & LOW4) | (((q[2] >> 2) & LOW2) << 4),
        ((q[0] >> 4) & LOW4) | (((q[2] >> 4) & LOW2) << 4),
        ((q[1] >> 4) & LOW4) | (((q[2] >> 6) & LOW2) << 4),
    ];
    let v = _mm_set_epi32(u[3] as i32, u[2] as i32, u[1] as i32, u[0] as i32);
    _mm_sub_epi8(v, _mm_set1_epi8(32))
}

/// q2_K: `sum += dy·d·Σ sc·isum − dy·dmin·Σ m·bsum`, per-16 scales and mins.
#[inline(always)]
pub(super) unsafe fn q2_k<I: IDot, const N: usize>(
    w: &[u8],
    a: &[u8],
    stride: usize,
    n: usize,
) -> [f32; N] {
    let nb = check(w, q2_k::BYTES, a, stride, N, n);
    let (wp, ap) = (w.as_ptr(), a.as_ptr());
    let mut sum = [0f32; N];
    let m3 = _mm256_set1_epi8(3);
    for i in 0..nb {
        let x = wp.add(i * q2_k::BYTES);
        let (d, dmin) = (f16_at(x.add(q2_k::D)), f16_at(x.add(q2_k::DMIN)));
        let packed = _mm_loadu_si128(x.add(q2_k::SCALES).cast());
        let sc8 = _mm_and_si128(packed, _mm_set1_epi8(0x0f));
        let mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(
            _mm_srli_epi16(packed, 4),
            _mm_set1_epi8(0x0f),
        ));
        let mut acc = [_mm256_setzero_si256(); N];
        for h in 0..2 {
            let qs = load256(x.add(q2_k::QS + 32 * h));
            for j in 0..4 {
                let q = _mm256_and_si256(_mm256_srl_epi16(qs, _mm_cvtsi32_si128(2 * j as i32)), m3);
                let s = scale_pair(sc8, 4 * h + j);
                for (k, acc) in acc.iter_mut().enumerate() {
                    let (y, _) = q8k_block(ap, k, stride, i);
                    let av = load256(y.add(q8_k::QS + 128 * h + 32 * j));
                    *acc = scaled_dot::<I>(*acc, q, av, s);
                }
            }
        }
        for (k, sum) in sum.iter_mut().enumerate() {
            let (y, dy) = q8k_block(ap, k, stride, i);
            let scaled = hsum_i32(acc[k]);
            let m = hsum_i32(_mm256_madd_epi16(bsums(y), mins16));
            *sum += dy * d * scaled as f32 - dy * dmin * m as f32;
        }
    }
    sum
}
