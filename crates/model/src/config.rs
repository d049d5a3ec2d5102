//! Hyperparameters, read only from GGUF metadata.

use crate::ModelError;
use llmos_gguf::GgufFile;
use llmos_kernels::ops::RopeStyle;

/// The architectures llmos runs, by their `general.architecture` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Gemma3,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::Llama, Arch::Qwen2, Arch::Gemma3];

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Gemma3 => "gemma3",
        }
    }

    /// # Errors
    /// [`ModelError::UnknownArchitecture`] naming the supported ones.
    pub fn from_name(name: &str) -> Result<Arch, ModelError> {
        Arch::ALL
            .iter()
            .copied()
            .find(|a| a.name() == name)
            .ok_or_else(|| ModelError::UnknownArchitecture {
                arch: name.to_string(),
                supported: Arch::ALL.map(Arch::name).join(", "),
            })
    }
}

/// Feed-forward gate activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// SwiGLU: silu(gate) * up (Llama, Qwen2).
    Silu,
    /// GeGLU with tanh GELU (Gemma).
    GeluTanh,
}

/// Model hyperparameters. Every field comes from the GGUF metadata (or a
/// documented per-architecture default that llama.cpp also applies).
#[derive(Clone, Debug)]
pub struct Config {
    pub arch: Arch,
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Per-head size of queries and keys.
    pub head_dim: usize,
    /// Per-head size of values.
    pub head_dim_v: usize,
    pub n_ff: usize,
    pub n_ctx_train: usize,
    pub norm_eps: f32,
    pub rope_style: RopeStyle,
    pub rope_dims: usize,
    pub rope_base: f32,
    pub rope_freq_scale: f32,
    /// Rope base of the sliding-window layers (Gemma 3 uses 10 000 there).
    pub rope_base_swa: f32,
    /// Multiplies q·k before softmax.
    pub attn_scale: f32,
    /// Multiplies the token embeddings (Gemma: √n_embd).
    pub embd_scale: Option<f32>,
    pub activation: Activation,
    /// Sliding-window size for the layers where `is_swa(layer)`.
    pub sliding_window: Option<usize>,
    /// Every `swa_pattern`-th layer (1-based) is global; the others slide.
    pub swa_pattern: usize,
}

impl Config {
    /// q rows per layer: n_head × head_dim.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
    /// k (and v) rows per token per layer.
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
    pub fn v_dim(&self) -> usize {
        self.n_head_kv * self.head_dim_v
    }

    /// Whether `layer` uses sliding-window attention (llama.cpp's
    /// `set_swa_pattern`: layer il slides unless il % pattern == pattern - 1).
    pub fn is_swa(&self, layer: usize) -> bool {
        self.sliding_window.is_some()
            && self.swa_pattern > 0
            && layer % self.swa_pattern < self.swa_pattern - 1
    }

    /// Reads the hyperparameters of `file`.
    ///
    /// # Errors
    /// Unknown architecture, missing or nonsensical keys.
    pub fn from_gguf(file: &GgufFile) -> Result<Config, ModelError> {
        let arch_name = file.architecture().ok_or(ModelError::NoArchitecture)?;
        let arch = Arch::from_name(arch_name)?;
        let m = Meta {
            file,
            arch: arch_name,
        };

        let n_embd = m.req_usize("embedding_length")?;
        let n_layer = m.req_usize("block_count")?;
        let n_head = m.req_usize("attention.head_count")?;
        let n_head_kv = m.opt_usize("attention.head_count_kv")?.unwrap_or(n_head);
        let n_ff = m.req_usize("feed_forward_length")?;
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(m.bad(
                "attention.head_count_kv",
                n_head_kv,
                &format!("must be > 0 and divide head_count {n_head}"),
            ));
        }
        let head_dim = match m.opt_usize("attention.key_length")? {
            Some(d) => d,
            None if n_embd % n_head == 0 => n_embd / n_head,
            None => {
                return Err(m.bad(
                    "attention.head_count",
                    n_head,
                    "does not divide embedding_length",
                ))
            }
        };
        let head_dim_v = m.opt_usize("attention.value_length")?.unwrap_or(head_dim);
        for (k, d) in [
            ("attention.key_length", head_dim),
            ("attention.value_length", head_dim_v),
        ] {
            if d == 0 || d > crate::MAX_HEAD_DIM {
                return Err(m.bad(
                    k,
                    d,
                    &format!("head size must be 1..={}", crate::MAX_HEAD_DIM),
                ));
            }
        }
        let rope_dims = m.opt_usize("rope.dimension_count")?.unwrap_or(head_dim);
        if rope_dims > head_dim || rope_dims % 2 != 0 {
            return Err(m.bad(
                "rope.dimension_count",
                rope_dims,
                &format!("must be even and ≤ the head size {head_dim}"),
            ));
        }
        let norm_eps = m
            .opt_f32("attention.layer_norm_rms_epsilon")?
            .unwrap_or(1e-5);
        let rope_base = m.opt_f32("rope.freq_base")?.unwrap_or(10_000.0);
        let rope_freq_scale = match m.opt_f32("rope.scaling.factor")? {
            Some(f) if f > 0.0 && m.file.get_str(&m.key("rope.scaling.type")) != Some("none") => {
                1.0 / f
            }
            _ => 1.0,
        };
        let n_ctx_train = m.opt_usize("context_length")?.unwrap_or(2048);
        let n_vocab = match m.opt_usize("vocab_size")? {
            Some(v) => v,
            None => file
                .tensor("token_embd.weight")
                .and_then(|t| t.dims.get(1).copied())
                .map(|v| v as usize)
                .ok_or_else(|| ModelError::MissingTensor {
                    name: "token_embd.weight".into(),
                })?,
        };

        let mut cfg = Config {
            arch,
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            head_dim_v,
            n_ff,
            n_ctx_train,
            norm_eps,
            rope_style: RopeStyle::Normal,
            rope_dims,
            rope_base,
            rope_freq_scale,
            rope_base_swa: rope_base,
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            embd_scale: None,
            activation: Activation::Silu,
            sliding_window: None,
            swa_pattern: 0,
        };
        match arch {
            Arch::Llama => {}
            Arch::Qwen2 => cfg.rope_style = RopeStyle::Neox,
            Arch::Gemma3 => {
                cfg.rope_style = RopeStyle::Neox;
                cfg.activation = Activation::GeluTanh;
                cfg.embd_scale = Some((n_embd as f32).sqrt());
                // llama.cpp's gemma3 defaults: local layers use base 10 000 and
                // every sixth layer is global.
                cfg.rope_base_swa = 10_000.0;
                cfg.sliding_window = m.opt_usize("attention.sliding_window")?;
                cfg.swa_pattern = m
                    .opt_usize("attention.sliding_window_pattern")?
                    .unwrap_or(6);
            }
        }
        Ok(cfg)
    }
}

/// Reads `<arch>.<key>` values with errors that name the key.
struct Meta<'a> {
    file: &'a GgufFile,
    arch: &'a str,
}

impl Meta<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}.{}", self.arch, k)
    }

    fn bad(&self, k: &str, v: impl std::fmt::Display, why: &str) -> ModelError {
        ModelError::BadKey {
            key: self.key(k),
            value: v.to_string(),
            why: why.to_string(),
        }
    }

    fn opt_usize(&self, k: &str) -> Result<Option<usize>, ModelError> {
        let key = self.key(k);
        match self.file.get(&key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= (1 << 32) => Ok(Some(n as usize)),
                _ => Err(self.bad(
                    k,
                    v,
                    "expected one non-negative integer (per-layer arrays are not supported)",
                )),
            },
        }
    }

    fn req_usize(&self, k: &str) -> Result<usize, ModelError> {
        match self.opt_usize(k)? {
            Some(0) => Err(self.bad(k, 0, "must be > 0")),
            Some(n) => Ok(n),
            None => Err(ModelError::MissingKey {
                key: self.key(k),
                arch: self.arch.to_string(),
            }),
        }
    }

    fn opt_f32(&self, k: &str) -> Result<Option<f32>, ModelError> {
        let key = self.key(k);
        match self.file.get(&key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x as f32)),
                _ => Err(self.bad(k, v, "expected a finite number")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmos_gguf::{GgufWriter, Value};

    #[test]
    fn unknown_architecture_lists_the_supported_ones() {
        let mut w = GgufWriter::new();
        w.add_metadata("general.architecture", Value::String("mamba".into()))
            .unwrap();
        let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
        let err = Config::from_gguf(&f).unwrap_err().to_string();
        assert!(err.contains("\"mamba\""), "{err}");
        assert!(err.contains("llama, qwen2, gemma3"), "{err}");
    }

    #[test]
    fn missing_hyperparameter_is_named() {
        let mut w = GgufWriter::new();
        w.add_metadata("general.architecture", Value::String("llama".into()))
            .unwrap();
        w.add_metadata("llama.embedding_length", Value::U32(64))
            .unwrap();
        let f = GgufFile::from_bytes(w.to_bytes()).unwrap();
        let err = Config::from_gguf(&f).unwrap_err().to_string();
        assert!(err.contains("llama.block_count"), "{err}");
    }
}
