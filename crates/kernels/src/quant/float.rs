//! Plain float rows: f32, f16 and bf16 (block size 1).
//!
//! Widening f16/bf16 to f32 is exact. Narrowing rounds to nearest even, as
//! ggml does (`GGML_FP32_TO_FP16`, `ggml_compute_fp32_to_bf16`). The dots
//! multiply in f32 and accumulate in f64, like ggml's scalar
//! `ggml_vec_dot_f16` (its `ggml_float` is a double).

use half::{bf16, f16};

pub(crate) fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *y = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

pub(crate) fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *y = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
    }
}

pub(crate) fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *y = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16);
    }
}

pub(crate) fn quantize_f32(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.iter().zip(dst.chunks_exact_mut(4)) {
        b.copy_from_slice(&x.to_le_bytes());
    }
}

pub(crate) fn quantize_f16(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.iter().zip(dst.chunks_exact_mut(2)) {
        b.copy_from_slice(&f16::from_f32(*x).to_bits().to_le_bytes());
    }
}

/// ggml's `ggml_compute_fp32_to_bf16`: NaNs are kept (and made quiet),
/// everything else rounds to nearest even.
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    // u + 0x7fff + lsb cannot overflow u32 for a non-NaN: at most
    // 0xff80_0000 + 0x8000.
    ((u + (0x7fff + ((u >> 16) & 1))) >> 16) as u16
}

pub(crate) fn quantize_bf16(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.iter().zip(dst.chunks_exact_mut(2)) {
        b.copy_from_slice(&f32_to_bf16_bits(*x).to_le_bytes());
    }
}

pub(crate) fn dot_f32(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f64;
    for (x, y) in w.chunks_exact(4).zip(a.chunks_exact(4)) {
        let x = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
        let y = f32::from_le_bytes([y[0], y[1], y[2], y[3]]);
        sum += f64::from(x * y);
    }
    sum as f32
}

pub(crate) fn dot_f16(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f64;
    for (x, y) in w.chunks_exact(2).zip(a.chunks_exact(2)) {
        let x = f16::from_bits(u16::from_le_bytes([x[0], x[1]])).to_f32();
        let y = f16::from_bits(u16::from_le_bytes([y[0], y[1]])).to_f32();
        sum += f64::from(x * y);
    }
    sum as f32
}

pub(crate) fn dot_bf16(w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0f64;
    for (x, y) in w.chunks_exact(2).zip(a.chunks_exact(2)) {
        let x = bf16::from_bits(u16::from_le_bytes([x[0], x[1]])).to_f32();
        let y = bf16::from_bits(u16::from_le_bytes([y[0], y[1]])).to_f32();
        sum += f64::from(x * y);
    }
    sum as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even_and_keeps_nan() {
        // 1 + 2^-8 is exactly half-way between two bf16 values: ties to even (1.0).
        assert_eq!(f32_to_bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        // 1 + 3 * 2^-8 is half-way too: ties to even rounds up.
        assert_eq!(f32_to_bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(f32_to_bf16_bits(f32::INFINITY), 0x7f80);
        // A signalling NaN with only low payload bits stays a NaN.
        let b = f32_to_bf16_bits(f32::from_bits(0x7f80_0001));
        assert!(bf16::from_bits(b).is_nan());
        assert_eq!(f32_to_bf16_bits(f32::MAX), 0x7f80); // rounds up to inf, as ggml
    }
}
