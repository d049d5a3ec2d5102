//! Weights: matrices stay in the mmap (borrowed per call as a `QMatrix`);
//! small vectors (norms, biases) are dequantized to f32 once at load.

use crate::config::{Arch, Config};
use crate::ModelError;
use llmos_gguf::{GgmlType, GgufFile, TensorInfo};
use llmos_kernels::matmul::QMatrix;
use llmos_kernels::quant;

/// A 2-D weight in the file: `rows` output features of `cols` inputs each.
#[derive(Clone, Debug)]
pub struct Mat {
    pub info: TensorInfo,
    pub rows: usize,
    pub cols: usize,
}

impl Mat {
    /// Borrow the bytes from `file` as a matrix for the kernels.
    pub fn q<'a>(&self, file: &'a GgufFile) -> QMatrix<'a> {
        QMatrix {
            ty: self.info.ty,
            data: file.tensor_data(&self.info),
            rows: self.rows,
            cols: self.cols,
        }
    }

    pub fn ty(&self) -> GgmlType {
        self.info.ty
    }
}

/// One transformer block. Optional parts are present only in the
/// architectures that have them.
#[derive(Clone, Debug)]
pub struct Layer {
    pub attn_norm: Vec<f32>,              // (n_embd)
    pub wq: Mat,                          // (q_dim, n_embd)
    pub wk: Mat,                          // (kv_dim, n_embd)
    pub wv: Mat,                          // (v_dim, n_embd)
    pub wo: Mat,                          // (n_embd, n_head * head_dim_v)
    pub bq: Option<Vec<f32>>,             // (q_dim)   qwen2
    pub bk: Option<Vec<f32>>,             // (kv_dim)  qwen2
    pub bv: Option<Vec<f32>>,             // (v_dim)   qwen2
    pub q_norm: Option<Vec<f32>>,         // (head_dim) gemma3, shared by heads
    pub k_norm: Option<Vec<f32>>,         // (head_dim) gemma3
    pub post_attn_norm: Option<Vec<f32>>, // (n_embd) gemma3
    pub ffn_norm: Vec<f32>,               // (n_embd)
    pub w_gate: Mat,                      // (n_ff, n_embd)
    pub w_up: Mat,                        // (n_ff, n_embd)
    pub w_down: Mat,                      // (n_embd, n_ff)
    pub post_ffn_norm: Option<Vec<f32>>,  // (n_embd) gemma3
}

#[derive(Clone, Debug)]
pub struct Weights {
    pub tok_embd: Mat, // (n_vocab, n_embd)
    pub layers: Vec<Layer>,
    pub output_norm: Vec<f32>, // (n_embd)
    /// The output head; `token_embd` when the model ties them.
    pub output: Mat, // (n_vocab, n_embd)
    /// Llama 3.1 rope frequency factors, (rope_dims / 2).
    pub rope_freqs: Option<Vec<f32>>,
}

impl Weights {
    /// Finds and checks every tensor the architecture needs.
    ///
    /// # Errors
    /// A missing tensor, a wrong shape or an unsupported type, by name.
    pub fn load(file: &GgufFile, cfg: &Config) -> Result<Weights, ModelError> {
        let e = cfg.n_embd;
        let tok_embd = mat(file, "token_embd.weight", cfg.n_vocab, e)?;
        let output = match file.tensor("output.weight") {
            Some(_) => mat(file, "output.weight", cfg.n_vocab, e)?,
            None => tok_embd.clone(),
        };
        let has_bias = cfg.arch == Arch::Qwen2;
        let gemma = cfg.arch == Arch::Gemma3;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let n = |s: &str| format!("blk.{i}.{s}");
            let opt_vec =
                |s: &str, len: usize, present: bool| -> Result<Option<Vec<f32>>, ModelError> {
                    if present {
                        vector(file, &n(s), len).map(Some)
                    } else {
                        Ok(None)
                    }
                };
            layers.push(Layer {
                attn_norm: vector(file, &n("attn_norm.weight"), e)?,
                wq: mat(file, &n("attn_q.weight"), cfg.q_dim(), e)?,
                wk: mat(file, &n("attn_k.weight"), cfg.kv_dim(), e)?,
                wv: mat(file, &n("attn_v.weight"), cfg.v_dim(), e)?,
                wo: mat(
                    file,
                    &n("attn_output.weight"),
                    e,
                    cfg.n_head * cfg.head_dim_v,
                )?,
                bq: opt_vec("attn_q.bias", cfg.q_dim(), has_bias)?,
                bk: opt_vec("attn_k.bias", cfg.kv_dim(), has_bias)?,
                bv: opt_vec("attn_v.bias", cfg.v_dim(), has_bias)?,
                q_norm: opt_vec("attn_q_norm.weight", cfg.head_dim, gemma)?,
                k_norm: opt_vec("attn_k_norm.weight", cfg.head_dim, gemma)?,
                post_attn_norm: opt_vec("post_attention_norm.weight", e, gemma)?,
                ffn_norm: vector(file, &n("ffn_norm.weight"), e)?,
                w_gate: mat(file, &n("ffn_gate.weight"), cfg.n_ff, e)?,
                w_up: mat(file, &n("ffn_up.weight"), cfg.n_ff, e)?,
                w_down: mat(file, &n("ffn_down.weight"), e, cfg.n_ff)?,
                post_ffn_norm: opt_vec("post_ffw_norm.weight", e, gemma)?,
            });
        }
        let rope_freqs = match file.tensor("rope_freqs.weight") {
            Some(_) => Some(vector(file, "rope_freqs.weight", cfg.rope_dims / 2)?),
            None => None,
        };
        Ok(Weights {
            tok_embd,
            layers,
            output_norm: vector(file, "output_norm.weight", e)?,
            output,
            rope_freqs,
        })
    }
}

fn find<'a>(file: &'a GgufFile, name: &str) -> Result<&'a TensorInfo, ModelError> {
    file.tensor(name).ok_or_else(|| ModelError::MissingTensor {
        name: name.to_string(),
    })
}

fn check_type(t: &TensorInfo) -> Result<(), ModelError> {
    if quant::is_supported(t.ty) {
        return Ok(());
    }
    Err(ModelError::UnsupportedType {
        name: t.name.clone(),
        ty: t.ty,
        supported: quant::supported_types()
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// A (rows, cols) matrix; GGUF stores dims as [cols, rows].
fn mat(file: &GgufFile, name: &str, rows: usize, cols: usize) -> Result<Mat, ModelError> {
    let t = find(file, name)?;
    let expected = vec![cols as u64, rows as u64];
    if t.dims != expected {
        return Err(ModelError::BadShape {
            name: name.to_string(),
            got: t.dims.clone(),
            expected,
        });
    }
    check_type(t)?;
    Ok(Mat {
        info: t.clone(),
        rows,
        cols,
    })
}

/// A 1-D tensor of `len` elements, dequantized to f32.
fn vector(file: &GgufFile, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
    let t = find(file, name)?;
    if t.dims != [len as u64] {
        return Err(ModelError::BadShape {
            name: name.to_string(),
            got: t.dims.clone(),
            expected: vec![len as u64],
        });
    }
    check_type(t)?;
    let mut out = vec![0.0f32; len];
    quant::dequantize_row(t.ty, file.tensor_data(t), &mut out).map_err(|source| {
        ModelError::Kernel {
            name: name.to_string(),
            source,
        }
    })?;
    Ok(out)
}
