//! Seeded random rows for the SIMD and matmul tests (shared by
//! `simd_dot.rs` and `matmul_*.rs`; not a test target of its own).
#![allow(dead_code)]

use half::f16;
use llmos_kernels::{quant, GgmlType};

/// SplitMix64: small, seeded, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Roughly bell-shaped (sum of uniforms), like activations and weights.
    pub fn normal(&mut self) -> f32 {
        (self.f32() + self.f32() + self.f32()) * 0.8
    }

    pub fn floats(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
}

/// Bytes of `n` elements of `ty`.
pub fn row_bytes(ty: GgmlType, n: usize) -> usize {
    n / ty.block_size() * ty.type_size()
}

fn put_f16(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 2].copy_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
}

/// A random weight row of `n` elements: quantized from random floats where
/// `quant` has a quantizer for `ty`, else random bytes with sane scales.
pub fn weight_row(rng: &mut Rng, ty: GgmlType, n: usize) -> Vec<u8> {
    let mut row = vec![0u8; row_bytes(ty, n)];
    let x = rng.floats(n, 0.05);
    if quant::quantize_row(ty, &x, &mut row).is_ok() {
        return row;
    }
    for b in row.iter_mut() {
        *b = rng.next_u64() as u8;
    }
    let (size, d_offsets): (usize, &[usize]) = match ty {
        GgmlType::Q2_K => (84, &[80, 82]),
        GgmlType::Q3_K => (110, &[108]),
        GgmlType::Q4_K | GgmlType::Q5_K => (ty.type_size(), &[0, 2]),
        GgmlType::Q6_K => (210, &[208]),
        _ => panic!("no random generator for {ty}"),
    };
    for block in row.chunks_exact_mut(size) {
        for &o in d_offsets {
            put_f16(block, o, 0.001 + 0.01 * rng.f32().abs());
        }
    }
    row
}

/// A random activation row of `n` elements, quantized for a dot with `ty`.
pub fn act_row(rng: &mut Rng, ty: GgmlType, n: usize) -> Vec<u8> {
    let at = quant::vec_dot_type(ty);
    let x = rng.floats(n, 1.0);
    let mut row = vec![0u8; row_bytes(at, n)];
    quant::quantize_row(at, &x, &mut row).expect("activation quantizer");
    row
}

/// Decodes a row of `ty` (weights or activations) to f32.
pub fn decode(ty: GgmlType, row: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    if ty == GgmlType::Q8_K {
        // f32 d, 256 i8, 16 i16 bsums
        for (b, o) in row.chunks_exact(292).zip(out.chunks_exact_mut(256)) {
            let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            for (j, v) in o.iter_mut().enumerate() {
                *v = d * f32::from(b[4 + j] as i8);
            }
        }
        return out;
    }
    quant::dequantize_row(ty, row, &mut out).expect("dequantize");
    out
}

/// Sum of |w_i * a_i|: the scale of the float rounding error of a dot.
pub fn abs_terms(ty: GgmlType, w: &[u8], a: &[u8], n: usize) -> f32 {
    let wf = decode(ty, w, n);
    let af = decode(quant::vec_dot_type(ty), a, n);
    wf.iter().zip(&af).map(|(x, y)| (x * y).abs()).sum()
}

/// Supported weight types, for tests that sweep them all.
pub fn types() -> Vec<GgmlType> {
    GgmlType::ALL
        .into_iter()
        .filter(|t| quant::is_supported(*t))
        .collect()
}
