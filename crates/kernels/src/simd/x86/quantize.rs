//! AVX2 activation quantizers (q8_0, q8_1, q8_K), bit-identical to the
//! scalar references in `quant` (which match ggml and gguf-py).
//!
//! Identity holds because every float step is the reference's own: the max
//! of |x| is exact in any order, the block scales are computed by the same
//! scalar expressions (and rounded to f16 by the same `half` call), and the
//! per-element `x * id` is one IEEE multiply either way. Rounding is emulated
//! exactly: q8_0/q8_1 round half away from zero (C `roundf`), q8_K rounds
//! half to even. A block holding a NaN or an infinity, or whose scale
//! overflows (subnormal maxima), goes to the scalar reference: its results
//! there depend on element order and on casts of ±inf and NaN.

use super::hsum_i32;
use crate::quant::blocks::{q8_0, q8_1, q8_k, QK, QK_K};
use crate::quant::quantize_row;
use core::arch::x86_64::*;
use half::f16;
use llmos_gguf::GgmlType;

/// All eight lanes finite (not NaN, not ±inf).
#[inline(always)]
unsafe fn all_finite(v: __m256) -> bool {
    let abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0), v);
    let ok = _mm256_cmp_ps::<_CMP_LE_OQ>(abs, _mm256_set1_ps(f32::MAX));
    _mm256_movemask_ps(ok) == 0xff
}

/// Largest lane.
#[inline(always)]
unsafe fn hmax(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
}

/// Packs four vectors of i32 (values in i8 range) into 32 i8 in order.
#[inline(always)]
unsafe fn pack_i8(i: [__m256i; 4]) -> __m256i {
    let a = _mm256_packs_epi32(i[0], i[1]);
    let b = _mm256_packs_epi32(i[2], i[3]);
    // packs work per 128-bit lane: undo the interleave of 32-bit groups.
    let p = _mm256_packs_epi16(a, b);
    _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

fn put_f16(dst: &mut [u8], off: usize, x: f32) {
    dst[off..off + 2].copy_from_slice(&f16::from_f32(x).to_bits().to_le_bytes());
}

/// Quantizes `src` (a whole number of blocks) as q8_0, or as q8_1 when
/// `Q81`, into `dst` (exactly the row's bytes).
///
/// # Safety
/// Requires AVX2 and FMA.
#[inline(always)]
pub(super) unsafe fn q8_0<const Q81: bool>(src: &[f32], dst: &mut [u8]) {
    let (ty, bytes, qs) = if Q81 {
        (GgmlType::Q8_1, q8_1::BYTES, q8_1::QS)
    } else {
        (GgmlType::Q8_0, q8_0::BYTES, q8_0::QS)
    };
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(bytes)) {
        let mut v = [_mm256_setzero_ps(); 4];
        for (j, v) in v.iter_mut().enumerate() {
            // SAFETY: `x` holds 32 floats; 8 * j + 8 <= 32.
            *v = unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * j)) };
        }
        if !(all_finite(v[0]) && all_finite(v[1]) && all_finite(v[2]) && all_finite(v[3])) {
            // Same block, same bytes: blocks are independent.
            let r = quantize_row(ty, x, b);
            debug_assert!(r.is_ok());
            continue;
        }
        let m = _mm256_max_ps(_mm256_max_ps(v[0], v[1]), _mm256_max_ps(v[2], v[3]));
        let n = _mm256_min_ps(_mm256_min_ps(v[0], v[1]), _mm256_min_ps(v[2], v[3]));
        // max |x| = max(max x, −min x); exact, and -0.0 never wins over 0.
        let amax = hmax(_mm256_max_ps(
            _mm256_andnot_ps(_mm256_set1_ps(-0.0), m),
            _mm256_andnot_ps(_mm256_set1_ps(-0.0), n),
        ));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        if !id.is_finite() {
            // A subnormal d whose inverse overflows: the reference's
            // saturating casts of ±inf and NaN decide; let it.
            let r = quantize_row(ty, x, b);
            debug_assert!(r.is_ok());
            continue;
        }
        put_f16(b, q8_0::D, d);
        let mut q = [_mm256_setzero_si256(); 4];
        for (q, v) in q.iter_mut().zip(v) {
            let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm256_mul_ps(v, _mm256_set1_ps(id)),
            );
            *q = _mm256_cvttps_epi32(r);
        }
        // SAFETY: the block's 32 quant bytes are b[qs..qs + 32].
        unsafe { _mm256_storeu_si256(b[qs..qs + 32].as_mut_ptr().cast(), pack_i8(q)) };
        if Q81 {
            let sum = hsum_i32(_mm256_add_epi32(
                _mm256_add_epi32(q[0], q[1]),
                _mm256_add_epi32(q[2], q[3]),
            ));
            put_f16(b, q8_1::S, sum as f32 * d);
        }
    }
}

/// Quantizes `src` (a whole number of 256-element blocks) as q8_K into
/// `dst` (exactly the row's bytes).
///
/// # Safety
/// Requires AVX2 and FMA.
#[inline(always)]
pub(super) unsafe fn q8_k(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src
        .chunks_exact(QK_K)
        .zip(dst.chunks_exact_mut(q8_k::BYTES))
    {
        let mut v = [_mm256_setzero_ps(); QK_K / 8];
        for (j, v) in v.iter_mut().enumerate() {
            // SAFETY: `x` holds 256 floats; j * 8 + 8 <= 256.
            *v = unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * j)) };
        }
        let mut finite = _mm256_setzero_ps();
        for &v in &v {
            // x − x is 0 for finite x and NaN otherwise.
            finite = _mm256_or_ps(finite, _mm256_sub_ps(v, v));
        }
        if !all_finite(finite) {
            let r = quantize_row(GgmlType::Q8_K, x, b);
            debug_assert!(r.is_ok());
            continue;
        }
        let sign = _mm256_set1_ps(-0.0);
        let mut m = _mm256_setzero_ps();
        for &v in &v {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v));
        }
        let amax = hmax(m);
        if amax == 0.0 {
            b.fill(0);
            continue;
        }
        // The reference keeps the *first* element of largest magnitude.
        let mut max = amax;
        for (j, &v) in v.iter().enumerate() {
            let hit = _mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_andnot_ps(sign, v), _mm256_set1_ps(amax));
            let mask = _mm256_movemask_ps(hit);
            if mask != 0 {
                max = x[8 * j + mask.trailing_zeros() as usize];
                break;
            }
        }
        let iscale = -127.0 / max;
        if !iscale.is_finite() {
            // A subnormal max: the reference's integer tricks on ±inf and
            // NaN products decide; let it.
            let r = quantize_row(GgmlType::Q8_K, x, b);
            debug_assert!(r.is_ok());
            continue;
        }
        let vs = _mm256_set1_ps(iscale);
        // |iscale * x| <= 127 up to rounding, so round-to-nearest-even and
        // the reference's `.min(127)` give the same integers.
        let mut q = [_mm256_setzero_si256(); QK_K / 8];
        for (q, v) in q.iter_mut().zip(v) {
            let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm256_mul_ps(vs, v),
            );
            *q = _mm256_min_epi32(_mm256_cvttps_epi32(r), _mm256_set1_epi32(127));
        }
        b[q8_k::D..q8_k::D + 4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
        for g in 0..QK_K / 32 {
            let packed = pack_i8([q[4 * g], q[4 * g + 1], q[4 * g + 2], q[4 * g + 3]]);
            let at = q8_k::QS + 32 * g;
            // SAFETY: b[at..at + 32] is group g's 32 quant bytes.
            unsafe { _mm256_storeu_si256(b[at..at + 32].as_mut_ptr().cast(), packed) };
            // bsums of the two 16-element sub-blocks of this group.
            for h in 0..2 {
                let s = hsum_i32(_mm256_add_epi32(q[4 * g + 2 * h], q[4 * g + 2 * h + 1])) as i16;
                let off = q8_k::BSUMS + 2 * (2 * g + h);
                b[off..off + 2].copy_from_slice(&s.to_le_bytes());
            }
        }
    }
}
