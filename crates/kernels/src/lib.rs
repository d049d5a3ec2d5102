//! llmos-kernels: block formats, dequantization, dot products, matmul and the
//! thread pool. This is the only crate allowed `unsafe` (SIMD intrinsics and
//! the pool's borrowed closures); every `unsafe` block says why it is sound.
//!
//! Layout:
//! - `quant`: GGML block formats; bit-exact dequantization, activation
//!   quantization (q8_0 / q8_1 / q8_K) and the *scalar reference* dot product
//!   for every supported weight type.
//! - `simd`: AVX2 / AVX-512 (VNNI) / NEON twins of the scalar dots, chosen at
//!   run time; each is tested against its scalar twin.
//! - `pool`: a persistent thread pool with a cheap barrier.
//! - `matmul`: y = x·Wᵀ for a batch of activation rows (prefill is a GEMM).
//! - `attn`: attention over an f16 KV cache (scores, exp, weighted values).
//! - `ops`: f32 element-wise and row ops (rmsnorm, softmax, rope, activations).
#![allow(unsafe_code)]

pub mod amx;
pub mod attn;
pub mod matmul;
pub mod ops;
pub mod par;
pub mod pool;
pub mod quant;
pub mod sgemm;
pub mod simd;
pub mod vecops;

pub use llmos_gguf::GgmlType;
