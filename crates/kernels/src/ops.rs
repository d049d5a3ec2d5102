//! f32 row operations used by the model code: norms, softmax, rope and
//! activations. They are written plainly; the compiler vectorises the inner
//! loops, and none of them is a hot spot next to the matmuls.

/// `out = x / rms(x) * w` for one row (llama.cpp's `rms_norm` then `mul`).
///
/// The sum is accumulated in f64, as ggml does, so long rows keep precision.
pub fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    debug_assert!(out.len() == x.len() && w.len() == x.len());
    let scale = rms_scale(x, eps);
    for ((o, &xi), &wi) in out.iter_mut().zip(x).zip(w) {
        *o = xi * scale * wi;
    }
}

/// In-place form of [`rmsnorm`].
pub fn rmsnorm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    debug_assert!(w.len() == x.len());
    let scale = rms_scale(x, eps);
    for (xi, &wi) in x.iter_mut().zip(w) {
        *xi = *xi * scale * wi;
    }
}

fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let sum: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let mean = (sum / x.len().max(1) as f64) as f32;
    1.0 / (mean + eps).sqrt()
}

/// Numerically stable softmax in place.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        // Every entry masked: leave a uniform zero row rather than NaNs.
        x.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    x.iter_mut().for_each(|v| *v *= inv);
}

/// How rotary dimensions are paired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs (2i, 2i+1): llama.cpp's `LLAMA_ROPE_TYPE_NORM` (Llama).
    Normal,
    /// Halves (i, i + d/2): `LLAMA_ROPE_TYPE_NEOX` (Qwen2, Gemma).
    Neox,
}

/// Precomputed rotary frequencies for one head size: `inv_freq[i] = base^(-2i/n_dims) / freq_factor[i] * freq_scale`.
#[derive(Clone, Debug)]
pub struct Rope {
    pub style: RopeStyle,
    pub n_dims: usize,
    inv_freq: Vec<f32>,
}

impl Rope {
    /// `freq_factors` (Llama 3.1's `rope_freqs`) divide the angle of each pair when given.
    pub fn new(
        style: RopeStyle,
        n_dims: usize,
        base: f32,
        freq_scale: f32,
        freq_factors: Option<&[f32]>,
    ) -> Rope {
        // ggml computes theta_scale = base^(-2/n_dims) and multiplies it up in
        // f32; doing the same keeps our angles bit-close to llama.cpp's.
        let theta_scale = base.powf(-2.0 / n_dims as f32);
        let mut inv_freq = Vec::with_capacity(n_dims / 2);
        let mut theta = 1.0f32;
        for i in 0..n_dims / 2 {
            let ff = freq_factors.and_then(|f| f.get(i)).copied().unwrap_or(1.0);
            inv_freq.push(theta * freq_scale / ff);
            theta *= theta_scale;
        }
        Rope {
            style,
            n_dims,
            inv_freq,
        }
    }

    /// Rotates one head vector `x` (head_dim ≥ n_dims) for position `pos`.
    pub fn apply(&self, x: &mut [f32], pos: usize) {
        let half = self.n_dims / 2;
        for (i, &f) in self.inv_freq.iter().enumerate() {
            let theta = pos as f32 * f;
            let (s, c) = theta.sin_cos();
            let (a, b) = match self.style {
                RopeStyle::Normal => (2 * i, 2 * i + 1),
                RopeStyle::Neox => (i, i + half),
            };
            let (x0, x1) = (x[a], x[b]);
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
        }
    }
}

/// SiLU(x) = x·σ(x).
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU with the tanh approximation (Gemma's `gelu_pytorch_tanh`).
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044715 * x * x)).tanh())
}

/// `gate = silu(gate) * up`, element-wise (SwiGLU).
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * u;
    }
}

/// `gate = gelu(gate) * up`, element-wise (GeGLU), computed the way ggml's
/// CPU backend does (`GGML_GELU_FP16`): the input is rounded to f16 and looked
/// up in an f16 table of GELU values; beyond ±10 GELU is 0 or the identity.
/// Matching this keeps Gemma's logits on llama.cpp's.
pub fn geglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = gelu_f16_table(*g) * u;
    }
}

/// GELU as ggml's f16 table gives it.
#[inline]
pub fn gelu_f16_table(x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        let h = half::f16::from_f32(x).to_bits();
        half::f16::from_bits(gelu_table()[usize::from(h)]).to_f32()
    }
}

/// `f16(gelu_tanh(v))` for every f16 bit pattern `v` (128 KiB, built once):
/// a tanh per element was ~15% of Gemma's prefill.
fn gelu_table() -> &'static [u16] {
    static TABLE: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|h| half::f16::from_f32(gelu_tanh(half::f16::from_bits(h).to_f32())).to_bits())
            .collect()
    })
}

/// `acc += x`.
pub fn add_inplace(acc: &mut [f32], x: &[f32]) {
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += b;
    }
}

/// Plain f32 dot product; the loop shape lets LLVM vectorise it.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for j in 0..8 {
            acc[j] += a[c * 8 + j] * b[c * 8 + j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

/// `y += a * x`.
#[inline]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmsnorm_unit_weight_gives_unit_rms() {
        let x = [1.0f32, -2.0, 3.0, -4.0];
        let w = [1.0f32; 4];
        let mut out = [0.0f32; 4];
        rmsnorm(&mut out, &x, &w, 0.0);
        let rms = (out.iter().map(|v| v * v).sum::<f32>() / 4.0).sqrt();
        assert!((rms - 1.0).abs() < 1e-6, "rms {rms}");
    }

    #[test]
    fn softmax_sums_to_one_and_handles_all_masked() {
        let mut x = [1.0f32, 2.0, 3.0, f32::NEG_INFINITY];
        softmax(&mut x);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(x[3], 0.0);
        let mut m = [f32::NEG_INFINITY; 3];
        softmax(&mut m);
        assert!(m.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn rope_position_zero_is_identity_and_preserves_norm() {
        for style in [RopeStyle::Normal, RopeStyle::Neox] {
            let rope = Rope::new(style, 8, 10000.0, 1.0, None);
            let orig: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
            let mut x = orig.clone();
            rope.apply(&mut x, 0);
            assert_eq!(x, orig);
            rope.apply(&mut x, 17);
            let n0: f32 = orig.iter().map(|v| v * v).sum();
            let n1: f32 = x.iter().map(|v| v * v).sum();
            assert!((n0 - n1).abs() < 1e-4);
        }
    }

    #[test]
    fn rope_pairs_follow_style() {
        // With one pair rotated by 90°, the pairing is visible directly.
        let rope = Rope::new(RopeStyle::Neox, 4, 1.0, 1.0, None);
        let mut x = [1.0f32, 0.0, 0.0, 0.0];
        rope.apply(&mut x, 1); // theta = 1 rad for pair (0, 2)
        assert!((x[0] - 1f32.cos()).abs() < 1e-6 && (x[2] - 1f32.sin()).abs() < 1e-6);
        assert_eq!(x[1], 0.0);
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot_f32(&a, &b) - naive).abs() < 1e-5);
    }

    #[test]
    fn gelu_table_equals_direct_f16_rounding() {
        for i in -40_000..40_000 {
            let x = i as f32 * 2.7e-4;
            let xh = half::f16::from_f32(x).to_f32();
            let direct = if x <= -10.0 {
                0.0
            } else if x >= 10.0 {
                x
            } else {
                half::f16::from_f32(gelu_tanh(xh)).to_f32()
            };
            assert_eq!(gelu_f16_table(x).to_bits(), direct.to_bits(), "x = {x}");
        }
    }

    #[test]
    fn gelu_known_values() {
        assert_eq!(gelu_tanh(0.0), 0.0);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-5);
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
    }
}
