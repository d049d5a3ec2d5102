//! The SIMD activation quantizers against `quant::quantize_row`, byte for
//! byte, at every level: random rows of many magnitudes plus the edge cases
//! (rounding ties, zeros, subnormals, repeated maxima, NaN and infinities).

mod simd_data;

use llmos_kernels::simd::{self, SimdLevel};
use llmos_kernels::{quant, GgmlType};
use simd_data::{row_bytes, Rng};

const TYPES: [GgmlType; 3] = [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K];

fn check(ty: GgmlType, x: &[f32], what: &str) {
    let mut want = vec![0u8; row_bytes(ty, x.len())];
    quant::quantize_row(ty, x, &mut want).expect("reference quantizes");
    for level in SimdLevel::available() {
        let mut got = vec![0xa5u8; want.len()];
        let r = simd::quantize_row_at(level, ty, x, &mut got).expect("level available");
        assert_eq!(r, Ok(()), "{ty} {what} {}", level.name());
        if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
            panic!(
                "{ty} {what} {}: byte {i} (block {}, offset {}): {:#04x} vs reference {:#04x}",
                level.name(),
                i / ty.type_size(),
                i % ty.type_size(),
                got[i],
                want[i]
            );
        }
    }
}

#[test]
fn random_rows_match_the_reference() {
    let mut rng = Rng(77);
    for ty in TYPES {
        for blocks in 1..=6 {
            for scale in [1e-6, 1e-3, 0.5, 1.0, 30.0, 1e4, 1e30] {
                let x = rng.floats(blocks * ty.block_size(), scale);
                check(ty, &x, &format!("{blocks} blocks, scale {scale}"));
            }
        }
    }
}

#[test]
fn edge_cases_match_the_reference() {
    for ty in TYPES {
        let b = ty.block_size();
        // Exact ties: for q8_0 amax 127 gives id = 1; for q8_K a max of -127
        // gives iscale = 1, so x itself is rounded.
        let mut ties: Vec<f32> = (0..b).map(|i| (i % 50) as f32 - 24.5).collect();
        ties[b - 1] = if ty == GgmlType::Q8_K { -127.0 } else { 127.0 };
        check(ty, &ties, "ties");
        check(ty, &vec![0.0; b], "zeros");
        check(ty, &vec![-0.0; b], "negative zeros");
        let sub: Vec<f32> = (0..b)
            .map(|i| f32::from_bits(1 + i as u32) * if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        check(ty, &sub, "subnormals");
        // Subnormal maxima whose scale's inverse is finite, or not.
        for max in [1e-39f32, 3e-39, 1e-38, 2e-38, 1e-40, 1e-43] {
            let x: Vec<f32> = (0..b)
                .map(|i| max * ((i % 7) as f32 / 6.0 - 0.5) * 2.0)
                .collect();
            check(ty, &x, &format!("subnormal max {max:e}"));
        }
        // The same magnitude with both signs: q8_K keeps the first.
        let mut two = vec![0.25f32; b];
        two[3] = -2.0;
        two[9] = 2.0;
        check(ty, &two, "first max negative");
        two[3] = 2.0;
        two[9] = -2.0;
        check(ty, &two, "first max positive");
        let mut huge = vec![1.0f32; b];
        huge[5] = f32::MAX;
        check(ty, &huge, "f32::MAX");
        for (special, name) in [
            (f32::NAN, "NaN"),
            (f32::INFINITY, "inf"),
            (f32::NEG_INFINITY, "-inf"),
        ] {
            // One bad block between good ones: only it takes the scalar path.
            let mut x: Vec<f32> = (0..3 * b).map(|i| (i as f32 * 0.37).sin()).collect();
            x[b + 7] = special;
            check(ty, &x, name);
        }
    }
}

#[test]
fn errors_match_the_reference() {
    for ty in TYPES {
        let b = ty.block_size();
        for (n, bytes) in [
            (b + 1, ty.type_size()),
            (b, ty.type_size() + 1),
            (2 * b, ty.type_size()),
        ] {
            let x = vec![0.5f32; n];
            let mut d1 = vec![0u8; bytes];
            let mut d2 = vec![0u8; bytes];
            let want = quant::quantize_row(ty, &x, &mut d1);
            assert!(want.is_err(), "{ty} n={n} bytes={bytes}");
            assert_eq!(
                simd::quantize_row(ty, &x, &mut d2),
                want,
                "{ty} n={n} bytes={bytes}"
            );
        }
    }
    // Non-activation types go to the reference too.
    let mut d = vec![0u8; 18];
    assert_eq!(
        simd::quantize_row(GgmlType::Q4_0, &[0.5; 32], &mut d),
        quant::quantize_row(GgmlType::Q4_0, &[0.5; 32], &mut [0u8; 18])
    );
}
