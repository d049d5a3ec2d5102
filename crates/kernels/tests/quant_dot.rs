//! `vec_dot_scalar` for every weight type, on seeded random rows, against
//! two f64 references:
//!
//! 1. the dot of the dequantized weights with the *dequantized* activation:
//!    the same numbers, so only float rounding separates them;
//! 2. the dot with the *unquantized* activation: they differ by the
//!    activation's quantization error, which is bounded element by element
//!    (see `activation_error_bound`).

mod quant_common;

use half::f16;
use llmos_kernels::quant::{self, blocks};
use llmos_kernels::GgmlType;
use quant_common::{dequantize, quantize, random_row, random_weights, Rng};

/// Row lengths: multiples of 256 so every type fits; 1024 spans several
/// k-quant super-blocks and 32 legacy blocks.
const LENGTHS: [usize; 3] = [256, 512, 1024];
const SEEDS: u64 = 20;

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

fn abs_dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) * f64::from(*y)).abs())
        .sum()
}

/// q4_1 / q5_1 dots take `sum_j m * d_a * qa_j` from the activation's f16
/// `s = f16(d_a * sum qa)` rather than from `d_a` in f16 times the sum:
/// two f16 roundings (2^-11 each) of the same value, per block, times |m|.
/// Plus 2^-24 per block for f16 subnormal s.
fn q8_1_s_slack(ty: GgmlType, w: &[u8], a: &[u8]) -> f64 {
    let m_off = match ty {
        GgmlType::Q4_1 => blocks::q4_1::M,
        GgmlType::Q5_1 => blocks::q5_1::M,
        _ => return 0.0,
    };
    w.chunks_exact(ty.type_size())
        .zip(a.chunks_exact(blocks::q8_1::BYTES))
        .map(|(wb, ab)| {
            let m = f64::from(blocks::f16_at(wb, m_off)).abs();
            let s = f64::from(blocks::f16_at(ab, blocks::q8_1::S)).abs();
            m * (s * 2f64.powi(-10) * 1.01 + 2f64.powi(-24))
        })
        .sum()
}

#[test]
fn scalar_dot_matches_the_dot_of_dequantized_rows() {
    for &ty in quant::supported_types() {
        let at = quant::vec_dot_type(ty);
        for &n in &LENGTHS {
            for seed in 0..SEEDS {
                let mut rng = Rng::new(seed * 1000 + n as u64 + u64::from(ty.id()) * 7);
                let w = random_weights(&mut rng, ty, n);
                let a = quantize(at, &random_row(&mut rng, n));
                let (wf, af) = (dequantize(ty, &w, n), dequantize(at, &a, n));

                let got = f64::from(quant::vec_dot_scalar(ty, &w, &a, n));
                let want = dot64(&wf, &af);
                // f32 rounding: a few ulps per block product and per
                // accumulation step, relative to the sum of |terms|.
                let tol = 1e-5 * abs_dot64(&wf, &af) + q8_1_s_slack(ty, &w, &a) + 1e-30;
                assert!(
                    (got - want).abs() <= tol,
                    "{ty}·{at} n={n} seed={seed}: scalar {got:e}, dequantized {want:e}, tol {tol:e}"
                );
            }
        }
    }
}

/// Bound on |x - dequantize(quantize(x))| for each element of `x`
/// quantized as the activation type `at`:
///
/// - q8_0 / q8_1: q = round(x / d), d = amax / 127, stored as f16, so
///   |x - q d16| <= d / 2 + 127 |d - d16| (plus 2^-22 d for the f32 x/d).
/// - q8_K: d = max / -127 stays f32: |x - q d| <= |d| / 2 (plus 2^-20 |d|).
/// - f16 / bf16: half an ulp, 2^-11 |x| / 2^-8 |x| (plus the f16 subnormal
///   step 2^-25).
/// - f32: exact.
fn activation_error_bound(at: GgmlType, x: &[f32]) -> Vec<f64> {
    let block = at.block_size().max(1);
    let mut out = Vec::with_capacity(x.len());
    for xb in x.chunks(if block == 1 { x.len() } else { block }) {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        for &v in xb {
            let v = f64::from(v).abs();
            out.push(match at {
                GgmlType::Q8_0 | GgmlType::Q8_1 => {
                    let d = amax / 127.0;
                    let d16 = f16::from_f32(d).to_f32();
                    let d = f64::from(d);
                    d * (0.5 + 2f64.powi(-22)) + 127.0 * (d - f64::from(d16)).abs()
                }
                GgmlType::Q8_K => f64::from(amax) / 127.0 * (0.5 + 2f64.powi(-20)),
                GgmlType::F16 => v * 2f64.powi(-11) + 2f64.powi(-25),
                GgmlType::BF16 => v * 2f64.powi(-8),
                _ => 0.0,
            });
        }
    }
    out
}

#[test]
fn scalar_dot_is_within_the_activation_quantization_budget() {
    for &ty in quant::supported_types() {
        let at = quant::vec_dot_type(ty);
        for &n in &LENGTHS {
            for seed in 0..SEEDS {
                let mut rng = Rng::new(seed * 7919 + n as u64 + u64::from(ty.id()) * 13);
                let w = random_weights(&mut rng, ty, n);
                let x = random_row(&mut rng, n);
                let a = quantize(at, &x);
                let wf = dequantize(ty, &w, n);

                let got = f64::from(quant::vec_dot_scalar(ty, &w, &a, n));
                let exact = dot64(&wf, &x);
                // The activation error, weighted by |w|, bounds the gap;
                // float rounding and the q8_1 `s` slack come on top.
                let budget: f64 = wf
                    .iter()
                    .zip(activation_error_bound(at, &x))
                    .map(|(w, e)| f64::from(*w).abs() * e)
                    .sum();
                let tol = budget + 1e-5 * abs_dot64(&wf, &x) + q8_1_s_slack(ty, &w, &a) + 1e-30;
                assert!(
                    (got - exact).abs() <= tol,
                    "{ty}·{at} n={n} seed={seed}: scalar {got:e}, exact {exact:e}, budget {budget:e}"
                );
            }
        }
    }
}

/// Catches a dot that ignores part of the row (a dropped block or
/// sub-block would still pass a loose relative check on sums that cancel):
/// a one-hot activation picks out single weights.
#[test]
fn scalar_dot_with_one_hot_activation_reads_each_weight() {
    for &ty in quant::supported_types() {
        let at = quant::vec_dot_type(ty);
        let n = 512;
        let mut rng = Rng::new(u64::from(ty.id()));
        let w = random_weights(&mut rng, ty, n);
        let wf = dequantize(ty, &w, n);
        for i in (0..n).step_by(37).chain([n - 1]) {
            // x_i = 127 quantizes exactly in every activation format (q8_0 /
            // q8_1: d = 1, q = 127; q8_K: d = -1, q = -127; floats: 127).
            let mut x = vec![0f32; n];
            x[i] = 127.0;
            let a = quantize(at, &x);
            let got = quant::vec_dot_scalar(ty, &w, &a, n);
            let want = 127.0 * wf[i];
            // Only float rounding remains, relative to the magnitudes that
            // may cancel inside one weight (d * sc * q against dmin * m),
            // which are bounded by the largest weight of its 16-group.
            let group = &wf[i / 16 * 16..i / 16 * 16 + 16];
            let scale = group.iter().fold(wf[i].abs(), |m, v| m.max(v.abs()));
            let tol = 127.0 * 1e-5 * scale + 1e-30;
            assert!(
                (got - want).abs() <= tol,
                "{ty} element {i}: dot {got:e}, 127 * weight {want:e}"
            );
        }
    }
}
