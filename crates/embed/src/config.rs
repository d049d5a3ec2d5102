//! The model directory's JSON files: `config.json` (the BERT shape) and
//! sentence-transformers' `sentence_bert_config.json`, `modules.json` and
//! `1_Pooling/config.json` (what is done after the encoder).

use crate::EmbedError;
use serde::Deserialize;
use std::path::Path;

/// BERT hyperparameters from `config.json` (Hugging Face names).
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_pos")]
    pub position_embedding_type: String,
    #[serde(default)]
    pub model_type: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f32 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_pos() -> String {
    "absolute".into()
}

impl Config {
    /// Per-head width.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub(crate) fn check(&self) -> Result<(), EmbedError> {
        let bad = |what: String| Err(EmbedError::Config { what });
        if !self.model_type.is_empty() && self.model_type != "bert" {
            return bad(format!("model_type {:?} is not bert", self.model_type));
        }
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_act != "gelu" {
            return bad(format!(
                "hidden_act {:?}: only \"gelu\" (erf) is implemented",
                self.hidden_act
            ));
        }
        if self.position_embedding_type != "absolute" {
            return bad(format!(
                "position_embedding_type {:?}: only \"absolute\" is implemented",
                self.position_embedding_type
            ));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct SbertConfig {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
}

/// Pooling over the token vectors of one text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the tokens the attention mask keeps.
    Mean,
    /// The `[CLS]` token's vector.
    Cls,
}

/// What sentence-transformers does around the encoder.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// Word pieces per text, `[CLS]` and `[SEP]` included; longer inputs are
    /// cut (right side), as `tokenizer(..., truncation=True, max_length=...)`.
    pub max_seq_length: usize,
    pub pooling: Pooling,
    /// A `Normalize` module follows pooling (unit-length embeddings).
    pub normalize: bool,
    pub lower_case: bool,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, EmbedError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| EmbedError::Json {
                path: path.to_path_buf(),
                msg: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EmbedError::Io {
            op: "reading",
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Reads `config.json` (required).
pub(crate) fn load_config(dir: &Path) -> Result<Config, EmbedError> {
    let path = dir.join("config.json");
    let cfg: Config = read_json(&path)?.ok_or_else(|| EmbedError::Missing { path })?;
    cfg.check()?;
    Ok(cfg)
}

/// Reads the sentence-transformers files; a plain BERT directory (none of
/// them) gets mean pooling, normalisation and the position limit.
pub(crate) fn load_pipeline(dir: &Path, cfg: &Config) -> Result<Pipeline, EmbedError> {
    let sbert: Option<SbertConfig> = read_json(&dir.join("sentence_bert_config.json"))?;
    let modules: Option<Vec<Module>> = read_json(&dir.join("modules.json"))?;
    let pooling: Option<PoolingConfig> = read_json(&dir.join("1_Pooling/config.json"))?;
    let max_seq_length = sbert
        .as_ref()
        .and_then(|s| s.max_seq_length)
        .unwrap_or(cfg.max_position_embeddings)
        .min(cfg.max_position_embeddings);
    let pooling = match pooling {
        Some(p) if p.pooling_mode_cls_token && !p.pooling_mode_mean_tokens => Pooling::Cls,
        _ => Pooling::Mean,
    };
    let normalize = match &modules {
        Some(m) => m.iter().any(|m| m.ty.ends_with("Normalize")),
        None => true,
    };
    Ok(Pipeline {
        max_seq_length,
        pooling,
        normalize,
        lower_case: sbert.is_some_and(|s| s.do_lower_case),
    })
}
