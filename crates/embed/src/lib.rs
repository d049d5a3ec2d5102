//! `llmos-embed`: sentence embeddings from a BERT encoder
//! (all-MiniLM-L6-v2) on the llmos kernels.
//!
//! The model is a sentence-transformers directory as `llmos pull
//! all-minilm-l6-v2` stores it: `config.json`, `model.safetensors`,
//! `tokenizer.json`, `sentence_bert_config.json`, `modules.json`,
//! `1_Pooling/config.json`. [`Embedder::load`] reads it; [`Embedder::embed`]
//! returns one unit-length vector per text, matching sentence-transformers'
//! `model.encode(texts, normalize_embeddings=...)` (cosine ≥ 0.999, checked
//! in `tests/parity.rs` against a committed reference).
//!
//! What sentence-transformers does, and so this crate does:
//! - each text is stripped of surrounding whitespace (Python's `str.strip`);
//! - WordPiece through the model's own `tokenizer.json` (lower-casing and
//!   accent stripping come from its normalizer), `[CLS] … [SEP]`;
//! - **truncation**: a text longer than `max_seq_length` word pieces (256 for
//!   all-MiniLM-L6-v2, from `sentence_bert_config.json`, `[CLS]` and `[SEP]`
//!   included) keeps its first 254 pieces; the rest is not seen. Callers that
//!   must not lose text chunk it first (see [`Embedder::count_tokens`]);
//! - BERT encoder, mean pooling over the real tokens, L2 normalisation.
//!
//! Batches are packed without padding (see `bert.rs`), split into groups of
//! at most [`MAX_BATCH_TOKENS`] tokens, and every matmul, attention and norm
//! runs on a persistent [`ThreadPool`].
//!
//! ```no_run
//! use llmos_embed::Embedder;
//! let e = Embedder::load(std::path::Path::new("/path/to/all-minilm-l6-v2"))?;
//! let v = e.embed(&["a cat sat on the mat", "un chat"])?;
//! assert_eq!(v[0].len(), e.dim());
//! let cos: f32 = v[0].iter().zip(&v[1]).map(|(a, b)| a * b).sum();
//! # let _ = cos;
//! # Ok::<(), llmos_embed::EmbedError>(())
//! ```

mod bert;
mod config;

pub use bert::WeightFormat;
pub use config::{Config, Pipeline, Pooling};

use llmos_kernels::pool::ThreadPool;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// Tokens per packed forward pass: bounds the scratch buffers (~30 MB for
/// MiniLM) while keeping the matmuls large.
pub const MAX_BATCH_TOKENS: usize = 4096;

/// Errors from loading a model or embedding text.
#[derive(thiserror::Error, Debug)]
pub enum EmbedError {
    // --- loading
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is missing (is this a sentence-transformers model directory? try `llmos pull all-minilm-l6-v2`)")]
    Missing { path: PathBuf },
    #[error("{path}: bad JSON: {msg}")]
    Json { path: PathBuf, msg: String },
    #[error("config.json: {what}")]
    Config { what: String },
    #[error("model.safetensors: {msg}")]
    Safetensors { msg: String },
    #[error("tensor {name} {what}")]
    Tensor { name: String, what: String },
    #[error("tokenizer.json: {msg}")]
    Tokenizer { msg: String },
    // --- embedding
    #[error("tokenizing: {msg}")]
    Encode { msg: String },
    #[error("token id {id} is outside the vocabulary of {vocab}")]
    TokenId { id: u32, vocab: usize },
}

/// Anything that turns texts into vectors: the seam retrieval code depends
/// on (tests plug in doubles).
pub trait Embed: Send + Sync {
    /// One vector of [`Embed::dim`] floats per text.
    ///
    /// # Errors
    /// Implementation-defined (tokenizer failures for [`Embedder`]).
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// Vector width.
    fn dim(&self) -> usize;
    /// A name that identifies the model (stored with an index, so vectors
    /// from different models are never mixed).
    fn model_id(&self) -> &str;
    /// Tokens the model would see for `text` (after truncation).
    fn count_tokens(&self, text: &str) -> usize;
    /// The most tokens one text can have before truncation.
    fn max_tokens(&self) -> usize;
}

/// Options for [`Embedder::load_with`].
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Worker threads (0: all cores).
    pub threads: usize,
    pub format: WeightFormat,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            threads: 0,
            format: WeightFormat::best(),
        }
    }
}

/// A loaded BERT sentence-embedding model.
pub struct Embedder {
    cfg: Config,
    pipeline: Pipeline,
    weights: bert::Weights,
    tokenizer: Tokenizer,
    /// The same without truncation, for counting.
    untruncated: Tokenizer,
    pool: ThreadPool,
    state: Mutex<bert::RunState>,
    id: String,
}

/// Python's `str.strip()` whitespace: Unicode White_Space plus the
/// information separators U+001C..U+001F.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

impl Embedder {
    /// Loads a sentence-transformers directory with the default options.
    ///
    /// # Errors
    /// A missing or malformed file, an architecture other than BERT with
    /// absolute positions and erf GELU, or a tensor with the wrong shape.
    pub fn load(dir: &Path) -> Result<Embedder, EmbedError> {
        Self::load_with(dir, &LoadOptions::default())
    }

    /// [`Embedder::load`] with options.
    ///
    /// # Errors
    /// As [`Embedder::load`].
    pub fn load_with(dir: &Path, opts: &LoadOptions) -> Result<Embedder, EmbedError> {
        let cfg = config::load_config(dir)?;
        let pipeline = config::load_pipeline(dir, &cfg)?;
        let st_path = dir.join("model.safetensors");
        let bytes = std::fs::read(&st_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EmbedError::Missing {
                path: st_path.clone(),
            },
            _ => EmbedError::Io {
                op: "reading",
                path: st_path.clone(),
                source: e,
            },
        })?;
        let weights = bert::Weights::load(&bytes, &cfg, opts.format)?;
        drop(bytes);

        let tk_path = dir.join("tokenizer.json");
        if !tk_path.is_file() {
            return Err(EmbedError::Missing { path: tk_path });
        }
        let mut tokenizer = Tokenizer::from_file(&tk_path)
            .map_err(|e| EmbedError::Tokenizer { msg: e.to_string() })?;
        // sentence-transformers: padding=True (irrelevant here: we pack),
        // truncation='longest_first', max_length=max_seq_length.
        tokenizer.with_padding(None);
        let mut untruncated = tokenizer.clone();
        untruncated
            .with_truncation(None)
            .map_err(|e| EmbedError::Tokenizer { msg: e.to_string() })?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: pipeline.max_seq_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| EmbedError::Tokenizer { msg: e.to_string() })?;

        let threads = if opts.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            opts.threads
        };
        let id = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Embedder {
            cfg,
            pipeline,
            weights,
            tokenizer,
            untruncated,
            pool: ThreadPool::new(threads),
            state: Mutex::new(bert::RunState::default()),
            id,
        })
    }

    /// The model's hyperparameters.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// What happens around the encoder (truncation length, pooling, norm).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Vector width (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.cfg.hidden_size
    }

    /// Word pieces per text, `[CLS]`/`[SEP]` included, before truncation.
    pub fn max_tokens(&self) -> usize {
        self.pipeline.max_seq_length
    }

    fn encode(&self, texts: &[&str]) -> Result<Vec<tokenizers::Encoding>, EmbedError> {
        let stripped: Vec<&str> = texts.iter().map(|t| py_strip(t)).collect();
        let enc = self
            .tokenizer
            .encode_batch(stripped, true)
            .map_err(|e| EmbedError::Encode { msg: e.to_string() })?;
        for e in &enc {
            if let Some(&id) = e
                .get_ids()
                .iter()
                .find(|&&id| id as usize >= self.cfg.vocab_size)
            {
                return Err(EmbedError::TokenId {
                    id,
                    vocab: self.cfg.vocab_size,
                });
            }
        }
        Ok(enc)
    }

    /// Tokens the model sees for `text` (after stripping and truncation,
    /// `[CLS]`/`[SEP]` included): what an embeddings API reports as usage.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.encode(&[text]).map_or(0, |e| e[0].get_ids().len())
    }

    /// Word pieces of `text` without truncation or special tokens (for
    /// chunkers that must keep every piece under [`Embedder::max_tokens`]).
    pub fn count_tokens_untruncated(&self, text: &str) -> usize {
        self.untruncated
            .encode_fast(py_strip(text), false)
            .map_or(0, |e| e.get_ids().len())
    }

    /// One vector per text (unit length when the model has a Normalize module).
    ///
    /// # Errors
    /// A tokenizer failure.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_counted(texts).map(|(v, _)| v)
    }

    /// [`Embedder::embed`], plus the number of tokens processed (usage).
    ///
    /// # Errors
    /// A tokenizer failure.
    pub fn embed_counted(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, usize), EmbedError> {
        let d = self.dim();
        let enc = self.encode(texts)?;
        let total: usize = enc.iter().map(|e| e.get_ids().len()).sum();
        let mut out = vec![0f32; texts.len() * d];
        let mut state = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut i = 0;
        while i < enc.len() {
            // A group of whole texts with at most MAX_BATCH_TOKENS tokens
            // (one text is at most max_seq_length, so a group is never empty).
            let mut j = i;
            let mut toks = 0;
            while j < enc.len() && (j == i || toks + enc[j].get_ids().len() <= MAX_BATCH_TOKENS) {
                toks += enc[j].get_ids().len();
                j += 1;
            }
            let seqs: Vec<bert::Seq> = enc[i..j]
                .iter()
                .map(|e| bert::Seq {
                    ids: e.get_ids(),
                    type_ids: e.get_type_ids(),
                })
                .collect();
            bert::forward(
                &self.pool,
                &self.cfg,
                &self.weights,
                &mut state,
                self.pipeline.max_seq_length,
                &seqs,
                self.pipeline.pooling == Pooling::Cls,
                &mut out[i * d..j * d],
            );
            i = j;
        }
        drop(state);
        let mut vecs: Vec<Vec<f32>> = out.chunks_exact(d).map(<[f32]>::to_vec).collect();
        if self.pipeline.normalize {
            vecs.iter_mut().for_each(|v| l2_normalize(v));
        }
        Ok((vecs, total))
    }
}

/// `v / max(‖v‖, 1e-12)`, as `torch.nn.functional.normalize`.
pub fn l2_normalize(v: &mut [f32]) {
    let n = v
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    let inv = (1.0 / n.max(1e-12)) as f32;
    v.iter_mut().for_each(|x| *x *= inv);
}

impl Embed for Embedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Embedder::embed(self, texts)
    }
    fn dim(&self) -> usize {
        Embedder::dim(self)
    }
    fn model_id(&self) -> &str {
        &self.id
    }
    fn count_tokens(&self, text: &str) -> usize {
        Embedder::count_tokens(self, text)
    }
    fn max_tokens(&self) -> usize {
        Embedder::max_tokens(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_matches_python() {
        assert_eq!(py_strip("  a b \n\t"), "a b");
        assert_eq!(py_strip("\u{1f}\u{3000}x\u{a0}"), "x");
        assert_eq!(
            py_strip("\u{200b}x"),
            "\u{200b}x",
            "ZWSP is not whitespace in Python"
        );
    }

    #[test]
    fn normalize_handles_zero() {
        let mut v = [0.0f32; 4];
        l2_normalize(&mut v);
        assert_eq!(v, [0.0; 4]);
        let mut v = [3.0f32, 4.0];
        l2_normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
    }
}
