//! Shared helpers of the quant tests: a seeded PRNG, random rows and
//! random (but valid) weight blocks.
#![allow(dead_code)] // each test binary uses a different subset

use half::f16;
use llmos_kernels::quant::blocks;
use llmos_kernels::GgmlType;

/// SplitMix64: tiny, seedable, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit(); // (0, 1]
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    pub fn bytes(&mut self, out: &mut [u8]) {
        for b in out {
            *b = self.next_u64() as u8;
        }
    }
}

/// A row of `n` floats: normal values, each 32-element block scaled by its
/// own magnitude in [1e-3, 1e2] so blocks differ (as activations do).
pub fn random_row(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    let mut scale = 1.0;
    for i in 0..n {
        if i % 32 == 0 {
            scale = 10f64.powf(rng.uniform(-3.0, 2.0));
        }
        out.push((rng.normal() * scale) as f32);
    }
    out
}

/// Byte offsets of the f16 scale fields of each block format.
pub fn f16_fields(ty: GgmlType) -> &'static [usize] {
    use blocks::*;
    match ty {
        GgmlType::Q4_0 => &[q4_0::D],
        GgmlType::Q4_1 => &[q4_1::D, q4_1::M],
        GgmlType::Q5_0 => &[q5_0::D],
        GgmlType::Q5_1 => &[q5_1::D, q5_1::M],
        GgmlType::Q8_0 => &[q8_0::D],
        GgmlType::Q2_K => &[q2_k::D, q2_k::DMIN],
        GgmlType::Q3_K => &[q3_k::D],
        GgmlType::Q4_K => &[q4_k::D, q4_k::DMIN],
        GgmlType::Q5_K => &[q5_k::D, q5_k::DMIN],
        GgmlType::Q6_K => &[q6_k::D],
        _ => &[],
    }
}

/// A valid weight row of `n` elements of `ty`: random payload bits with
/// finite f16 scales of either sign in [1e-4, 1], or random normal floats
/// for the float types.
pub fn random_weights(rng: &mut Rng, ty: GgmlType, n: usize) -> Vec<u8> {
    let bs = ty.block_size();
    let size = ty.type_size();
    let mut out = vec![0u8; n / bs * size];
    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            let x: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
            if llmos_kernels::quant::quantize_row(ty, &x, &mut out).is_err() {
                unreachable!("float rows always encode");
            }
        }
        _ => {
            rng.bytes(&mut out);
            for block in out.chunks_exact_mut(size) {
                for &off in f16_fields(ty) {
                    let sign = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
                    let d = sign * 10f64.powf(rng.uniform(-4.0, 0.0));
                    block[off..off + 2].copy_from_slice(&f16::from_f64(d).to_le_bytes());
                }
            }
        }
    }
    out
}

/// The dequantized row, as the library computes it.
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut y = vec![0f32; n];
    if let Err(e) = llmos_kernels::quant::dequantize_row(ty, bytes, &mut y) {
        panic!("{e}");
    }
    y
}

/// The quantized row, as the library computes it.
pub fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let bytes = ty.bytes_for(x.len() as u64).unwrap_or(0) as usize;
    let mut q = vec![0u8; bytes];
    if let Err(e) = llmos_kernels::quant::quantize_row(ty, x, &mut q) {
        panic!("{e}");
    }
    q
}
