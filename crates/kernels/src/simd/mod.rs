//! Dot products of a weight row with quantized activation rows, chosen at run
//! time: AVX-512 VNNI, AVX2, or the scalar reference in [`crate::quant`].
//!
//! Design: one x86-64 build runs everywhere, so every SIMD kernel is a
//! `#[target_feature]` function and the level is detected once
//! ([`simd_level`]). Each kernel is the twin of [`quant::vec_dot_scalar`]: it
//! computes the same integer sums per block exactly and differs only in the
//! order of the float additions (tests: `tests/simd_dot.rs`); the k-quant
//! kernels even keep the reference's float expression and match it bit for
//! bit. The activation quantizers ([`quantize_row`]) match
//! [`quant::quantize_row`] byte for byte (`tests/simd_quantize.rs`).
//!
//! Each kernel also has a four-token form (`dot4`): one pass over the weight
//! row feeds four activation rows, so prefill decodes every weight block once
//! per four tokens. Lane `k` of `dot4` performs exactly the operations of
//! `dot` on row `k`, so a matmul gives bit-identical results however its
//! tokens are grouped or its rows split across threads.
//!
//! The environment variable `LLMOS_SIMD` (`scalar`, `avx2`, `avx512vnni`)
//! caps the level, for debugging and benchmarks.
//!
//! ```
//! use llmos_kernels::{quant, simd, GgmlType};
//!
//! let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
//! let mut q = vec![0u8; 68]; // two q8_0 blocks
//! quant::quantize_row(GgmlType::Q8_0, &x, &mut q)?;
//! let fast = simd::vec_dot(GgmlType::Q8_0, &q, &q, 64);
//! let slow = quant::vec_dot_scalar(GgmlType::Q8_0, &q, &q, 64);
//! assert!((fast - slow).abs() <= 1e-5 * slow.abs());
//! println!("dot kernels: {}", simd::simd_level());
//! # Ok::<(), quant::QuantError>(())
//! ```

use crate::quant;
use llmos_gguf::GgmlType;
use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
mod x86;

/// An implementation level of the dot kernels, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// [`quant::vec_dot_scalar`].
    Scalar,
    /// AVX2 + FMA + F16C, 256-bit.
    Avx2,
    /// AVX-512 F/BW/VL + VNNI: `vpdpbusd` for the integer sums.
    Avx512Vnni,
}

impl SimdLevel {
    /// Every level, lowest first.
    pub const ALL: [SimdLevel; 3] = [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512Vnni];

    /// Short name, as accepted by `LLMOS_SIMD`.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512Vnni => "avx512vnni",
        }
    }

    /// Whether this CPU can run the level's kernels.
    pub fn is_available(self) -> bool {
        match self {
            SimdLevel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2 => x86::has_avx2(),
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512Vnni => x86::has_avx512vnni(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The levels this CPU can run, lowest first.
    pub fn available() -> Vec<SimdLevel> {
        Self::ALL.into_iter().filter(|l| l.is_available()).collect()
    }
}

/// The level used by [`vec_dot`] and `matmul`: the best available, capped by
/// `LLMOS_SIMD` if set. Detected once.
pub fn best_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var("LLMOS_SIMD")
            .ok()
            .and_then(|v| SimdLevel::ALL.into_iter().find(|l| l.name() == v.trim()))
            .unwrap_or(SimdLevel::Avx512Vnni);
        SimdLevel::ALL
            .into_iter()
            .filter(|l| *l <= cap && l.is_available())
            .max()
            .unwrap_or(SimdLevel::Scalar)
    })
}

/// Name of [`best_level`], e.g. "avx512vnni", "avx2" or "scalar".
pub fn simd_level() -> &'static str {
    best_level().name()
}

/// `dot(w, a, n)`: one weight row with one activation row.
///
/// Unsafe only because the kernel may use CPU features: a `Kernel` holds one
/// only after the features were detected. Kernels check slice lengths.
pub(crate) type DotFn = unsafe fn(w: &[u8], a: &[u8], n: usize) -> f32;
/// `dot4(w, a, stride, n)`: one weight row with the four activation rows
/// `a[k * stride..][..row]`, k in 0..4.
pub(crate) type Dot4Fn = unsafe fn(w: &[u8], a: &[u8], stride: usize, n: usize) -> [f32; 4];

/// Runs one tiled-GEMM matmul task. Unsafe for the same reason as
/// [`DotFn`], and because the task's output pointer must be valid.
#[cfg(target_arch = "x86_64")]
pub(crate) type GemmFn = unsafe fn(task: &x86::Task);

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{legacy_aux, Aux, Task, TILE_ROWS};

/// The tiled GEMM for `ty` at `level`, if this CPU has the level and the
/// level has one (AVX-512 VNNI: the legacy formats, q4_K, q5_K, q6_K).
#[cfg(target_arch = "x86_64")]
pub(crate) fn gemm_at(level: SimdLevel, ty: GgmlType) -> Option<GemmFn> {
    if !level.is_available() {
        return None;
    }
    x86::gemm(level, ty)
}

/// `quantize(src, dst)`: an activation row (whole blocks) into exactly its
/// bytes. Unsafe for the same reason as [`DotFn`].
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) type QuantizeFn = unsafe fn(src: &[f32], dst: &mut [u8]);

/// The dot kernels for one weight type at one level.
#[derive(Clone, Copy)]
pub(crate) struct Kernel {
    ty: GgmlType,
    dot: Option<DotFn>,
    dot4: Option<Dot4Fn>,
}

impl Kernel {
    /// The kernels for `ty` at `level`, or `None` if the CPU lacks `level`.
    /// Types without a SIMD kernel at that level fall back to the scalar one.
    pub(crate) fn at(level: SimdLevel, ty: GgmlType) -> Option<Kernel> {
        if !level.is_available() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        let (dot, dot4) = x86::kernels(level, ty);
        #[cfg(not(target_arch = "x86_64"))]
        let (dot, dot4) = (None, None);
        Some(Kernel { ty, dot, dot4 })
    }

    /// The kernels for `ty` at [`best_level`].
    pub(crate) fn best(ty: GgmlType) -> Kernel {
        Kernel::at(best_level(), ty).unwrap_or(Kernel {
            ty,
            dot: None,
            dot4: None,
        })
    }

    /// Dot of weight row `w` with activation row `a` (exact row sizes).
    #[inline]
    pub(crate) fn dot(&self, w: &[u8], a: &[u8], n: usize) -> f32 {
        match self.dot {
            // SAFETY: `Kernel::at` installs a kernel only after its level's
            // CPU features were detected; the kernel checks the lengths.
            Some(f) => unsafe { f(w, a, n) },
            None => quant::vec_dot_scalar(self.ty, w, a, n),
        }
    }

    /// Dots of `w` with the rows `a[k * stride..][..a_row]`, k in 0..4; lane
    /// k equals `self.dot(w, row k, n)` bit for bit.
    #[inline]
    pub(crate) fn dot4(&self, w: &[u8], a: &[u8], stride: usize, n: usize) -> [f32; 4] {
        match self.dot4 {
            // SAFETY: as in `dot`.
            Some(f) => unsafe { f(w, a, stride, n) },
            None => {
                let at = quant::vec_dot_type(self.ty);
                let a_row = n / at.block_size() * at.type_size();
                [0, 1, 2, 3].map(|k| self.dot(w, &a[k * stride..k * stride + a_row], n))
            }
        }
    }
}

/// Byte sizes of an `n`-element weight row of `ty` and of its activation
/// row, if `ty` is supported and `n` splits into whole blocks of both.
pub(crate) fn row_sizes(ty: GgmlType, n: usize) -> Option<(usize, usize)> {
    let at = quant::vec_dot_type(ty);
    if !quant::is_supported(ty)
        || !n.is_multiple_of(ty.block_size())
        || !n.is_multiple_of(at.block_size())
    {
        return None;
    }
    let w = (n / ty.block_size()).checked_mul(ty.type_size())?;
    let a = (n / at.block_size()).checked_mul(at.type_size())?;
    Some((w, a))
}

/// Dot product of weight row `w` (`n` elements of type `ty`) with activation
/// row `a` quantized as [`quant::vec_dot_type`]`(ty)`, using the best kernel
/// for this CPU. Equals [`quant::vec_dot_scalar`] up to float reassociation.
///
/// Returns NaN if `ty` is unsupported, `n` is not a whole number of blocks,
/// or `w` / `a` are not exactly the sizes of such rows.
pub fn vec_dot(ty: GgmlType, w: &[u8], a: &[u8], n: usize) -> f32 {
    vec_dot_at(best_level(), ty, w, a, n).unwrap_or(f32::NAN)
}

/// [`vec_dot`] at a given level (for tests and benchmarks); `None` if this
/// CPU lacks the level.
pub fn vec_dot_at(level: SimdLevel, ty: GgmlType, w: &[u8], a: &[u8], n: usize) -> Option<f32> {
    let k = Kernel::at(level, ty)?;
    match row_sizes(ty, n) {
        Some((wb, ab)) if w.len() == wb && a.len() == ab => Some(k.dot(w, a, n)),
        _ => Some(f32::NAN),
    }
}

/// The four-token dot at a given level: lane `k` is the dot of `w` with
/// `a[k * stride..][..row]`. `None` if the CPU lacks the level or the sizes
/// are wrong (`stride` shorter than a row, `a` shorter than four strides).
pub fn vec_dot4_at(
    level: SimdLevel,
    ty: GgmlType,
    w: &[u8],
    a: &[u8],
    stride: usize,
    n: usize,
) -> Option<[f32; 4]> {
    let k = Kernel::at(level, ty)?;
    let (wb, ab) = row_sizes(ty, n)?;
    if w.len() != wb || stride < ab || a.len() < 3 * stride + ab {
        return None;
    }
    Some(k.dot4(w, a, stride, n))
}

/// Quantizes an activation row like [`quant::quantize_row`], bit for bit,
/// with the best kernel for this CPU (SIMD for q8_0, q8_1 and q8_K; other
/// types go to the reference).
///
/// # Errors
/// Exactly those of [`quant::quantize_row`].
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), quant::QuantError> {
    quantize_row_at(best_level(), ty, src, dst).unwrap_or_else(|| quant::quantize_row(ty, src, dst))
}

/// [`quantize_row`] at a given level; `None` if this CPU lacks the level.
///
/// # Errors
/// Exactly those of [`quant::quantize_row`].
pub fn quantize_row_at(
    level: SimdLevel,
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
) -> Option<Result<(), quant::QuantError>> {
    if !level.is_available() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(f) = x86::quantizer(level, ty) {
        let (block, size) = (ty.block_size(), ty.type_size());
        if src.len().is_multiple_of(block) && dst.len() == src.len() / block * size {
            // SAFETY: `x86::quantizer` returns a kernel only for an available
            // level; the sizes were checked just above.
            unsafe { f(src, dst) };
            return Some(Ok(()));
        }
    }
    // Other types, other levels and wrong sizes: the reference (and its errors).
    Some(quant::quantize_row(ty, src, dst))
}
