//! The legacy 32-element formats: q4_0, q4_1, q5_0, q5_1, q8_0 (weights)
//! and q8_0, q8_1 (activations).
//!
//! Dequantization evaluates the same float expressions, in the same order,
//! as ggml's `dequantize_row_*` (`x0 * d` or `x0 * d + m`), so results are
//! bit-exact. Quantizers follow `quantize_row_*_ref`. Dots follow ggml's
//! generic `ggml_vec_dot_*`: an exact i32 sum per block, then one float
//! multiply-add per block.

use super::blocks::{chunks, f16_at, i8_at, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, u32_at, QK};
use half::f16;

const HALF: usize = QK / 2;

/// Element `j` (0..32) of a 4-bit nibble array of 16 bytes.
#[inline]
fn nibble(qs: &[u8], j: usize) -> u8 {
    if j < HALF {
        qs[j] & 0x0F
    } else {
        qs[j - HALF] >> 4
    }
}

/// Element `j` of a q5 block: nibble plus bit `j` of `qh` as bit 4.
#[inline]
fn five_bit(qs: &[u8], qh: u32, j: usize) -> u8 {
    nibble(qs, j) | ((((qh >> j) & 1) as u8) << 4)
}

// ---- dequantization -------------------------------------------------------

pub(crate) fn dequantize_q4_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q4_0::BYTES }>(src).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, q4_0::D);
        let qs = &b[q4_0::QS..];
        for (j, y) in y.iter_mut().enumerate() {
            *y = (i32::from(nibble(qs, j)) - 8) as f32 * d;
        }
    }
}

pub(crate) fn dequantize_q4_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q4_1::BYTES }>(src).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, q4_1::D);
        let m = f16_at(b, q4_1::M);
        let qs = &b[q4_1::QS..];
        for (j, y) in y.iter_mut().enumerate() {
            *y = f32::from(nibble(qs, j)) * d + m;
        }
    }
}

pub(crate) fn dequantize_q5_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q5_0::BYTES }>(src).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, q5_0::D);
        let qh = u32_at(b, q5_0::QH);
        let qs = &b[q5_0::QS..];
        for (j, y) in y.iter_mut().enumerate() {
            *y = (i32::from(five_bit(qs, qh, j)) - 16) as f32 * d;
        }
    }
}

pub(crate) fn dequantize_q5_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q5_1::BYTES }>(src).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, q5_1::D);
        let m = f16_at(b, q5_1::M);
        let qh = u32_at(b, q5_1::QH);
        let qs = &b[q5_1::QS..];
        for (j, y) in y.iter_mut().enumerate() {
            *y = f32::from(five_bit(qs, qh, j)) * d + m;
        }
    }
}

pub(crate) fn dequantize_q8_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q8_0::BYTES }>(src).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, q8_0::D);
        for (j, y) in y.iter_mut().enumerate() {
            *y = f32::from(i8_at(b, q8_0::QS + j)) * d;
        }
    }
}

pub(crate) fn dequantize_q8_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q8_1::BYTES }>(src).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, q8_1::D);
        for (j, y) in y.iter_mut().enumerate() {
            *y = f32::from(i8_at(b, q8_1::QS + j)) * d;
        }
    }
}

// ---- quantization (ggml's quantize_row_*_ref) -----------------------------

/// ggml's `MAX(a, b)` macro: `a > b ? a : b`, so a NaN `b` wins.
#[inline]
fn ggml_max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// Round half to even (what ggml's x86 quantizers get from
/// `_mm256_round_ps(_MM_ROUND_NEAREST)`) and narrow; |x| <= 127 here up to
/// float rounding, and `as` saturates anything past that.
#[inline]
fn round_i8(x: f32) -> i8 {
    x.round_ties_even() as i8
}

#[inline]
fn put_f16(dst: &mut [u8], off: usize, x: f32) {
    dst[off..off + 2].copy_from_slice(&f16::from_f32(x).to_bits().to_le_bytes());
}

/// Absolute max of a block, and the signed value that has it (the first
/// one, as ggml's `if (amax < fabsf(v))`).
fn abs_max(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

pub(crate) fn quantize_q8_0(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(q8_0::BYTES)) {
        let amax = x.iter().fold(0f32, |m, v| ggml_max(m, v.abs()));
        // As llama.cpp's x86 `quantize_row_q8_0` (the code its CPU backend
        // runs): id = 127 / amax in one rounding, not 1 / (amax / 127).
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        put_f16(b, q8_0::D, d);
        for (q, v) in b[q8_0::QS..].iter_mut().zip(x) {
            *q = round_i8(v * id) as u8;
        }
    }
}

pub(crate) fn quantize_q8_1(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(q8_1::BYTES)) {
        let amax = x.iter().fold(0f32, |m, v| ggml_max(m, v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        put_f16(b, q8_1::D, d);
        let mut sum = 0i32;
        for (q, v) in b[q8_1::QS..].iter_mut().zip(x) {
            let qi = round_i8(v * id);
            sum += i32::from(qi);
            *q = qi as u8;
        }
        put_f16(b, q8_1::S, sum as f32 * d);
    }
}

/// `quantize_row_q4_0_ref`: d = max / -8 with the signed max, q = trunc(x/d
/// + 8.5) clamped to 15.
pub(crate) fn quantize_q4_0(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(q4_0::BYTES)) {
        let (_, max) = abs_max(x);
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(b, q4_0::D, d);
        let q = |v: f32| ((v * id + 8.5) as u8).min(15);
        for j in 0..HALF {
            b[q4_0::QS + j] = q(x[j]) | (q(x[j + HALF]) << 4);
        }
    }
}

/// `quantize_row_q4_1_ref`: d = (max - min) / 15, m = min, q = trunc((x -
/// min)/d + 0.5) clamped to 15.
pub(crate) fn quantize_q4_1(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(q4_1::BYTES)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(b, q4_1::D, d);
        put_f16(b, q4_1::M, min);
        let q = |v: f32| (((v - min) * id + 0.5) as u8).min(15);
        for j in 0..HALF {
            b[q4_1::QS + j] = q(x[j]) | (q(x[j + HALF]) << 4);
        }
    }
}

/// `quantize_row_q5_0_ref`: d = max / -16, q = trunc(x/d + 16.5) clamped
/// to 31.
pub(crate) fn quantize_q5_0(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(q5_0::BYTES)) {
        let (_, max) = abs_max(x);
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(b, q5_0::D, d);
        let mut q = [0u8; QK];
        for (q, v) in q.iter_mut().zip(x) {
            *q = ((v * id + 16.5) as u8).min(31);
        }
        pack_q5(&q, &mut b[q5_0::QH..]);
    }
}

/// `quantize_row_q5_1_ref`: d = (max - min) / 31, m = min.
pub(crate) fn quantize_q5_1(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(q5_1::BYTES)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(b, q5_1::D, d);
        put_f16(b, q5_1::M, min);
        let mut q = [0u8; QK];
        for (q, v) in q.iter_mut().zip(x) {
            *q = (((v - min) * id + 0.5) as u8).min(31);
        }
        pack_q5(&q, &mut b[q5_1::QH..]);
    }
}

/// Pack 32 five-bit values as `qh[4], qs[16]` starting at `out[0]`.
fn pack_q5(q: &[u8; QK], out: &mut [u8]) {
    let mut qh = 0u32;
    for j in 0..HALF {
        let (lo, hi) = (q[j], q[j + HALF]);
        out[4 + j] = (lo & 0x0F) | ((hi & 0x0F) << 4);
        qh |= u32::from(lo >> 4) << j;
        qh |= u32::from(hi >> 4) << (j + HALF);
    }
    out[..4].copy_from_slice(&qh.to_le_bytes());
}

/// Min and max of a block, starting from the first element (as ggml's
/// `min = FLT_MAX, max = -FLT_MAX` loop does for finite input).
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

// ---- dots -----------------------------------------------------------------

/// Sum over one block of `w(j) * a.qs[j]` for i8 activations at `a[qs..]`.
#[inline]
fn block_isum(a: &[u8], qs: usize, w: impl Fn(usize) -> i32) -> i32 {
    (0..QK).map(|j| w(j) * i32::from(i8_at(a, qs + j))).sum()
}

/// q4_0 · q8_0: sum_blocks d_w * d_a * sum((nibble - 8) * qa).
pub(crate) fn dot_q4_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in chunks::<{ q4_0::BYTES }>(w).zip(chunks::<{ q8_0::BYTES }>(a)) {
        let qs = &x[q4_0::QS..];
        let isum = block_isum(y, q8_0::QS, |j| i32::from(nibble(qs, j)) - 8);
        sum += isum as f32 * f16_at(x, q4_0::D) * f16_at(y, q8_0::D);
    }
    sum
}

/// q4_1 · q8_1: sum_blocks d_w * d_a * sum(nibble * qa) + m_w * s_a.
pub(crate) fn dot_q4_1_q8_1(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in chunks::<{ q4_1::BYTES }>(w).zip(chunks::<{ q8_1::BYTES }>(a)) {
        let qs = &x[q4_1::QS..];
        let isum = block_isum(y, q8_1::QS, |j| i32::from(nibble(qs, j)));
        sum += (f16_at(x, q4_1::D) * f16_at(y, q8_1::D)) * isum as f32
            + f16_at(x, q4_1::M) * f16_at(y, q8_1::S);
    }
    sum
}

/// q5_0 · q8_0: as q4_0 with five-bit values offset by 16.
pub(crate) fn dot_q5_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in chunks::<{ q5_0::BYTES }>(w).zip(chunks::<{ q8_0::BYTES }>(a)) {
        let (qs, qh) = (&x[q5_0::QS..], u32_at(x, q5_0::QH));
        let isum = block_isum(y, q8_0::QS, |j| i32::from(five_bit(qs, qh, j)) - 16);
        sum += (f16_at(x, q5_0::D) * f16_at(y, q8_0::D)) * isum as f32;
    }
    sum
}

/// q5_1 · q8_1: as q4_1 with five-bit values.
pub(crate) fn dot_q5_1_q8_1(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in chunks::<{ q5_1::BYTES }>(w).zip(chunks::<{ q8_1::BYTES }>(a)) {
        let (qs, qh) = (&x[q5_1::QS..], u32_at(x, q5_1::QH));
        let isum = block_isum(y, q8_1::QS, |j| i32::from(five_bit(qs, qh, j)));
        sum += (f16_at(x, q5_1::D) * f16_at(y, q8_1::D)) * isum as f32
            + f16_at(x, q5_1::M) * f16_at(y, q8_1::S);
    }
    sum
}

/// q8_0 · q8_0: sum_blocks d_w * d_a * sum(qw * qa).
pub(crate) fn dot_q8_0_q8_0(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in chunks::<{ q8_0::BYTES }>(w).zip(chunks::<{ q8_0::BYTES }>(a)) {
        let isum = block_isum(y, q8_0::QS, |j| i32::from(i8_at(x, q8_0::QS + j)));
        sum += isum as f32 * (f16_at(x, q8_0::D) * f16_at(y, q8_0::D));
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q5_high_bits_come_from_qh_bit_j() {
        // Only element 20 has its high bit set (qh bit 20); its nibble is
        // the high nibble of qs[4].
        let mut b = [0u8; q5_0::BYTES];
        b[q5_0::D..q5_0::D + 2].copy_from_slice(&f16::from_f32(1.0).to_bits().to_le_bytes());
        b[q5_0::QH..q5_0::QH + 4].copy_from_slice(&(1u32 << 20).to_le_bytes());
        b[q5_0::QS + 4] = 0x30;
        let mut y = [0f32; QK];
        dequantize_q5_0(&b, &mut y);
        assert_eq!(y[20], (16 + 3 - 16) as f32);
        assert_eq!(y[4], -16.0);
        assert_eq!(y[21], -16.0);
    }

    #[test]
    fn q8_1_stores_d_times_sum() {
        let x: Vec<f32> = (0..QK).map(|i| i as f32 - 10.0).collect();
        let mut b = [0u8; q8_1::BYTES];
        quantize_q8_1(&x, &mut b);
        // s uses the f32 d, before its rounding to f16.
        let d = 21.0f32 / 127.0;
        assert_eq!(f16_at(&b, q8_1::D), f16::from_f32(d).to_f32());
        let s: i32 = (0..QK).map(|j| i32::from(i8_at(&b, q8_1::QS + j))).sum();
        assert_eq!(f16_at(&b, q8_1::S), f16::from_f32(s as f32 * d).to_f32());
        // amax 21 maps to 127.
        assert_eq!(i8_at(&b, q8_1::QS + 31), 127);
    }

    #[test]
    fn q8_0_rounds_half_to_even() {
        // amax 127 gives id = 1 exactly, so x = +-2.5 lands on a tie, which
        // ggml's x86 quantizer rounds to even.
        let mut x = [0f32; QK];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -2.5;
        let mut b = [0u8; q8_0::BYTES];
        quantize_q8_0(&x, &mut b);
        assert_eq!(i8_at(&b, q8_0::QS + 1), 2);
        assert_eq!(i8_at(&b, q8_0::QS + 2), -2);
    }
}
