//! The k-quants: 256-element super-blocks with per-sub-block scales.
//! Weights q2_K, q3_K, q4_K, q5_K, q6_K; activations q8_K.
//!
//! Each format has one *decoder* that turns a block into its integer
//! values and integer sub-block scales (`*_ints`). Dequantization applies
//! the float scales with ggml's expression order (`d * sc * q - dmin * m`,
//! so bit-exact with `dequantize_row_*`), and the dots use the same integers
//! against q8_K: an i32 sum per sub-block times its integer scale, then one
//! float multiply per super-block, as ggml's generic `ggml_vec_dot_*_q8_K`.

use super::blocks::{
    chunks, f16_at, f32_at, i8_at, k4_scale_min, q2_k, q3_k, q3k_scales, q4_k, q5_k, q6_k, q8_k,
    QK_K,
};

// ---- decoders: block -> integers -------------------------------------------

/// q2_K values 0..=3 in element order.
fn q2k_ints(b: &[u8; q2_k::BYTES]) -> [u8; QK_K] {
    let mut q = [0u8; QK_K];
    for (i, q) in q.iter_mut().enumerate() {
        // i = 128 h + 32 g + l: byte 32 h + l, bits 2 g.
        let (h, g, l) = (i / 128, (i / 32) % 4, i % 32);
        *q = (b[q2_k::QS + 32 * h + l] >> (2 * g)) & 3;
    }
    q
}

/// q3_K values -4..=3 in element order.
fn q3k_ints(b: &[u8; q3_k::BYTES]) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    for (i, q) in q.iter_mut().enumerate() {
        let (h, g, l) = (i / 128, (i / 32) % 4, i % 32);
        let low = (b[q3_k::QS + 32 * h + l] >> (2 * g)) & 3;
        // The high bit of run `4h + g` lives in bit 4h + g of hmask[l]; a
        // clear bit means "subtract 4".
        let high = (b[q3_k::HMASK + l] >> (4 * h + g)) & 1;
        *q = low as i8 - if high == 1 { 0 } else { 4 };
    }
    q
}

/// q4_K values 0..=15 in element order.
fn q4k_ints(b: &[u8; q4_k::BYTES]) -> [u8; QK_K] {
    let mut q = [0u8; QK_K];
    for (i, q) in q.iter_mut().enumerate() {
        // Sub-block s = i / 32 sits in chunk s / 2, low or high nibble.
        let (s, l) = (i / 32, i % 32);
        let byte = b[q4_k::QS + 32 * (s / 2) + l];
        *q = if s % 2 == 0 { byte & 0x0F } else { byte >> 4 };
    }
    q
}

/// q5_K values 0..=31 in element order.
fn q5k_ints(b: &[u8; q5_k::BYTES]) -> [u8; QK_K] {
    let mut q = [0u8; QK_K];
    for (i, q) in q.iter_mut().enumerate() {
        let (s, l) = (i / 32, i % 32);
        let byte = b[q5_k::QS + 32 * (s / 2) + l];
        let low = if s % 2 == 0 { byte & 0x0F } else { byte >> 4 };
        let high = (b[q5_k::QH + l] >> s) & 1;
        *q = low | (high << 4);
    }
    q
}

/// q6_K values -32..=31 in element order.
fn q6k_ints(b: &[u8; q6_k::BYTES]) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    for (i, q) in q.iter_mut().enumerate() {
        // i = 128 h + 32 k + l.
        let (h, k, l) = (i / 128, (i / 32) % 4, i % 32);
        let ql = b[q6_k::QL + 64 * h + l + 32 * (k % 2)];
        let low = if k < 2 { ql & 0x0F } else { ql >> 4 };
        let high = (b[q6_k::QH + 32 * h + l] >> (2 * k)) & 3;
        *q = (low | (high << 4)) as i8 - 32;
    }
    q
}

/// The eight (scale, min) pairs of a q4_K / q5_K block.
fn k4_scales(b: &[u8], off: usize) -> [(u8, u8); 8] {
    let mut packed = [0u8; 12];
    packed.copy_from_slice(&b[off..off + 12]);
    let mut out = [(0, 0); 8];
    for (j, o) in out.iter_mut().enumerate() {
        *o = k4_scale_min(&packed, j);
    }
    out
}

fn q3k_block_scales(b: &[u8; q3_k::BYTES]) -> [u8; 16] {
    let mut packed = [0u8; 12];
    packed.copy_from_slice(&b[q3_k::SCALES..q3_k::SCALES + 12]);
    q3k_scales(&packed)
}

// ---- dequantization -------------------------------------------------------

pub(crate) fn dequantize_q2_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q2_k::BYTES }>(src).zip(dst.chunks_exact_mut(QK_K)) {
        let (d, min) = (f16_at(b, q2_k::D), f16_at(b, q2_k::DMIN));
        let q = q2k_ints(b);
        for (s, (y, q)) in y.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let sc = b[q2_k::SCALES + s];
            let dl = d * f32::from(sc & 0x0F);
            let ml = min * f32::from(sc >> 4);
            for (y, &q) in y.iter_mut().zip(q) {
                *y = dl * f32::from(q) - ml;
            }
        }
    }
}

pub(crate) fn dequantize_q3_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q3_k::BYTES }>(src).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(b, q3_k::D);
        let scales = q3k_block_scales(b);
        let q = q3k_ints(b);
        for (s, (y, q)) in y.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let dl = d * (i32::from(scales[s]) - 32) as f32;
            for (y, &q) in y.iter_mut().zip(q) {
                *y = dl * f32::from(q);
            }
        }
    }
}

pub(crate) fn dequantize_q4_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q4_k::BYTES }>(src).zip(dst.chunks_exact_mut(QK_K)) {
        let (d, min) = (f16_at(b, q4_k::D), f16_at(b, q4_k::DMIN));
        let scales = k4_scales(b, q4_k::SCALES);
        let q = q4k_ints(b);
        for ((y, q), (sc, m)) in y.chunks_exact_mut(32).zip(q.chunks_exact(32)).zip(scales) {
            let (d1, m1) = (d * f32::from(sc), min * f32::from(m));
            for (y, &q) in y.iter_mut().zip(q) {
                *y = d1 * f32::from(q) - m1;
            }
        }
    }
}

pub(crate) fn dequantize_q5_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q5_k::BYTES }>(src).zip(dst.chunks_exact_mut(QK_K)) {
        let (d, min) = (f16_at(b, q5_k::D), f16_at(b, q5_k::DMIN));
        let scales = k4_scales(b, q5_k::SCALES);
        let q = q5k_ints(b);
        for ((y, q), (sc, m)) in y.chunks_exact_mut(32).zip(q.chunks_exact(32)).zip(scales) {
            let (d1, m1) = (d * f32::from(sc), min * f32::from(m));
            for (y, &q) in y.iter_mut().zip(q) {
                *y = d1 * f32::from(q) - m1;
            }
        }
    }
}

pub(crate) fn dequantize_q6_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q6_k::BYTES }>(src).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(b, q6_k::D);
        let q = q6k_ints(b);
        for (s, (y, q)) in y.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            // ggml: d * sc[is] * q, evaluated left to right.
            let ds = d * f32::from(i8_at(b, q6_k::SCALES + s));
            for (y, &q) in y.iter_mut().zip(q) {
                *y = ds * f32::from(q);
            }
        }
    }
}

pub(crate) fn dequantize_q8_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in chunks::<{ q8_k::BYTES }>(src).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f32_at(b, q8_k::D);
        for (j, y) in y.iter_mut().enumerate() {
            *y = d * f32::from(i8_at(b, q8_k::QS + j));
        }
    }
}

// ---- q8_K quantization (quantize_row_q8_K_ref) -----------------------------

/// ggml's `nearest_int`: round to nearest, ties to even, by adding 1.5 *
/// 2^23 so the integer lands in the mantissa. Valid for |x| < 2^22; q8_K
/// only calls it on |x| <= 127.
#[inline]
fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

pub(crate) fn quantize_q8_k(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src
        .chunks_exact(QK_K)
        .zip(dst.chunks_exact_mut(q8_k::BYTES))
    {
        // The signed value of largest magnitude (the first one on ties).
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            b.fill(0);
            continue;
        }
        // ggml scales by -127 / max (not 127 / amax): the largest-magnitude
        // element maps to exactly -127, and d = 1 / iscale is negative
        // when max is positive.
        let iscale = -127.0 / max;
        let mut qs = [0i8; QK_K];
        for (q, &v) in qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        b[q8_k::D..q8_k::D + 4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
        for (o, q) in b[q8_k::QS..q8_k::QS + QK_K].iter_mut().zip(qs) {
            *o = q as u8;
        }
        for (j, sub) in qs.chunks_exact(16).enumerate() {
            let sum: i16 = sub.iter().map(|&q| i16::from(q)).sum();
            let off = q8_k::BSUMS + 2 * j;
            b[off..off + 2].copy_from_slice(&sum.to_le_bytes());
        }
    }
}

// ---- dots against q8_K ----------------------------------------------------

/// The q8_K activation block's values.
fn q8k_ints(y: &[u8; q8_k::BYTES]) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    for (j, q) in q.iter_mut().enumerate() {
        *q = i8_at(y, q8_k::QS + j);
    }
    q
}

/// bsums[j]: sum of the activation's 16 values of sub-block j.
fn q8k_bsum(y: &[u8; q8_k::BYTES], j: usize) -> i32 {
    let off = q8_k::BSUMS + 2 * j;
    i32::from(i16::from_le_bytes([y[off], y[off + 1]]))
}

/// Sum of `w[i] * a[i]` over one sub-block.
#[inline]
fn isum<W: Copy + Into<i32>>(w: &[W], a: &[i8]) -> i32 {
    w.iter()
        .zip(a)
        .map(|(&w, &a)| w.into() * i32::from(a))
        .sum()
}

/// q2_K · q8_K: d_a * (d * sum_s sc_s * isum_s - dmin * sum_s m_s * bsum_s).
pub(crate) fn dot_q2_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in chunks::<{ q2_k::BYTES }>(w).zip(chunks::<{ q8_k::BYTES }>(a)) {
        let (q, a8) = (q2k_ints(x), q8k_ints(y));
        let (mut scaled, mut mins) = (0i32, 0i32);
        for s in 0..QK_K / 16 {
            let sc = x[q2_k::SCALES + s];
            let r = 16 * s..16 * s + 16;
            scaled += i32::from(sc & 0x0F) * isum(&q[r.clone()], &a8[r]);
            mins += i32::from(sc >> 4) * q8k_bsum(y, s);
        }
        let dy = f32_at(y, q8_k::D);
        sum += dy * f16_at(x, q2_k::D) * scaled as f32 - dy * f16_at(x, q2_k::DMIN) * mins as f32;
    }
    sum
}

/// q3_K · q8_K: d * d_a * sum_s (sc_s - 32) * isum_s.
pub(crate) fn dot_q3_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in chunks::<{ q3_k::BYTES }>(w).zip(chunks::<{ q8_k::BYTES }>(a)) {
        let (q, a8, scales) = (q3k_ints(x), q8k_ints(y), q3k_block_scales(x));
        let mut total = 0i32;
        for (s, &sc) in scales.iter().enumerate() {
            let r = 16 * s..16 * s + 16;
            total += (i32::from(sc) - 32) * isum(&q[r.clone()], &a8[r]);
        }
        sum += f16_at(x, q3_k::D) * f32_at(y, q8_k::D) * total as f32;
    }
    sum
}

/// q4_K / q5_K · q8_K, shared: the two differ only in their integer values.
fn dot_k4_like(
    q: &[u8; QK_K],
    scales: [(u8, u8); 8],
    d: f32,
    dmin: f32,
    y: &[u8; q8_k::BYTES],
) -> f32 {
    let a8 = q8k_ints(y);
    let (mut scaled, mut mins) = (0i32, 0i32);
    for (s, (sc, m)) in scales.into_iter().enumerate() {
        let r = 32 * s..32 * s + 32;
        scaled += i32::from(sc) * isum(&q[r.clone()], &a8[r]);
        mins += i32::from(m) * (q8k_bsum(y, 2 * s) + q8k_bsum(y, 2 * s + 1));
    }
    let dy = f32_at(y, q8_k::D);
    dy * d * scaled as f32 - dy * dmin * mins as f32
}

/// q4_K · q8_K: d_a * (d * sum_s sc_s * isum_s - dmin * sum_s m_s * bsum_s).
pub(crate) fn dot_q4_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in chunks::<{ q4_k::BYTES }>(w).zip(chunks::<{ q8_k::BYTES }>(a)) {
        let (d, dmin) = (f16_at(x, q4_k::D), f16_at(x, q4_k::DMIN));
        sum += dot_k4_like(&q4k_ints(x), k4_scales(x, q4_k::SCALES), d, dmin, y);
    }
    sum
}

/// q5_K · q8_K: as q4_K with five-bit values.
pub(crate) fn dot_q5_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in chunks::<{ q5_k::BYTES }>(w).zip(chunks::<{ q8_k::BYTES }>(a)) {
        let (d, dmin) = (f16_at(x, q5_k::D), f16_at(x, q5_k::DMIN));
        sum += dot_k4_like(&q5k_ints(x), k4_scales(x, q5_k::SCALES), d, dmin, y);
    }
    sum
}

/// q6_K · q8_K: d * d_a * sum_s sc_s * isum_s (sc_s signed).
pub(crate) fn dot_q6_k_q8_k(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in chunks::<{ q6_k::BYTES }>(w).zip(chunks::<{ q8_k::BYTES }>(a)) {
        let (q, a8) = (q6k_ints(x), q8k_ints(y));
        let mut total = 0i32;
        for s in 0..QK_K / 16 {
            let r = 16 * s..16 * s + 16;
            total += i32::from(i8_at(x, q6_k::SCALES + s)) * isum(&q[r.clone()], &a8[r]);
        }
        sum += f16_at(x, q6_k::D) * f32_at(y, q8_k::D) * total as f32;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_ties_to_even() {
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(3.5), 4);
        assert_eq!(nearest_int(-2.5), -2);
        assert_eq!(nearest_int(-126.6), -127);
        assert_eq!(nearest_int(0.49), 0);
    }

    #[test]
    fn q8_k_maps_the_signed_max_to_minus_127() {
        let mut x = [0f32; QK_K];
        x[3] = 2.0;
        x[7] = -1.0;
        x[20] = 0.5;
        let mut b = [0u8; q8_k::BYTES];
        quantize_q8_k(&x, &mut b);
        let d = f32_at(&b, q8_k::D);
        assert_eq!(d, 1.0 / (-127.0f32 / 2.0));
        assert_eq!(i8_at(&b, q8_k::QS + 3), -127);
        // -1 * -63.5 = 63.5 ties to even: 64.
        assert_eq!(i8_at(&b, q8_k::QS + 7), 64);
        assert_eq!(q8k_bsum(&b, 0), -127 + 64);
        assert_eq!(q8k_bsum(&b, 1), -32); // 0.5 * -63.5 = -31.75 -> -32
    }

    #[test]
    fn q8_k_of_zeros_is_all_zero() {
        let mut b = [0xAAu8; q8_k::BYTES];
        quantize_q8_k(&[0.0; QK_K], &mut b);
        assert!(b.iter().all(|&v| v == 0));
    }

    #[test]
    fn q6_k_element_order() {
        // Element 128 + 64 + 5 (h=1, k=2, l=5): high nibble of ql[64 + 5],
        // bits 4..6 of qh[32 + 5]; scale index 8 + 4 + 0 = 12.
        let mut b = [0u8; q6_k::BYTES];
        b[q6_k::QL + 69] = 0x70;
        b[q6_k::QH + 37] = 0b10 << 4;
        let q = q6k_ints(&b);
        assert_eq!(q[197], (7 | 2 << 4) - 32);
        assert_eq!(q[196], -32);
    }
}
