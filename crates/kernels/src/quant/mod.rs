//! GGML block formats: bit-exact dequantization, activation quantization and
//! the scalar reference dot product for every supported weight type.
//!
//! Design: a weight row stays in its GGUF block format; a matmul quantizes
//! the activation row once into the weight type's [`vec_dot_type`] (q8_0,
//! q8_1, q8_K or a float type) and then calls a dot per weight row, the way
//! ggml does. [`vec_dot_scalar`] is the plain reference for that dot: every
//! SIMD kernel in `crate::simd` is tested against it. Byte layouts of all
//! blocks are in [`blocks`].
//!
//! Dequantization evaluates ggml's `dequantize_row_*` float expressions in
//! the same order, so its output is bit-identical to ggml's (and gguf-py's);
//! the tests check this against fixtures made with gguf-py.
//!
//! ```
//! use llmos_kernels::{quant, GgmlType};
//!
//! let x: Vec<f32> = (0..32).map(|i| i as f32 / 8.0 - 2.0).collect();
//! let mut q = vec![0u8; 34]; // one q8_0 block
//! quant::quantize_row(GgmlType::Q8_0, &x, &mut q)?;
//! let mut y = vec![0f32; 32];
//! quant::dequantize_row(GgmlType::Q8_0, &q, &mut y)?;
//! assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() <= 2.0 / 127.0 / 2.0 + 1e-3));
//! // x·x via the q8_0 dot: the weight row and the activation are the same row.
//! let dot = quant::vec_dot_scalar(GgmlType::Q8_0, &q, &q, 32);
//! let exact: f32 = x.iter().map(|v| v * v).sum();
//! assert!((dot - exact).abs() < 0.05 * exact);
//! # Ok::<(), quant::QuantError>(())
//! ```

pub mod blocks;
mod float;
mod kquants;
mod legacy;

pub use float::f32_to_bf16_bits;

use llmos_gguf::GgmlType;

/// Errors from converting rows between f32 and a block format.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum QuantError {
    /// The operation has no implementation for this type.
    #[error("{op}: type {ty} is not supported")]
    Unsupported { op: &'static str, ty: GgmlType },
    /// The row length does not split into whole blocks.
    #[error("{ty} row of {n} elements: not a multiple of the block size {block}")]
    NotBlockMultiple {
        ty: GgmlType,
        n: usize,
        block: usize,
    },
    /// The byte buffer does not hold exactly the row.
    #[error("{ty} row of {n} elements takes {expected} bytes, got {got}")]
    ByteLen {
        ty: GgmlType,
        n: usize,
        expected: usize,
        got: usize,
    },
}

/// The weight types this module dequantizes and dots, in GGUF id order.
const SUPPORTED: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::BF16,
];

/// Whether `ty` is a supported weight type (dequantize and dot).
pub fn is_supported(ty: GgmlType) -> bool {
    SUPPORTED.contains(&ty)
}

/// The supported weight types, in GGUF id order.
pub fn supported_types() -> &'static [GgmlType] {
    &SUPPORTED
}

/// The format the activation row must be quantized to before
/// [`vec_dot_scalar`] with a weight row of type `ty` (ggml's
/// `vec_dot_type`). Unsupported types map to `F32`; [`vec_dot_scalar`]
/// rejects them anyway.
pub fn vec_dot_type(ty: GgmlType) -> GgmlType {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 => Q8_0,
        Q4_1 | Q5_1 => Q8_1,
        Q2_K | Q3_K | Q4_K | Q5_K | Q6_K => Q8_K,
        F16 => F16,
        BF16 => BF16,
        _ => F32,
    }
}

/// Bytes of a row of `n` elements of `ty`, or the error that names why the
/// length is wrong.
fn row_bytes(ty: GgmlType, n: usize) -> Result<usize, QuantError> {
    let block = ty.block_size();
    // `is_multiple_of` needs Rust 1.87; the workspace MSRV is 1.85.
    #[allow(clippy::manual_is_multiple_of)]
    if n % block != 0 {
        return Err(QuantError::NotBlockMultiple { ty, n, block });
    }
    Ok(n / block * ty.type_size())
}

fn check_len(ty: GgmlType, n: usize, got: usize) -> Result<(), QuantError> {
    let expected = row_bytes(ty, n)?;
    if got != expected {
        return Err(QuantError::ByteLen {
            ty,
            n,
            expected,
            got,
        });
    }
    Ok(())
}

/// Decode a row of `dst.len()` elements of type `ty` from `src`.
///
/// Accepts every supported weight type and the activation formats q8_1 and
/// q8_K; output is bit-identical to ggml's `dequantize_row_*`.
///
/// # Errors
/// [`QuantError::Unsupported`] for other types, [`QuantError::NotBlockMultiple`]
/// if `dst.len()` is not a whole number of blocks, and
/// [`QuantError::ByteLen`] unless `src.len()` is exactly the row's size.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    use GgmlType::*;
    let op = "dequantize_row";
    if !(is_supported(ty) || matches!(ty, Q8_1 | Q8_K)) {
        return Err(QuantError::Unsupported { op, ty });
    }
    check_len(ty, dst.len(), src.len())?;
    match ty {
        F32 => float::dequantize_f32(src, dst),
        F16 => float::dequantize_f16(src, dst),
        BF16 => float::dequantize_bf16(src, dst),
        Q4_0 => legacy::dequantize_q4_0(src, dst),
        Q4_1 => legacy::dequantize_q4_1(src, dst),
        Q5_0 => legacy::dequantize_q5_0(src, dst),
        Q5_1 => legacy::dequantize_q5_1(src, dst),
        Q8_0 => legacy::dequantize_q8_0(src, dst),
        Q8_1 => legacy::dequantize_q8_1(src, dst),
        Q2_K => kquants::dequantize_q2_k(src, dst),
        Q3_K => kquants::dequantize_q3_k(src, dst),
        Q4_K => kquants::dequantize_q4_k(src, dst),
        Q5_K => kquants::dequantize_q5_k(src, dst),
        Q6_K => kquants::dequantize_q6_k(src, dst),
        Q8_K => kquants::dequantize_q8_k(src, dst),
        _ => return Err(QuantError::Unsupported { op, ty }),
    }
    Ok(())
}

/// Encode the row `src` as type `ty` into `dst`, following ggml's reference
/// quantizers (`quantize_row_*_ref`, round-to-nearest-even for f16/bf16).
///
/// Supported: the activation formats f32, f16, bf16, q8_0, q8_1, q8_K, and the
/// legacy weight formats q4_0, q4_1, q5_0, q5_1 (for tests and tools).
///
/// # Errors
/// [`QuantError::Unsupported`] for other types, [`QuantError::NotBlockMultiple`]
/// if `src.len()` is not a whole number of blocks, and
/// [`QuantError::ByteLen`] unless `dst.len()` is exactly the row's size.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    use GgmlType::*;
    let op = "quantize_row";
    if !matches!(
        ty,
        F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | Q8_K
    ) {
        return Err(QuantError::Unsupported { op, ty });
    }
    check_len(ty, src.len(), dst.len())?;
    match ty {
        F32 => float::quantize_f32(src, dst),
        F16 => float::quantize_f16(src, dst),
        BF16 => float::quantize_bf16(src, dst),
        Q4_0 => legacy::quantize_q4_0(src, dst),
        Q4_1 => legacy::quantize_q4_1(src, dst),
        Q5_0 => legacy::quantize_q5_0(src, dst),
        Q5_1 => legacy::quantize_q5_1(src, dst),
        Q8_0 => legacy::quantize_q8_0(src, dst),
        Q8_1 => legacy::quantize_q8_1(src, dst),
        Q8_K => kquants::quantize_q8_k(src, dst),
        _ => return Err(QuantError::Unsupported { op, ty }),
    }
    Ok(())
}

/// Dot product of one weight row `w` (`n` elements of type `ty`) with one
/// activation row `a` already quantized as [`vec_dot_type`]`(ty)`.
///
/// The plain scalar reference: integer sums per block, one float multiply
/// per block (per sub-block scale for k-quants), as ggml's generic
/// `ggml_vec_dot_*`. Float rows multiply in f32 and accumulate in f64.
///
/// Callers validate: `ty` must be supported, `n` a multiple of its block
/// size, and `w` / `a` exactly the sizes of such rows (checked by
/// `debug_assert`). In release builds an unsupported type returns NaN and
/// short buffers are read only as far as whole blocks go; nothing panics.
pub fn vec_dot_scalar(ty: GgmlType, w: &[u8], a: &[u8], n: usize) -> f32 {
    use GgmlType::*;
    debug_assert!(is_supported(ty), "vec_dot_scalar: type {ty} not supported");
    let w_len = n / ty.block_size() * ty.type_size();
    let at = vec_dot_type(ty);
    let a_len = n / at.block_size() * at.type_size();
    debug_assert_eq!(n % ty.block_size(), 0, "{ty} dot of {n} elements");
    debug_assert_eq!(w.len(), w_len, "{ty} weight row of {n} elements");
    debug_assert_eq!(a.len(), a_len, "{at} activation row of {n} elements");
    let w = &w[..w_len.min(w.len())];
    let a = &a[..a_len.min(a.len())];
    match ty {
        F32 => float::dot_f32(w, a),
        F16 => float::dot_f16(w, a),
        BF16 => float::dot_bf16(w, a),
        Q4_0 => legacy::dot_q4_0_q8_0(w, a),
        Q4_1 => legacy::dot_q4_1_q8_1(w, a),
        Q5_0 => legacy::dot_q5_0_q8_0(w, a),
        Q5_1 => legacy::dot_q5_1_q8_1(w, a),
        Q8_0 => legacy::dot_q8_0_q8_0(w, a),
        Q2_K => kquants::dot_q2_k_q8_k(w, a),
        Q3_K => kquants::dot_q3_k_q8_k(w, a),
        Q4_K => kquants::dot_q4_k_q8_k(w, a),
        Q5_K => kquants::dot_q5_k_q8_k(w, a),
        Q6_K => kquants::dot_q6_k_q8_k(w, a),
        _ => f32::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_type_and_sizes() {
        let mut y = vec![0f32; 100];
        let e = dequantize_row(GgmlType::Q8_0, &[], &mut y).unwrap_err();
        assert_eq!(
            e.to_string(),
            "q8_0 row of 100 elements: not a multiple of the block size 32"
        );
        let mut y = vec![0f32; 64];
        let e = dequantize_row(GgmlType::Q8_0, &[0; 34], &mut y).unwrap_err();
        assert_eq!(
            e.to_string(),
            "q8_0 row of 64 elements takes 68 bytes, got 34"
        );
        let e = quantize_row(GgmlType::IQ2_XXS, &[0.0; 256], &mut [0; 66]).unwrap_err();
        assert_eq!(e.to_string(), "quantize_row: type iq2_xxs is not supported");
    }

    #[test]
    fn every_supported_type_dequantizes_and_has_an_activation_quantizer() {
        for &ty in supported_types() {
            let n = ty.block_size().max(32);
            let src = vec![0u8; row_bytes(ty, n).unwrap()];
            let mut y = vec![1f32; n];
            dequantize_row(ty, &src, &mut y).unwrap();
            assert!(y.iter().all(|v| *v == 0.0), "{ty}");
            let at = vec_dot_type(ty);
            let mut q = vec![0u8; row_bytes(at, n).unwrap()];
            quantize_row(at, &y, &mut q).unwrap();
            assert_eq!(vec_dot_scalar(ty, &src, &q, n), 0.0, "{ty}");
        }
    }

    #[test]
    fn unsupported_dot_is_nan_not_a_panic() {
        if cfg!(debug_assertions) {
            return; // the debug_assert fires by design
        }
        assert!(vec_dot_scalar(GgmlType::IQ2_XXS, &[0; 66], &[0; 292], 256).is_nan());
    }
}
