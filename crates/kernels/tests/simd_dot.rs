//! Every SIMD dot against its scalar twin `quant::vec_dot_scalar`, at every
//! level this CPU has, on seeded random rows of many lengths.
//!
//! Tolerance: the kernels compute the same integer block sums exactly and
//! only reorder float additions, so |simd - scalar| <= 1e-5 · Σ|w_i · a_i|
//! (the float rounding scale of the sum), plus 1e-30 for all-zero rows.

mod simd_data;

use llmos_kernels::simd::{self, SimdLevel};
use llmos_kernels::{quant, GgmlType};
use simd_data::{abs_terms, act_row, row_bytes, weight_row, Rng};

/// Row lengths to try: every block count up to 20, then larger ones, and for
/// float types odd lengths that leave a tail.
fn lengths(ty: GgmlType) -> Vec<usize> {
    let b = ty.block_size();
    if b == 1 {
        let mut v: Vec<usize> = (1..=70).collect();
        v.extend([127, 128, 129, 896, 1000, 1536, 4864]);
        v
    } else {
        let mut v: Vec<usize> = (1..=20).map(|k| k * b).collect();
        v.extend([896, 1536, 2048, 4864].into_iter().filter(|n| n % b == 0));
        v
    }
}

#[test]
fn simd_dot_matches_scalar_twin() {
    let mut rng = Rng(0x5eed);
    let levels = SimdLevel::available();
    eprintln!("levels on this CPU: {levels:?}");
    for ty in simd_data::types() {
        for n in lengths(ty) {
            for _ in 0..3 {
                let w = weight_row(&mut rng, ty, n);
                let a = act_row(&mut rng, ty, n);
                let want = quant::vec_dot_scalar(ty, &w, &a, n);
                let tol = 1e-5 * abs_terms(ty, &w, &a, n) + 1e-30;
                for &level in &levels {
                    let got = simd::vec_dot_at(level, ty, &w, &a, n).expect("level available");
                    assert!(
                        (got - want).abs() <= tol,
                        "{ty} n={n} {}: {got} vs scalar {want} (tol {tol})",
                        level.name()
                    );
                }
                let best = simd::vec_dot(ty, &w, &a, n);
                assert!(
                    (best - want).abs() <= tol,
                    "{ty} n={n} best: {best} vs {want}"
                );
            }
        }
    }
}

/// Forcing the scalar level gives exactly the scalar reference.
#[test]
fn forced_scalar_path_is_the_reference() {
    let mut rng = Rng(11);
    for ty in simd_data::types() {
        let n = 4 * ty.block_size().max(32);
        let w = weight_row(&mut rng, ty, n);
        let a = act_row(&mut rng, ty, n);
        let got = simd::vec_dot_at(SimdLevel::Scalar, ty, &w, &a, n);
        assert_eq!(got, Some(quant::vec_dot_scalar(ty, &w, &a, n)), "{ty}");
    }
}

/// Lane k of the four-token kernel is the one-token kernel on row k, bit for
/// bit, at every level (matmul's determinism rests on this).
#[test]
fn dot4_lanes_equal_dot() {
    let mut rng = Rng(99);
    for ty in simd_data::types() {
        for n in lengths(ty).into_iter().step_by(3) {
            let w = weight_row(&mut rng, ty, n);
            let ab = row_bytes(quant::vec_dot_type(ty), n);
            let stride = ab + 8; // a gap between rows must be skipped
            let mut a = vec![0u8; 3 * stride + ab];
            for k in 0..4 {
                a[k * stride..k * stride + ab].copy_from_slice(&act_row(&mut rng, ty, n));
            }
            for level in SimdLevel::available() {
                let four = simd::vec_dot4_at(level, ty, &w, &a, stride, n).expect("valid sizes");
                for (k, v) in four.iter().enumerate() {
                    let one = simd::vec_dot_at(level, ty, &w, &a[k * stride..k * stride + ab], n);
                    assert_eq!(
                        Some(v.to_bits()),
                        one.map(f32::to_bits),
                        "{ty} n={n} {} lane {k}",
                        level.name()
                    );
                }
            }
        }
    }
}

/// The VNNI and AVX2 kernels sum the same integers exactly, so they agree
/// bit for bit; a mismatch means one of them saturates or misorders lanes.
#[test]
fn vnni_equals_avx2_bitwise() {
    if !(SimdLevel::Avx2.is_available() && SimdLevel::Avx512Vnni.is_available()) {
        eprintln!("skipped: needs AVX2 and AVX-512 VNNI");
        return;
    }
    let mut rng = Rng(5);
    for ty in simd_data::types() {
        for n in lengths(ty) {
            let w = weight_row(&mut rng, ty, n);
            let a = act_row(&mut rng, ty, n);
            let x = simd::vec_dot_at(SimdLevel::Avx2, ty, &w, &a, n).map(f32::to_bits);
            let y = simd::vec_dot_at(SimdLevel::Avx512Vnni, ty, &w, &a, n).map(f32::to_bits);
            assert_eq!(x, y, "{ty} n={n}");
        }
    }
}

/// The k-quant kernels reduce each super-block to exact integers and then
/// use the reference's float expression, so they match it bit for bit.
#[test]
fn kquant_simd_is_bit_exact() {
    let mut rng = Rng(256);
    let kquants = [
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ];
    for ty in kquants.into_iter().filter(|t| quant::is_supported(*t)) {
        for blocks in 1..=8 {
            let n = blocks * 256;
            let w = weight_row(&mut rng, ty, n);
            let a = act_row(&mut rng, ty, n);
            let want = quant::vec_dot_scalar(ty, &w, &a, n).to_bits();
            for level in SimdLevel::available() {
                let got = simd::vec_dot_at(level, ty, &w, &a, n).map(f32::to_bits);
                assert_eq!(got, Some(want), "{ty} n={n} {}", level.name());
            }
        }
    }
}

/// Extreme q8 values: weights and activations at ±127 everywhere, the largest
/// sums the kernels must carry without saturating.
#[test]
fn q8_0_extremes_do_not_saturate() {
    let n = 256;
    let ones: Vec<f32> = (0..n)
        .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 })
        .collect();
    let mut q = vec![0u8; row_bytes(GgmlType::Q8_0, n)];
    quant::quantize_row(GgmlType::Q8_0, &ones, &mut q).expect("quantize");
    let want = quant::vec_dot_scalar(GgmlType::Q8_0, &q, &q, n);
    for level in SimdLevel::available() {
        let got = simd::vec_dot_at(level, GgmlType::Q8_0, &q, &q, n);
        assert_eq!(got, Some(want), "{}", level.name());
    }
}

#[test]
fn wrong_sizes_give_nan_not_a_panic() {
    let w = vec![0u8; 34];
    let a = vec![0u8; 34];
    assert!(simd::vec_dot(GgmlType::Q8_0, &w, &a, 64).is_nan());
    assert!(simd::vec_dot(GgmlType::Q8_0, &w[..33], &a, 32).is_nan());
    assert!(simd::vec_dot(GgmlType::Q8_0, &w, &a, 31).is_nan());
    assert!(simd::vec_dot(GgmlType::IQ2_XXS, &w, &a, 32).is_nan());
    assert_eq!(simd::vec_dot(GgmlType::Q8_0, &w, &a, 32), 0.0);
    assert!(simd::vec_dot4_at(SimdLevel::Scalar, GgmlType::Q8_0, &w, &a, 34, 32).is_none());
}

#[test]
fn simd_level_names_the_best_available() {
    let name = simd::simd_level();
    assert!(
        SimdLevel::available().iter().any(|l| l.name() == name),
        "{name}"
    );
}
