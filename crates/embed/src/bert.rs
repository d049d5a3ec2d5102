//! The BERT encoder (post-norm transformer), as Hugging Face's `BertModel`
//! computes it for sentence-transformers, on packed sequences.
//!
//! Packing: the texts of a batch are laid end to end as one `(T, d)` matrix
//! with no padding. The matmuls see all T tokens at once; attention looks
//! only inside each text's own span. That is exactly what a padded batch with
//! an attention mask computes for the real tokens (HF adds `finfo.min` to the
//! masked scores, whose exp is 0), without spending work on padding.

use crate::config::Config;
use crate::EmbedError;
use llmos_kernels::amx::{self, PackedBf16};
use llmos_kernels::matmul::{matmul, MatmulScratch, QMatrix};
use llmos_kernels::par::for_each_chunk_mut;
use llmos_kernels::pool::ThreadPool;
use llmos_kernels::sgemm::{encoder_attention, sgemm, PackedF32};
use llmos_kernels::vecops;
use llmos_kernels::{quant, GgmlType};
use safetensors::{Dtype, SafeTensors};

/// How the linear layers' weights are kept in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WeightFormat {
    /// As in the file (f32): the reference numerics.
    #[default]
    F32,
    /// Rounded to f16 at load (half the memory traffic; activations are
    /// rounded to f16 for the dot, as ggml does).
    F16,
    /// Quantized to q8_0 at load (integer dots, VNNI GEMM where available).
    Q8_0,
    /// Rounded to bf16 at load and multiplied on AMX tiles, activations
    /// rounded to bf16 per GEMM, sums in f32 ([`llmos_kernels::amx`]). On a
    /// CPU without AMX the layers load as [`WeightFormat::F32`].
    Bf16,
}

impl WeightFormat {
    /// The fastest format that keeps embeddings within the parity bar:
    /// [`WeightFormat::Bf16`] where AMX runs, else [`WeightFormat::F32`].
    pub fn best() -> WeightFormat {
        if amx::available() {
            WeightFormat::Bf16
        } else {
            WeightFormat::F32
        }
    }
}

impl WeightFormat {
    fn ggml(self) -> GgmlType {
        match self {
            WeightFormat::F32 | WeightFormat::Bf16 => GgmlType::F32,
            WeightFormat::F16 => GgmlType::F16,
            WeightFormat::Q8_0 => GgmlType::Q8_0,
        }
    }
}

/// A linear layer `y = x Wᵀ + b`: W is `(rows = out, cols = in)` as PyTorch
/// stores it, converted to the chosen format at load.
pub(crate) struct Linear {
    ty: GgmlType,
    w: Vec<u8>,
    rows: usize,
    cols: usize,
    /// (rows)
    b: Vec<f32>,
    /// f32 weights packed for the f32 GEMM (then `w` is empty).
    packed: Option<PackedF32>,
    /// bf16 weights packed for the AMX GEMM (then `w` is empty).
    tiles: Option<PackedBf16>,
}

impl Linear {
    fn view(&self) -> QMatrix<'_> {
        QMatrix {
            ty: self.ty,
            data: &self.w,
            rows: self.rows,
            cols: self.cols,
        }
    }
}

pub(crate) struct LayerNorm {
    w: Vec<f32>,
    b: Vec<f32>,
}

pub(crate) struct Layer {
    /// q, k and v stacked: (3d, d)
    qkv: Linear,
    /// (d, d)
    out: Linear,
    ln_attn: LayerNorm,
    /// (ff, d)
    up: Linear,
    /// (d, ff)
    down: Linear,
    ln_ffn: LayerNorm,
}

/// All weights, owned (read from the file, converted once).
pub(crate) struct Weights {
    /// (vocab, d)
    word: Vec<f32>,
    /// (max_pos, d)
    pos: Vec<f32>,
    /// (type_vocab, d)
    token_type: Vec<f32>,
    ln_emb: LayerNorm,
    layers: Vec<Layer>,
}

/// A tensor's values as f32 (f32, f16 and bf16 files), checked against the
/// expected shape.
fn tensor_f32(
    st: &SafeTensors,
    prefix: &str,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, EmbedError> {
    let full = format!("{prefix}{name}");
    let t = st.tensor(&full).map_err(|_| EmbedError::Tensor {
        name: full.clone(),
        what: "is missing".into(),
    })?;
    if t.shape() != shape {
        return Err(EmbedError::Tensor {
            name: full,
            what: format!("has shape {:?}, expected {shape:?}", t.shape()),
        });
    }
    let d = t.data();
    let v = match t.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(EmbedError::Tensor {
                name: full,
                what: format!("has dtype {other:?}; f32, f16 or bf16 expected"),
            })
        }
    };
    Ok(v)
}

fn layer_norm(st: &SafeTensors, p: &str, name: &str, d: usize) -> Result<LayerNorm, EmbedError> {
    Ok(LayerNorm {
        w: tensor_f32(st, p, &format!("{name}.weight"), &[d])?,
        b: tensor_f32(st, p, &format!("{name}.bias"), &[d])?,
    })
}

/// Builds a linear layer from one or more PyTorch linears stacked by rows.
fn linear(
    st: &SafeTensors,
    p: &str,
    names: &[String],
    rows: usize,
    cols: usize,
    fmt: WeightFormat,
) -> Result<Linear, EmbedError> {
    let ty = fmt.ggml();
    let row_bytes = cols / ty.block_size() * ty.type_size();
    let (mut w, mut b) = (Vec::new(), Vec::new());
    for name in names {
        let wf = tensor_f32(st, p, &format!("{name}.weight"), &[rows, cols])?;
        b.extend(tensor_f32(st, p, &format!("{name}.bias"), &[rows])?);
        let start = w.len();
        w.resize(start + rows * row_bytes, 0u8);
        for (src, dst) in wf
            .chunks_exact(cols)
            .zip(w[start..].chunks_exact_mut(row_bytes))
        {
            quant::quantize_row(ty, src, dst).map_err(|e| EmbedError::Tensor {
                name: format!("{p}{name}.weight"),
                what: format!("cannot be converted to {ty}: {e}"),
            })?;
        }
    }
    let mut l = Linear {
        ty,
        w,
        rows: rows * names.len(),
        cols,
        b,
        packed: None,
        tiles: None,
    };
    // Checks the sizes and that the kernels take this type.
    QMatrix::new(l.ty, &l.w, l.rows, l.cols).map_err(|e| EmbedError::Tensor {
        name: format!("{p}{}", names[0]),
        what: e.to_string(),
    })?;
    if matches!(fmt, WeightFormat::F32 | WeightFormat::Bf16) {
        // f32 rows are plain little-endian floats: pack them for the GEMM
        // and drop the row copy.
        let rows_f32: Vec<f32> =
            l.w.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
        if fmt == WeightFormat::Bf16 && amx::available() {
            l.tiles = Some(PackedBf16::pack(&rows_f32, &l.b, l.rows, l.cols));
        } else {
            l.packed = Some(PackedF32::pack(&rows_f32, l.rows, l.cols));
        }
        l.w = Vec::new();
    }
    Ok(l)
}

impl Weights {
    /// Reads every tensor of a Hugging Face `BertModel` checkpoint (names
    /// with or without the `bert.` prefix of `BertFor*` checkpoints).
    pub(crate) fn load(
        bytes: &[u8],
        cfg: &Config,
        fmt: WeightFormat,
    ) -> Result<Weights, EmbedError> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| EmbedError::Safetensors { msg: e.to_string() })?;
        let p = if st.names().iter().any(|n| n.starts_with("bert.")) {
            "bert."
        } else {
            ""
        };
        let (d, ff) = (cfg.hidden_size, cfg.intermediate_size);
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = format!("encoder.layer.{i}");
            let qkv_names: Vec<String> = ["query", "key", "value"]
                .iter()
                .map(|n| format!("{l}.attention.self.{n}"))
                .collect();
            layers.push(Layer {
                qkv: linear(&st, p, &qkv_names, d, d, fmt)?,
                out: linear(&st, p, &[format!("{l}.attention.output.dense")], d, d, fmt)?,
                ln_attn: layer_norm(&st, p, &format!("{l}.attention.output.LayerNorm"), d)?,
                up: linear(&st, p, &[format!("{l}.intermediate.dense")], ff, d, fmt)?,
                down: linear(&st, p, &[format!("{l}.output.dense")], d, ff, fmt)?,
                ln_ffn: layer_norm(&st, p, &format!("{l}.output.LayerNorm"), d)?,
            });
        }
        Ok(Weights {
            word: tensor_f32(
                &st,
                p,
                "embeddings.word_embeddings.weight",
                &[cfg.vocab_size, d],
            )?,
            pos: tensor_f32(
                &st,
                p,
                "embeddings.position_embeddings.weight",
                &[cfg.max_position_embeddings, d],
            )?,
            token_type: tensor_f32(
                &st,
                p,
                "embeddings.token_type_embeddings.weight",
                &[cfg.type_vocab_size, d],
            )?,
            ln_emb: layer_norm(&st, p, "embeddings.LayerNorm", d)?,
            layers,
        })
    }
}

/// Scratch buffers for one packed batch of up to `cap` tokens; grown on
/// demand, never shrunk.
#[derive(Default)]
pub(crate) struct RunState {
    cap: usize,
    /// (T, d) the residual stream
    x: Vec<f32>,
    /// (T, 3d) q | k | v per token
    qkv: Vec<f32>,
    /// (T, d) attention output before the projection
    ctx: Vec<f32>,
    /// (T, d) projection outputs
    proj: Vec<f32>,
    /// (T, ff)
    hidden: Vec<f32>,
    /// per text: its first token in the packed batch, and its length
    text_spans: Vec<(usize, usize)>,
    mm: MatmulScratch,
}

impl RunState {
    fn reserve(&mut self, cfg: &Config, t: usize) {
        if t <= self.cap {
            return;
        }
        let d = cfg.hidden_size;
        self.x.resize(t * d, 0.0);
        self.qkv.resize(t * 3 * d, 0.0);
        self.ctx.resize(t * d, 0.0);
        self.proj.resize(t * d, 0.0);
        self.hidden.resize(t * cfg.intermediate_size, 0.0);
        self.cap = t;
    }
}

/// One text of a packed batch: its token ids and token type ids.
pub(crate) struct Seq<'a> {
    pub ids: &'a [u32],
    pub type_ids: &'a [u32],
}

/// `x = LayerNorm(x) * w + b` per row, rows split over the pool.
fn layer_norm_rows(pool: &ThreadPool, x: &mut [f32], ln: &LayerNorm, eps: f32) {
    let d = ln.w.len();
    for_each_chunk_mut(pool, x, d * 16, |_, rows| {
        vecops::layer_norm_rows(rows, &ln.w, &ln.b, eps);
    });
}

/// `y (t, rows) = x (t, cols) · Wᵀ + b`.
fn linear_forward(
    pool: &ThreadPool,
    l: &Linear,
    x: &[f32],
    t: usize,
    y: &mut [f32],
    mm: &mut MatmulScratch,
) {
    let y = &mut y[..t * l.rows];
    match (&l.tiles, &l.packed) {
        (Some(p), _) => return amx::gemm(pool, p, &x[..t * l.cols], t, y), // bias included
        (None, Some(p)) => sgemm(pool, p, &x[..t * l.cols], t, y),
        (None, None) => matmul(pool, &l.view(), x, t, y, mm),
    }
    for_each_chunk_mut(pool, y, l.rows * 16, |_, rows| {
        vecops::add_bias_rows(rows, &l.b);
    });
}

/// Runs the encoder over a packed batch and writes each text's pooled
/// vector (not yet normalised) into `out` (n_seqs, d).
pub(crate) fn forward(
    pool: &ThreadPool,
    cfg: &Config,
    w: &Weights,
    s: &mut RunState,
    max_seq: usize,
    seqs: &[Seq],
    cls_pooling: bool,
    out: &mut [f32],
) {
    let d = cfg.hidden_size;
    let (nh, hd) = (cfg.num_attention_heads, cfg.head_dim());
    let t: usize = seqs.iter().map(|q| q.ids.len()).sum();
    if t == 0 {
        return;
    }
    let max_len = seqs.iter().map(|q| q.ids.len()).max().unwrap_or(0);
    debug_assert!(max_len <= max_seq);
    s.reserve(cfg, t);
    let eps = cfg.layer_norm_eps;

    // embed: word + position + token type, then LayerNorm
    let mut at = 0usize;
    for q in seqs {
        for (p, (&id, &ty)) in q.ids.iter().zip(q.type_ids).enumerate() {
            let row = &mut s.x[(at + p) * d..(at + p + 1) * d];
            let wrd = &w.word[id as usize * d..(id as usize + 1) * d];
            let pos = &w.pos[p * d..(p + 1) * d];
            let typ = &w.token_type[ty as usize * d..(ty as usize + 1) * d];
            for i in 0..d {
                row[i] = wrd[i] + pos[i] + typ[i];
            }
        }
        at += q.ids.len();
    }
    layer_norm_rows(pool, &mut s.x[..t * d], &w.ln_emb, eps);

    let scale = 1.0 / (hd as f32).sqrt();
    for layer in &w.layers {
        // qkv: (T, 3d) = x · [Wq; Wk; Wv]ᵀ + b
        linear_forward(pool, &layer.qkv, &s.x, t, &mut s.qkv, &mut s.mm);

        // attention: each token attends to the tokens of its own text
        s.text_spans.clear();
        let mut at = 0usize;
        for q in seqs {
            s.text_spans.push((at, q.ids.len()));
            at += q.ids.len();
        }
        encoder_attention(
            pool,
            &s.qkv,
            d,
            nh,
            &s.text_spans,
            scale,
            &mut s.ctx[..t * d],
        );

        // out projection, residual, LayerNorm
        linear_forward(pool, &layer.out, &s.ctx, t, &mut s.proj, &mut s.mm);
        llmos_kernels::ops::add_inplace(&mut s.x[..t * d], &s.proj[..t * d]);
        layer_norm_rows(pool, &mut s.x[..t * d], &layer.ln_attn, eps);

        // ffn: GELU(x W1ᵀ + b1) W2ᵀ + b2, residual, LayerNorm
        let ff = layer.up.rows;
        linear_forward(pool, &layer.up, &s.x, t, &mut s.hidden, &mut s.mm);
        for_each_chunk_mut(pool, &mut s.hidden[..t * ff], ff * 16, |_, c| {
            vecops::gelu_erf_inplace(c);
        });
        linear_forward(pool, &layer.down, &s.hidden, t, &mut s.proj, &mut s.mm);
        llmos_kernels::ops::add_inplace(&mut s.x[..t * d], &s.proj[..t * d]);
        layer_norm_rows(pool, &mut s.x[..t * d], &layer.ln_ffn, eps);
    }

    // pool: mean over each text's tokens (all of them are real: no padding)
    let mut at = 0usize;
    for (q, o) in seqs.iter().zip(out.chunks_exact_mut(d)) {
        let n = q.ids.len();
        if cls_pooling {
            o.copy_from_slice(&s.x[at * d..(at + 1) * d]);
        } else {
            o.iter_mut().for_each(|v| *v = 0.0);
            for r in s.x[at * d..(at + n) * d].chunks_exact(d) {
                llmos_kernels::ops::add_inplace(o, r);
            }
            let inv = 1.0 / n.max(1) as f32;
            o.iter_mut().for_each(|v| *v *= inv);
        }
        at += n;
    }
}

#[cfg(test)]
mod tests {
    /// The encoder's erf (in the kernels, which have no libm) against libm.
    #[test]
    fn kernel_erf_matches_libm() {
        let mut worst = 0f32;
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max((llmos_kernels::vecops::erf(x) - libm::erff(x)).abs());
        }
        assert!(worst < 1e-6, "worst |erf - erff| = {worst}");
    }
}
