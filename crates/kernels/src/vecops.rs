//! Row operations of the encoder (BERT) between its GEMMs: LayerNorm, bias,
//! GELU (erf) and softmax, each compiled three times and picked at run time.
//!
//! Each operation is one plain `#[inline(always)]` function (`*_ref`, the
//! scalar reference). [`multiversion!`] wraps it in `#[target_feature]`
//! copies for AVX-512 and AVX2+FMA, where LLVM vectorises the same loops; the
//! level is [`simd::best_level`] (so `LLMOS_SIMD=scalar` runs the reference).
//! The loops are written so vectorising does not reorder any float operation
//! (sums go into fixed lanes, `mul_add` is exact in both forms), so every
//! level gives the reference's bits; the tests check that.
//!
//! Why this exists: written as plain loops in a crate built for baseline
//! x86-64, these ran as scalar SSE code with a libm call per `mul_add`, and
//! they took half of the embedding time next to the AVX-512 GEMM.

use crate::simd::{best_level, SimdLevel};

/// Defines `pub fn $name(args)` that runs `$reference` built for the best
/// level [`best_level`] allows.
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),*) => $reference:ident) => {
        $(#[$m])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn v512($($arg: $ty),*) {
                    $reference($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v256($($arg: $ty),*) {
                    $reference($($arg),*)
                }
                match best_level() {
                    // SAFETY: best_level only returns levels the CPU has.
                    SimdLevel::Avx512Vnni => return unsafe { v512($($arg),*) },
                    // SAFETY: as above.
                    SimdLevel::Avx2 => return unsafe { v256($($arg),*) },
                    SimdLevel::Scalar => {}
                }
            }
            $reference($($arg),*)
        }
    };
}

/// Lanes of the partial sums: a multiple of every vector width, and a fixed
/// order of additions whatever the level.
const LANES: usize = 16;

#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            acc[i] += f(c[i]);
        }
    }
    let mut s = 0f32;
    for a in acc {
        s += a;
    }
    for &v in chunks.remainder() {
        s += f(v);
    }
    s
}

/// Reference of [`layer_norm_rows`].
#[inline(always)]
pub fn layer_norm_rows_ref(x: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let d = w.len();
    assert!(
        d > 0 && b.len() == d && x.len() % d == 0,
        "layer_norm: shapes"
    );
    let inv_d = 1.0 / d as f32;
    for row in x.chunks_exact_mut(d) {
        let mean = lane_sum(row, |v| v) * inv_d;
        let var = lane_sum(row, |v| (v - mean) * (v - mean)) * inv_d;
        let rstd = 1.0 / (var + eps).sqrt();
        for ((v, &wi), &bi) in row.iter_mut().zip(w).zip(b) {
            *v = ((*v - mean) * rstd).mul_add(wi, bi);
        }
    }
}

multiversion! {
    /// `row = (row - mean) / sqrt(var + eps) * w + b` for each row of width
    /// `w.len()` (two passes in f32: the mean, then the variance about it).
    ///
    /// # Panics
    /// If `b` and `w` differ in length or `x` is not whole rows.
    fn layer_norm_rows(x: &mut [f32], w: &[f32], b: &[f32], eps: f32) => layer_norm_rows_ref
}

/// Reference of [`add_bias_rows`].
#[inline(always)]
pub fn add_bias_rows_ref(x: &mut [f32], b: &[f32]) {
    assert!(!b.is_empty() && x.len() % b.len() == 0, "add_bias: shapes");
    for row in x.chunks_exact_mut(b.len()) {
        for (v, &bi) in row.iter_mut().zip(b) {
            *v += bi;
        }
    }
}

multiversion! {
    /// `row += b` for each row of width `b.len()`.
    ///
    /// # Panics
    /// If `x` is not whole rows.
    fn add_bias_rows(x: &mut [f32], b: &[f32]) => add_bias_rows_ref
}

/// erf as a rational function of odd/even polynomials on [-4, 4] (outside,
/// erf is ±1 in f32): the approximation Eigen and XLA use for f32
/// (`generic_fast_erf_float`), within a few ULP of libm's `erff`. No calls
/// and no branches, so loops over it vectorise.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p.mul_add(x2, 2.770_681_4e-8);
    p = p.mul_add(x2, -2.101_024e-6);
    p = p.mul_add(x2, -5.692_506_4e-5);
    p = p.mul_add(x2, -7.349_906_3e-4);
    p = p.mul_add(x2, -2.954_6e-3);
    p = p.mul_add(x2, -1.609_603_3e-2);
    let mut q = -1.456_607_2e-5_f32;
    q = q.mul_add(x2, -2.133_740_6e-4);
    q = q.mul_add(x2, -1.682_827e-3);
    q = q.mul_add(x2, -7.373_329e-3);
    q = q.mul_add(x2, -1.426_474e-2);
    x * p / q
}

/// BERT's GELU of one value: `x/2 · (1 + erf(x/√2))`.
#[inline(always)]
pub fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Reference of [`gelu_erf_inplace`].
#[inline(always)]
pub fn gelu_erf_inplace_ref(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = gelu_erf(*v);
    }
}

multiversion! {
    /// [`gelu_erf`] of every element.
    fn gelu_erf_inplace(x: &mut [f32]) => gelu_erf_inplace_ref
}

/// `e^x` for x ≤ 0 (softmax's shifted scores), branch-free: Cody–Waite
/// reduction `x = n ln2 + r`, a degree-6 polynomial for `e^r` on
/// [-ln2/2, ln2/2], and `2^n` built in the exponent bits. Relative error
/// below 3e-7 (2 ulp) against libm (test). Inputs are clamped at -87: e^-87 ≈ 2e-38,
/// nothing next to the row maximum's 1.
#[inline(always)]
pub fn exp_nonpos(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5·2^23: adding it rounds to an integer (ties to even) and leaves
    // that integer in the low mantissa bits: no float→int conversion, which
    // would not vectorise (Rust's `as` saturates).
    const MAGIC: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let t = x.mul_add(std::f32::consts::LOG2_E, MAGIC);
    let n = t - MAGIC;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let mut p = 1.0 / 720.0_f32;
    p = p.mul_add(r, 1.0 / 120.0);
    p = p.mul_add(r, 1.0 / 24.0);
    p = p.mul_add(r, 1.0 / 6.0);
    p = p.mul_add(r, 0.5);
    p = p.mul_add(r, 1.0);
    p = p.mul_add(r, 1.0);
    // n in [-126, 0]: 2^n is the normal float with exponent field n + 127
    let n_bits = t.to_bits().wrapping_sub(MAGIC.to_bits());
    let two_n = f32::from_bits(n_bits.wrapping_add(127) << 23);
    p * two_n
}

/// Reference of [`softmax_rows`].
#[inline(always)]
pub fn softmax_rows_ref(x: &mut [f32], width: usize, scale: f32) {
    assert!(width > 0 && x.len() % width == 0, "softmax: shapes");
    for row in x.chunks_exact_mut(width) {
        let mut m = [f32::NEG_INFINITY; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for c in &mut chunks {
            for i in 0..LANES {
                m[i] = m[i].max(c[i]);
            }
        }
        let mut max = f32::NEG_INFINITY;
        for v in m.into_iter().chain(chunks.remainder().iter().copied()) {
            max = max.max(v);
        }
        if max == f32::NEG_INFINITY {
            row.iter_mut().for_each(|v| *v = 0.0);
            continue;
        }
        let shift = max * scale;
        for v in row.iter_mut() {
            *v = exp_nonpos(v.mul_add(scale, -shift));
        }
        let inv = 1.0 / lane_sum(row, |v| v);
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

multiversion! {
    /// `row = softmax(row · scale)` for each row of `width` scores
    /// (`scale` > 0); a row of -inf becomes zeros.
    ///
    /// # Panics
    /// If `x` is not whole rows.
    fn softmax_rows(x: &mut [f32], width: usize, scale: f32) => softmax_rows_ref
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32, amp: f32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 2.0 * amp
            })
            .collect()
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    // The multiversioned forms give the reference's bits at every level
    // this CPU has (the dispatch picks the best; the reference is called
    // directly). Widths cover whole lanes and ragged tails.
    #[test]
    fn dispatched_ops_give_the_reference_bits() {
        for d in [1usize, 7, 16, 33, 384, 1536] {
            let w = data(d, 1, 1.5);
            let b = data(d, 2, 0.5);
            let x = data(d * 5, 3, 4.0);

            let (mut fast, mut slow) = (x.clone(), x.clone());
            layer_norm_rows(&mut fast, &w, &b, 1e-12);
            layer_norm_rows_ref(&mut slow, &w, &b, 1e-12);
            assert_eq!(bits(&fast), bits(&slow), "layer_norm d={d}");

            let (mut fast, mut slow) = (x.clone(), x.clone());
            add_bias_rows(&mut fast, &b);
            add_bias_rows_ref(&mut slow, &b);
            assert_eq!(bits(&fast), bits(&slow), "bias d={d}");

            let (mut fast, mut slow) = (x.clone(), x.clone());
            gelu_erf_inplace(&mut fast);
            gelu_erf_inplace_ref(&mut slow);
            assert_eq!(bits(&fast), bits(&slow), "gelu d={d}");

            let (mut fast, mut slow) = (x.clone(), x.clone());
            softmax_rows(&mut fast, d, 0.125);
            softmax_rows_ref(&mut slow, d, 0.125);
            assert_eq!(bits(&fast), bits(&slow), "softmax d={d}");
        }
    }

    #[test]
    fn layer_norm_matches_f64() {
        let d = 384;
        let w = data(d, 4, 1.0);
        let b = data(d, 5, 1.0);
        let mut x = data(d * 3, 6, 30.0);
        let want: Vec<f32> = x
            .chunks_exact(d)
            .flat_map(|r| {
                let m = r.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
                let var = r.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / d as f64;
                let rs = 1.0 / (var + 1e-12).sqrt();
                r.iter()
                    .zip(&w)
                    .zip(&b)
                    .map(move |((&v, &wi), &bi)| {
                        ((v as f64 - m) * rs * wi as f64 + bi as f64) as f32
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        layer_norm_rows(&mut x, &w, &b, 1e-12);
        for (g, e) in x.iter().zip(&want) {
            assert!((g - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g} vs {e}");
        }
    }

    #[test]
    fn gelu_erf_matches_torch() {
        // torch.nn.functional.gelu(torch.tensor([-3., -1., 0., 0.5, 2.]))
        let want = [-0.004049694, -0.15865526, 0.0, 0.34573123, 1.9544997];
        for (x, w) in [-3.0f32, -1.0, 0.0, 0.5, 2.0].iter().zip(want) {
            assert!((gelu_erf(*x) - w).abs() < 1e-6, "gelu({x})");
        }
        assert!((gelu_erf(10.0) - 10.0).abs() < 1e-5);
    }

    #[test]
    fn exp_nonpos_matches_libm() {
        let mut worst = 0f32;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (g, e) = (exp_nonpos(x), x.exp());
            if e > 1e-37 {
                worst = worst.max(((g - e) / e).abs());
            }
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert!(exp_nonpos(-100.0) < 1e-37);
    }

    #[test]
    fn softmax_rows_matches_plain_softmax() {
        for width in [1usize, 5, 16, 40, 257] {
            let x = data(width * 3, 7, 8.0);
            let mut got = x.clone();
            softmax_rows(&mut got, width, 0.125);
            for (g, r) in got.chunks_exact(width).zip(x.chunks_exact(width)) {
                let mut want: Vec<f32> = r.iter().map(|v| v * 0.125).collect();
                crate::ops::softmax(&mut want);
                for (a, b) in g.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
                }
            }
        }
        let mut masked = vec![f32::NEG_INFINITY; 8];
        softmax_rows(&mut masked, 8, 1.0);
        assert!(masked.iter().all(|&v| v == 0.0));
    }
}
