//! Activation quantization: quantize -> dequantize error bounds per type,
//! and the invariants of each block (scale, extreme element, sums).

mod quant_common;

use half::{bf16, f16};
use llmos_kernels::quant::{self, blocks};
use llmos_kernels::GgmlType;
use quant_common::{dequantize, quantize, random_row, Rng};

/// Rows with mixed block magnitudes, an all-zero block and a one-hot block.
fn test_rows() -> Vec<Vec<f32>> {
    let mut rows = Vec::new();
    for seed in 0..16 {
        let mut rng = Rng::new(seed);
        let mut x = random_row(&mut rng, 1024);
        x[256..512].fill(0.0);
        x[600..640].fill(0.0);
        x[613] = -3.25;
        rows.push(x);
    }
    rows
}

fn amax(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| m.max(v.abs()))
}

#[test]
fn q8_0_error_is_half_a_step() {
    for x in test_rows() {
        let q = quantize(GgmlType::Q8_0, &x);
        let y = dequantize(GgmlType::Q8_0, &q, x.len());
        for ((xb, yb), qb) in x
            .chunks(32)
            .zip(y.chunks(32))
            .zip(q.chunks(blocks::q8_0::BYTES))
        {
            let d = amax(xb) / 127.0;
            let d16 = blocks::f16_at(qb, blocks::q8_0::D);
            assert_eq!(d16, f16::from_f32(d).to_f32(), "stored scale");
            // round(x / d) is within half a step of x / d; the stored f16
            // scale moves each value by at most 127 |d - d16|.
            let bound = d * (0.5 + 1e-6) + 127.0 * (d - d16).abs();
            for (i, (a, b)) in xb.iter().zip(yb).enumerate() {
                assert!((a - b).abs() <= bound, "x {a:e} -> {b:e}, bound {bound:e}");
                let qi = qb[blocks::q8_0::QS + i] as i8;
                if a.abs() == amax(xb) && d > 0.0 {
                    assert_eq!(qi.unsigned_abs(), 127, "the largest element maps to +-127");
                }
            }
        }
    }
}

#[test]
fn q8_1_matches_q8_0_and_stores_the_scaled_sum() {
    for x in test_rows() {
        let q0 = quantize(GgmlType::Q8_0, &x);
        let q1 = quantize(GgmlType::Q8_1, &x);
        assert_eq!(
            dequantize(GgmlType::Q8_0, &q0, x.len()),
            dequantize(GgmlType::Q8_1, &q1, x.len())
        );
        for (xb, b) in x.chunks(32).zip(q1.chunks(blocks::q8_1::BYTES)) {
            let d = amax(xb) / 127.0; // s uses the f32 scale
            let sum: i32 = b[blocks::q8_1::QS..]
                .iter()
                .map(|&v| i32::from(v as i8))
                .sum();
            let s = blocks::f16_at(b, blocks::q8_1::S);
            assert_eq!(s, f16::from_f32(sum as f32 * d).to_f32());
        }
    }
}

#[test]
fn q8_k_error_is_half_a_step_and_bsums_add_up() {
    for x in test_rows() {
        let q = quantize(GgmlType::Q8_K, &x);
        let y = dequantize(GgmlType::Q8_K, &q, x.len());
        for ((xb, yb), b) in x
            .chunks(256)
            .zip(y.chunks(256))
            .zip(q.chunks(blocks::q8_k::BYTES))
        {
            let d = blocks::f32_at(b, blocks::q8_k::D);
            let qs: Vec<i8> = b[blocks::q8_k::QS..blocks::q8_k::BSUMS]
                .iter()
                .map(|&v| v as i8)
                .collect();
            // The first element of largest magnitude maps to exactly -127:
            // iscale = -127 / max with the *signed* max.
            match xb.iter().position(|v| v.abs() == amax(xb)) {
                Some(i) if amax(xb) > 0.0 => {
                    assert_eq!(qs[i], -127);
                    assert_eq!(d, 1.0 / (-127.0 / xb[i]));
                }
                _ => assert!(d == 0.0 && qs.iter().all(|&v| v == 0)),
            }
            let bound = d.abs() * (0.5 + 1e-6);
            for (a, b) in xb.iter().zip(yb) {
                assert!((a - b).abs() <= bound, "x {a:e} -> {b:e}, bound {bound:e}");
            }
            for (j, group) in qs.chunks(16).enumerate() {
                let off = blocks::q8_k::BSUMS + 2 * j;
                let bsum = i16::from_le_bytes([b[off], b[off + 1]]);
                assert_eq!(
                    i32::from(bsum),
                    group.iter().map(|&v| i32::from(v)).sum::<i32>()
                );
            }
        }
    }
}

#[test]
fn float_formats_round_to_nearest_even() {
    for x in test_rows() {
        assert_eq!(
            dequantize(GgmlType::F32, &quantize(GgmlType::F32, &x), x.len()),
            x
        );
        let y16 = dequantize(GgmlType::F16, &quantize(GgmlType::F16, &x), x.len());
        let yb = dequantize(GgmlType::BF16, &quantize(GgmlType::BF16, &x), x.len());
        for ((a, h), b) in x.iter().zip(&y16).zip(&yb) {
            // Half an ulp: 2^-11 relative for f16 normals (plus the
            // subnormal step 2^-25), 2^-8 for bf16.
            assert!(
                (a - h).abs() <= a.abs() * 2f32.powi(-11) + 2f32.powi(-25),
                "{a} -> {h}"
            );
            assert!((a - b).abs() <= a.abs() * 2f32.powi(-8), "{a} -> {b}");
        }
    }
    // Ties go to the even neighbour.
    let ties = [1.0 + 2f32.powi(-11), 1.0 + 3.0 * 2f32.powi(-11)];
    let y = dequantize(GgmlType::F16, &quantize(GgmlType::F16, &ties), 2);
    assert_eq!(y, [1.0, 1.0 + 4.0 * 2f32.powi(-11)]);
    let ties = [1.0 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-8)];
    let y = dequantize(GgmlType::BF16, &quantize(GgmlType::BF16, &ties), 2);
    assert_eq!(y, [1.0, 1.0 + 4.0 * 2f32.powi(-8)]);
    assert!(bf16::from_bits(quant::f32_to_bf16_bits(f32::NAN)).is_nan());
}

/// The reference weight quantizers (q4_0 .. q5_1) stay within one step of
/// the input: a coarse check that they are usable for test data; the
/// gguf-py fixtures check them bit for bit.
#[test]
fn legacy_weight_quantizers_stay_within_a_step() {
    for x in test_rows() {
        for (ty, levels) in [
            (GgmlType::Q4_0, 8.0),
            (GgmlType::Q4_1, 15.0),
            (GgmlType::Q5_0, 16.0),
            (GgmlType::Q5_1, 31.0),
        ] {
            let y = dequantize(ty, &quantize(ty, &x), x.len());
            for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
                let (lo, hi) = xb
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                let range = if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
                    hi - lo
                } else {
                    amax(xb)
                };
                let step = range / levels;
                // q4_1 / q5_1 also store the min as f16.
                let bound = step * 1.01 + lo.abs() * 2f32.powi(-10) + 1e-30;
                for (a, b) in xb.iter().zip(yb) {
                    assert!(
                        (a - b).abs() <= bound,
                        "{ty}: {a:e} -> {b:e}, step {step:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn quantize_rejects_weight_only_formats_and_bad_sizes() {
    let x = vec![0f32; 256];
    let e = quant::quantize_row(GgmlType::Q4_K, &x, &mut [0u8; 144]).unwrap_err();
    assert_eq!(e.to_string(), "quantize_row: type q4_K is not supported");
    let e = quant::quantize_row(GgmlType::Q8_K, &x, &mut [0u8; 291]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "q8_K row of 256 elements takes 292 bytes, got 291"
    );
    let e = quant::quantize_row(GgmlType::Q8_0, &x[..33], &mut [0u8; 34]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "q8_0 row of 33 elements: not a multiple of the block size 32"
    );
}
