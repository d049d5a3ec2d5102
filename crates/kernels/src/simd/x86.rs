//! x86-64 dot kernels: AVX2 (+FMA, F16C) and AVX-512 VNNI.
//!
//! Every kernel is a generic body (`#[inline(always)]`) instantiated by a
//! thin `#[target_feature]` entry point per level, so one source serves both
//! levels. They differ only in the integer steps ([`IDot`]): summing 32
//! u8 × i8 products into eight i32 lanes (`vpmaddubsw` + `vpmaddwd` on AVX2,
//! one `vpdpbusd` with VNNI) and scaling i16 pair sums into an i32
//! accumulator (`vpmaddwd` + `vpaddd`, or one `vpdpwssd`). Both flavours
//! compute the same exact integers, so the two levels give bit-identical
//! results (tested). In matmul, VNNI uses the register-tiled kernels of
//! [`gemm`], which reproduce these kernels' float order exactly.
//!
//! Safety contract of the `unsafe fn` helpers: the caller runs with the
//! features of the entry point that inlines them (AVX2, FMA, F16C, plus
//! AVX-512 F/BW/VL + VNNI for [`Vnni`]) and passes pointers to enough
//! readable bytes. Each generic body checks its slice lengths once on entry,
//! which bounds every pointer it forms.
//!
//! Value ranges: q8 activations are in -127..=127 (ggml's quantizers never
//! emit -128) and weights fit their formats, so `vpmaddubsw` pairs stay
//! within 2 · 128 · 127 < 2^15 and never saturate, even for a q8_0 weight
//! of -128. Only a -128 activation times a -128 weight could saturate, as in
//! ggml.

use super::{Dot4Fn, DotFn, QuantizeFn, SimdLevel};
use crate::quant::blocks::{q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, QK};
use core::arch::x86_64::*;
use llmos_gguf::GgmlType;
use std::ptr::read_unaligned;

mod gemm;
mod kquants;
mod quantize;

pub(crate) use gemm::{legacy_aux, Aux, Task, TILE_ROWS};

/// AVX2 level: AVX2, FMA and F16C (every x86-64 CPU since Haswell).
pub(super) fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

/// AVX-512 VNNI level: the AVX2 level plus AVX-512 F/BW/VL and VNNI.
pub(super) fn has_avx512vnni() -> bool {
    has_avx2()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

/// The SIMD activation quantizer for `ty` at `level`, if any: `f(src, dst)`
/// for a whole number of blocks and exactly the row's bytes.
pub(super) fn quantizer(level: SimdLevel, ty: GgmlType) -> Option<QuantizeFn> {
    match (level, ty) {
        (SimdLevel::Scalar, _) => None,
        (_, GgmlType::Q8_0) => Some(avx2::quantize_q8_0),
        (_, GgmlType::Q8_1) => Some(avx2::quantize_q8_1),
        (_, GgmlType::Q8_K) => Some(avx2::quantize_q8_k),
        _ => None,
    }
}

/// The tiled GEMM task runner for `ty` at `level`, if any (AVX-512 VNNI).
pub(super) fn gemm(level: SimdLevel, ty: GgmlType) -> Option<super::GemmFn> {
    use GgmlType::*;
    if level != SimdLevel::Avx512Vnni {
        return None;
    }
    Some(match ty {
        Q4_0 => gemm::gemm_q4_0,
        Q4_1 => gemm::gemm_q4_1,
        Q5_0 => gemm::gemm_q5_0,
        Q5_1 => gemm::gemm_q5_1,
        Q8_0 => gemm::gemm_q8_0,
        Q4_K => gemm::gemm_q4_k,
        Q5_K => gemm::gemm_q5_k,
        Q6_K => gemm::gemm_q6_k,
        _ => return None,
    })
}

/// The kernels for `ty` at `level` (`None`: use the scalar reference).
pub(super) fn kernels(level: SimdLevel, ty: GgmlType) -> (Option<DotFn>, Option<Dot4Fn>) {
    use GgmlType::*;
    match (level, ty) {
        (SimdLevel::Scalar, _) => (None, None),
        (SimdLevel::Avx2, Q8_0) => (Some(avx2::q8_0), Some(avx2::q8_0_x4)),
        (SimdLevel::Avx2, Q4_0) => (Some(avx2::q4_0), Some(avx2::q4_0_x4)),
        (SimdLevel::Avx2, Q4_1) => (Some(avx2::q4_1), Some(avx2::q4_1_x4)),
        (SimdLevel::Avx2, Q5_0) => (Some(avx2::q5_0), Some(avx2::q5_0_x4)),
        (SimdLevel::Avx2, Q5_1) => (Some(avx2::q5_1), Some(avx2::q5_1_x4)),
        (SimdLevel::Avx512Vnni, Q8_0) => (Some(vnni::q8_0), Some(vnni::q8_0_x4)),
        (SimdLevel::Avx512Vnni, Q4_0) => (Some(vnni::q4_0), Some(vnni::q4_0_x4)),
        (SimdLevel::Avx512Vnni, Q4_1) => (Some(vnni::q4_1), Some(vnni::q4_1_x4)),
        (SimdLevel::Avx512Vnni, Q5_0) => (Some(vnni::q5_0), Some(vnni::q5_0_x4)),
        (SimdLevel::Avx512Vnni, Q5_1) => (Some(vnni::q5_1), Some(vnni::q5_1_x4)),
        (SimdLevel::Avx2, Q2_K) => (Some(avx2::q2_k), Some(avx2::q2_k_x4)),
        (SimdLevel::Avx2, Q3_K) => (Some(avx2::q3_k), Some(avx2::q3_k_x4)),
        (SimdLevel::Avx2, Q4_K) => (Some(avx2::q4_k), Some(avx2::q4_k_x4)),
        (SimdLevel::Avx2, Q5_K) => (Some(avx2::q5_k), Some(avx2::q5_k_x4)),
        (SimdLevel::Avx2, Q6_K) => (Some(avx2::q6_k), Some(avx2::q6_k_x4)),
        (SimdLevel::Avx512Vnni, Q2_K) => (Some(vnni::q2_k), Some(vnni::q2_k_x4)),
        (SimdLevel::Avx512Vnni, Q3_K) => (Some(vnni::q3_k), Some(vnni::q3_k_x4)),
        (SimdLevel::Avx512Vnni, Q4_K) => (Some(vnni::q4_k), Some(vnni::q4_k_x4)),
        (SimdLevel::Avx512Vnni, Q5_K) => (Some(vnni::q5_k), Some(vnni::q5_k_x4)),
        (SimdLevel::Avx512Vnni, Q6_K) => (Some(vnni::q6_k), Some(vnni::q6_k_x4)),
        // Float rows have nothing to decode, so four tokens share little:
        // `dot4` falls back to four `dot`s.
        (_, F32) => (Some(avx2::f32), None),
        (_, F16) => (Some(avx2::f16), None),
        (_, BF16) => (Some(avx2::bf16), None),
        _ => (None, None),
    }
}

// ---- integer dot flavours ---------------------------------------------------

/// Sums the 32 products `u[j] * s[j]` (u8 × i8) in groups of four into eight
/// i32 lanes: lane i = sum over j in 4i..4i+4.
trait IDot {
    /// # Safety
    /// Requires the level's CPU features.
    unsafe fn dot(u: __m256i, s: __m256i) -> __m256i;

    /// `acc` plus the i16 pairs of `p` times those of `scale`, summed in
    /// pairs into the i32 lanes (exact: no saturation in either flavour).
    ///
    /// # Safety
    /// Requires the level's CPU features.
    unsafe fn acc_scaled(acc: __m256i, p: __m256i, scale: __m256i) -> __m256i;
}

/// AVX2: `vpmaddubsw` (pairs to i16) then `vpmaddwd` with ones (to i32).
struct Avx2;
impl IDot for Avx2 {
    #[inline(always)]
    unsafe fn dot(u: __m256i, s: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }
    #[inline(always)]
    unsafe fn acc_scaled(acc: __m256i, p: __m256i, scale: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(p, scale))
    }
}

/// AVX-512 VNNI on 256-bit registers: one `vpdpbusd`.
struct Vnni;
impl IDot for Vnni {
    #[inline(always)]
    unsafe fn dot(u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
    }
    #[inline(always)]
    unsafe fn acc_scaled(acc: __m256i, p: __m256i, scale: __m256i) -> __m256i {
        _mm256_dpwssd_epi32(acc, p, scale)
    }
}

// ---- small helpers ------------------------------------------------------------

/// The f16 at `p` as f32 (F16C).
#[inline(always)]
unsafe fn f16_at(p: *const u8) -> f32 {
    let bits = read_unaligned(p.cast::<u16>());
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

#[inline(always)]
unsafe fn load256(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p.cast())
}

/// The 32 nibbles of 16 bytes at `p` in element order: low nibbles are
/// elements 0..16, high nibbles 16..32. (A broadcast load and a per-lane
/// shift keep this off port 5, which the scale shuffles need.)
#[inline(always)]
unsafe fn nibbles32(p: *const u8) -> __m256i {
    let both = _mm256_broadcastsi128_si256(_mm_loadu_si128(p.cast()));
    let shifted = _mm256_srlv_epi64(both, _mm256_set_epi64x(4, 4, 0, 0));
    _mm256_and_si256(shifted, _mm256_set1_epi8(0x0f))
}

/// Byte j = 0xff if bit j of the little-endian u32 at `p` is set, else 0.
#[inline(always)]
unsafe fn bits32(p: *const u8) -> __m256i {
    let x = read_unaligned(p.cast::<u32>()) as i32;
    // Byte j takes source byte j / 8 ...
    let shuf = _mm256_set_epi64x(
        0x0303_0303_0303_0303,
        0x0202_0202_0202_0202,
        0x0101_0101_0101_0101,
        0,
    );
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x), shuf);
    // ... and is all ones iff bit j % 8 is set once the other bits are forced.
    let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
    _mm256_cmpeq_epi8(_mm256_or_si256(bytes, others), _mm256_set1_epi64x(-1))
}

/// Sum of the eight i32 lanes (wrapping, but the bounds above keep it exact).
#[inline(always)]
pub(super) unsafe fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

/// Sum of the eight lanes.
#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

// ---- legacy 32-element blocks ------------------------------------------------

/// A legacy weight format, dotted with q8_0 (`SIGNED`) or q8_1 (with a min).
trait Legacy {
    /// Bytes per weight block.
    const BYTES: usize;
    /// Weights decode to i8 (× q8_0); otherwise to u8 with a min `m` (× q8_1).
    const SIGNED: bool;
    /// The 32 quants of the block at `b`, in element order.
    unsafe fn quants(b: *const u8) -> __m256i;
    /// The f16 bits of the min `m` (unsigned formats only).
    unsafe fn min_bits(b: *const u8) -> u16;
}

struct Q4_0;
impl Legacy for Q4_0 {
    const BYTES: usize = q4_0::BYTES;
    const SIGNED: bool = true;
    #[inline(always)]
    unsafe fn quants(b: *const u8) -> __m256i {
        _mm256_sub_epi8(nibbles32(b.add(q4_0::QS)), _mm256_set1_epi8(8))
    }
    #[inline(always)]
    unsafe fn min_bits(_: *const u8) -> u16 {
        0
    }
}

struct Q4_1;
impl Legacy for Q4_1 {
    const BYTES: usize = q4_1::BYTES;
    const SIGNED: bool = false;
    #[inline(always)]
    unsafe fn quants(b: *const u8) -> __m256i {
        nibbles32(b.add(q4_1::QS))
    }
    #[inline(always)]
    unsafe fn min_bits(b: *const u8) -> u16 {
        f16_bits(b.add(q4_1::M))
    }
}

struct Q5_0;
impl Legacy for Q5_0 {
    const BYTES: usize = q5_0::BYTES;
    const SIGNED: bool = true;
    #[inline(always)]
    unsafe fn quants(b: *const u8) -> __m256i {
        // (nibble | hbit << 4) - 16 is nibble - 16 (as i8: nibble | 0xf0)
        // when the high bit is clear, and nibble when it is set.
        let hi = _mm256_andnot_si256(bits32(b.add(q5_0::QH)), _mm256_set1_epi8(0xf0u8 as i8));
        _mm256_or_si256(nibbles32(b.add(q5_0::QS)), hi)
    }
    #[inline(always)]
    unsafe fn min_bits(_: *const u8) -> u16 {
        0
    }
}

struct Q5_1;
impl Legacy for Q5_1 {
    const BYTES: usize = q5_1::BYTES;
    const SIGNED: bool = false;
    #[inline(always)]
    unsafe fn quants(b: *const u8) -> __m256i {
        let hi = _mm256_and_si256(bits32(b.add(q5_1::QH)), _mm256_set1_epi8(0x10));
        _mm256_or_si256(nibbles32(b.add(q5_1::QS)), hi)
    }
    #[inline(always)]
    unsafe fn min_bits(b: *const u8) -> u16 {
        f16_bits(b.add(q5_1::M))
    }
}

struct Q8_0;
impl Legacy for Q8_0 {
    const BYTES: usize = q8_0::BYTES;
    const SIGNED: bool = true;
    #[inline(always)]
    unsafe fn quants(b: *const u8) -> __m256i {
        load256(b.add(q8_0::QS))
    }
    #[inline(always)]
    unsafe fn min_bits(_: *const u8) -> u16 {
        0
    }
}

/// One block's integer dot in eight i32 lanes, as floats (exact: |sum| < 2^24).
#[inline(always)]
unsafe fn block_dot<I: IDot, W: Legacy>(x: __m256i, aq: __m256i) -> __m256 {
    let p = if W::SIGNED {
        // i8 × i8 as u8 × i8: move x's sign onto the activation.
        I::dot(_mm256_sign_epi8(x, x), _mm256_sign_epi8(aq, x))
    } else {
        I::dot(x, aq)
    };
    _mm256_cvtepi32_ps(p)
}

/// The f16 bits at `p`.
#[inline(always)]
unsafe fn f16_bits(p: *const u8) -> u16 {
    read_unaligned(p.cast::<u16>())
}

/// Four f16 bit patterns packed into a u64, lane 0 lowest.
#[inline(always)]
fn pack4(x: [u16; 4]) -> u64 {
    u64::from(x[0]) | u64::from(x[1]) << 16 | u64::from(x[2]) << 32 | u64::from(x[3]) << 48
}

/// Converts two groups of four f16 values to f32 with one `vcvtph2ps`.
///
/// The eight values are packed in general registers and moved over as two
/// u64: inserting them one by one is eight port-5 shuffles, and converting
/// one f16 at a time let the compiler insert into an arbitrary register
/// (only lane 0 mattered), which chained each block's scale to the
/// accumulator through a false dependency and halved the speed.
#[inline(always)]
unsafe fn f16x4x2(x: [u16; 4], y: [u16; 4]) -> (__m128, __m128) {
    let v = _mm_set_epi64x(pack4(y) as i64, pack4(x) as i64);
    let f = _mm256_cvtph_ps(v);
    (_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1))
}

/// Lane `j` of `v` in all eight lanes.
#[inline(always)]
unsafe fn lane(v: __m128, j: i32) -> __m256 {
    _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_set1_epi32(j))
}

/// Sum of the four lanes.
#[inline(always)]
unsafe fn hsum4(s: __m128) -> f32 {
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// `N` dots of one legacy weight row with the activation rows at
/// `a[k * stride..]`.
///
/// Blocks go in groups of four (the last group may be shorter); per group
/// and token, see [`legacy_group`]. Result: `hsum(acc) + hsum(summ)`.
#[inline(always)]
unsafe fn legacy<I: IDot, W: Legacy, const N: usize>(
    w: &[u8],
    a: &[u8],
    stride: usize,
    n: usize,
) -> [f32; N] {
    let ab = if W::SIGNED { q8_0::BYTES } else { q8_1::BYTES };
    let nb = n / QK;
    assert!(
        w.len() >= nb * W::BYTES && a.len() >= (N - 1) * stride + nb * ab,
        "legacy dot: short rows"
    );
    let (wp, ap) = (w.as_ptr(), a.as_ptr());
    let mut acc = [_mm256_setzero_ps(); N];
    let mut summ = [_mm_setzero_ps(); N];
    let mut i = 0;
    while i + 4 <= nb {
        legacy_group::<I, W, N, 4>(wp, ap, stride, i, &mut acc, &mut summ);
        i += 4;
    }
    match nb - i {
        1 => legacy_group::<I, W, N, 1>(wp, ap, stride, i, &mut acc, &mut summ),
        2 => legacy_group::<I, W, N, 2>(wp, ap, stride, i, &mut acc, &mut summ),
        3 => legacy_group::<I, W, N, 3>(wp, ap, stride, i, &mut acc, &mut summ),
        _ => {}
    }
    let mut out = [0f32; N];
    for k in 0..N {
        out[k] = hsum(acc[k]) + hsum4(summ[k]);
    }
    out
}

/// Blocks `i..i + G` (G <= 4) of every token: the eight f16 scales of a
/// token (weight and activation) convert in one instruction, the block
/// products are summed `t = s0·p0 + s1·p1 + ..`, then `acc += t`. Formats
/// with a min add `m·s` into the 4-lane `summ`. `G` is a constant so every
/// loop here unrolls and the small arrays live in registers.
#[inline(always)]
unsafe fn legacy_group<I: IDot, W: Legacy, const N: usize, const G: usize>(
    wp: *const u8,
    ap: *const u8,
    stride: usize,
    i: usize,
    acc: &mut [__m256; N],
    summ: &mut [__m128; N],
) {
    let (ab, aqs, a_s) = if W::SIGNED {
        (q8_0::BYTES, q8_0::QS, 0)
    } else {
        (q8_1::BYTES, q8_1::QS, q8_1::S)
    };
    let mut x = [_mm256_setzero_si256(); G];
    let (mut dw, mut mw) = ([0u16; 4], [0u16; 4]);
    for j in 0..G {
        let b = wp.add((i + j) * W::BYTES);
        x[j] = W::quants(b);
        dw[j] = f16_bits(b);
        if !W::SIGNED {
            mw[j] = W::min_bits(b);
        }
    }
    for k in 0..N {
        let row = ap.add(k * stride + i * ab);
        let (mut da, mut sa) = ([0u16; 4], [0u16; 4]);
        let mut p = [_mm256_setzero_ps(); G];
        for j in 0..G {
            let y = row.add(j * ab);
            da[j] = f16_bits(y);
            if !W::SIGNED {
                sa[j] = f16_bits(y.add(a_s));
            }
            p[j] = block_dot::<I, W>(x[j], load256(y.add(aqs)));
        }
        let (dw4, da4) = f16x4x2(dw, da);
        let d = _mm_mul_ps(dw4, da4);
        let mut t = _mm256_mul_ps(lane(d, 0), p[0]);
        for (j, p) in p.iter().enumerate().skip(1) {
            t = _mm256_fmadd_ps(lane(d, j as i32), *p, t);
        }
        acc[k] = _mm256_add_ps(acc[k], t);
        if !W::SIGNED {
            let (m4, s4) = f16x4x2(mw, sa);
            summ[k] = _mm_fmadd_ps(m4, s4, summ[k]);
        }
    }
}

// ---- float rows ---------------------------------------------------------------

/// A float element format: eight elements at a time as f32.
trait Float {
    const BYTES: usize;
    unsafe fn load8(p: *const u8) -> __m256;
    unsafe fn one(p: *const u8) -> f32;
}

struct F32;
impl Float for F32 {
    const BYTES: usize = 4;
    #[inline(always)]
    unsafe fn load8(p: *const u8) -> __m256 {
        _mm256_loadu_ps(p.cast())
    }
    #[inline(always)]
    unsafe fn one(p: *const u8) -> f32 {
        read_unaligned(p.cast::<f32>())
    }
}

struct F16;
impl Float for F16 {
    const BYTES: usize = 2;
    #[inline(always)]
    unsafe fn load8(p: *const u8) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
    }
    #[inline(always)]
    unsafe fn one(p: *const u8) -> f32 {
        f16_at(p)
    }
}

struct Bf16;
impl Float for Bf16 {
    const BYTES: usize = 2;
    #[inline(always)]
    unsafe fn load8(p: *const u8) -> __m256 {
        // bf16 is the top half of an f32.
        let wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
        _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16))
    }
    #[inline(always)]
    unsafe fn one(p: *const u8) -> f32 {
        f32::from_bits(u32::from(read_unaligned(p.cast::<u16>())) << 16)
    }
}

/// Float dot: four 8-lane accumulators over 32 elements per step, the tail
/// (< 32 elements) summed in order.
#[inline(always)]
unsafe fn float_dot<F: Float>(w: &[u8], a: &[u8], n: usize) -> f32 {
    assert!(
        w.len() >= n * F::BYTES && a.len() >= n * F::BYTES,
        "float dot: short rows"
    );
    let (wp, ap) = (w.as_ptr(), a.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            let o = (i + 8 * j) * F::BYTES;
            *acc = _mm256_fmadd_ps(F::load8(wp.add(o)), F::load8(ap.add(o)), *acc);
        }
        i += 32;
    }
    let mut tail = 0f32;
    while i < n {
        tail += F::one(wp.add(i * F::BYTES)) * F::one(ap.add(i * F::BYTES));
        i += 1;
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum(s) + tail
}

// ---- entry points -------------------------------------------------------------

/// Defines the `dot` and `dot4` entry points of legacy format `$w` with
/// integer flavour `$i` under target features `$feat`.
macro_rules! legacy_entries {
    ($feat:literal, $i:ty, $( $name:ident, $name4:ident, $w:ty; )*) => {
        $(
            /// # Safety
            /// Requires the CPU features in `target_feature`.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name(w: &[u8], a: &[u8], n: usize) -> f32 {
                super::legacy::<$i, $w, 1>(w, a, 0, n)[0]
            }

            /// # Safety
            /// Requires the CPU features in `target_feature`.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name4(w: &[u8], a: &[u8], stride: usize, n: usize) -> [f32; 4] {
                super::legacy::<$i, $w, 4>(w, a, stride, n)
            }
        )*
    };
}

/// Defines the `dot` and `dot4` entry points of the k-quant bodies in
/// `kquants` under target features `$feat`.
macro_rules! kquant_entries {
    ($feat:literal, $i:ty, $( $name:ident, $name4:ident; )*) => {
        $(
            /// # Safety
            /// Requires the CPU features in `target_feature`.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name(w: &[u8], a: &[u8], n: usize) -> f32 {
                super::kquants::$name::<$i, 1>(w, a, 0, n)[0]
            }

            /// # Safety
            /// Requires the CPU features in `target_feature`.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name4(w: &[u8], a: &[u8], stride: usize, n: usize) -> [f32; 4] {
                super::kquants::$name::<$i, 4>(w, a, stride, n)
            }
        )*
    };
}

mod avx2 {
    use super::{Avx2, Bf16, F16, F32, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0};

    kquant_entries!("avx2,fma,f16c", Avx2,
        q2_k, q2_k_x4;
        q3_k, q3_k_x4;
        q4_k, q4_k_x4;
        q5_k, q5_k_x4;
        q6_k, q6_k_x4;
    );

    legacy_entries!("avx2,fma,f16c", Avx2,
        q4_0, q4_0_x4, Q4_0;
        q4_1, q4_1_x4, Q4_1;
        q5_0, q5_0_x4, Q5_0;
        q5_1, q5_1_x4, Q5_1;
        q8_0, q8_0_x4, Q8_0;
    );

    /// # Safety
    /// Requires AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn quantize_q8_0(src: &[f32], dst: &mut [u8]) {
        super::quantize::q8_0::<false>(src, dst)
    }

    /// # Safety
    /// Requires AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn quantize_q8_1(src: &[f32], dst: &mut [u8]) {
        super::quantize::q8_0::<true>(src, dst)
    }

    /// # Safety
    /// Requires AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn quantize_q8_k(src: &[f32], dst: &mut [u8]) {
        super::quantize::q8_k(src, dst)
    }

    /// # Safety
    /// Requires AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn f32(w: &[u8], a: &[u8], n: usize) -> f32 {
        super::float_dot::<F32>(w, a, n)
    }

    /// # Safety
    /// Requires AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn f16(w: &[u8], a: &[u8], n: usize) -> f32 {
        super::float_dot::<F16>(w, a, n)
    }

    /// # Safety
    /// Requires AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn bf16(w: &[u8], a: &[u8], n: usize) -> f32 {
        super::float_dot::<Bf16>(w, a, n)
    }
}

mod vnni {
    use super::{Vnni, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0};

    kquant_entries!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni", Vnni,
        q2_k, q2_k_x4;
        q3_k, q3_k_x4;
        q4_k, q4_k_x4;
        q5_k, q5_k_x4;
        q6_k, q6_k_x4;
    );

    legacy_entries!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni", Vnni,
        q4_0, q4_0_x4, Q4_0;
        q4_1, q4_1_x4, Q4_1;
        q5_0, q5_0_x4, Q5_0;
        q5_1, q5_1_x4, Q5_1;
        q8_0, q8_0_x4, Q8_0;
    );
}
