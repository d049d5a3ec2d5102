//! Reading a tokenizer description out of GGUF metadata.

use crate::error::TextError;
use llmos_gguf::{GgufFile, Value};

/// A vocabulary as plain data: what `tokenizer.ggml.*` says, before any
/// defaults are applied. [`crate::Tokenizer::from_spec`] builds a tokenizer
/// from it; tests use it to make small vocabularies by hand.
#[derive(Clone, Debug, Default)]
pub struct TokenizerSpec {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece).
    pub model: String,
    /// `tokenizer.ggml.pre`; empty when absent.
    pub pre: String,
    /// `tokenizer.ggml.tokens`
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores`
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.merges`, "left right" per line, in rank order
    pub merges: Vec<String>,
    /// Special token ids as the metadata gives them (not yet range-checked).
    pub ids: SpecialIds,
    /// `tokenizer.ggml.add_bos_token`
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix`
    pub add_space_prefix: Option<bool>,
    /// `general.name` (llama.cpp sets per-token strip flags for some models by name)
    pub model_name: String,
    /// `general.architecture`
    pub architecture: String,
}

/// `tokenizer.ggml.*_token_id` values; `None` where the key is absent.
#[derive(Clone, Debug, Default)]
pub struct SpecialIds {
    /// beginning of sequence
    pub bos: Option<u64>,
    /// end of sequence
    pub eos: Option<u64>,
    /// end of turn
    pub eot: Option<u64>,
    /// end of message
    pub eom: Option<u64>,
    /// unknown
    pub unk: Option<u64>,
    /// fill-in-the-middle padding (end-of-generation)
    pub fim_pad: Option<u64>,
    /// fill-in-the-middle repository marker (end-of-generation)
    pub fim_rep: Option<u64>,
    /// fill-in-the-middle file separator (end-of-generation)
    pub fim_sep: Option<u64>,
}

impl TokenizerSpec {
    /// Reads every `tokenizer.ggml.*` key the tokenizer needs.
    ///
    /// # Errors
    /// `MissingKey` without `tokenizer.ggml.model` or `.tokens`; `WrongType`
    /// when a key holds the wrong type.
    pub fn from_gguf(f: &GgufFile) -> Result<TokenizerSpec, TextError> {
        let mut spec = read_meta(f)?;
        spec.tokens = strings_of(f, "tokenizer.ggml.tokens")?
            .ok_or(TextError::MissingKey {
                key: "tokenizer.ggml.tokens",
            })?
            .into_iter()
            .map(str::to_string)
            .collect();
        spec.merges = strings_of(f, "tokenizer.ggml.merges")?
            .unwrap_or_default()
            .into_iter()
            .map(str::to_string)
            .collect();
        Ok(spec)
    }
}

/// Everything but the token and merge strings.
pub(crate) fn read_meta(f: &GgufFile) -> Result<TokenizerSpec, TextError> {
    {
        let model = req_str(f, "tokenizer.ggml.model")?;
        let scores = match f.get("tokenizer.ggml.scores") {
            None => None,
            Some(v) => Some(
                array(v, "tokenizer.ggml.scores")?
                    .iter()
                    .map(|x| {
                        x.as_f64()
                            .map(|s| s as f32)
                            .ok_or_else(|| wrong("tokenizer.ggml.scores", "array of f32", x))
                    })
                    .collect::<Result<Vec<f32>, _>>()?,
            ),
        };
        let token_types = match f.get("tokenizer.ggml.token_type") {
            None => None,
            Some(v) => Some(
                array(v, "tokenizer.ggml.token_type")?
                    .iter()
                    .map(|x| {
                        x.as_i64()
                            .and_then(|t| i32::try_from(t).ok())
                            .ok_or_else(|| wrong("tokenizer.ggml.token_type", "array of i32", x))
                    })
                    .collect::<Result<Vec<i32>, _>>()?,
            ),
        };
        let id = |key: &'static str| -> Result<Option<u64>, TextError> {
            match f.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| wrong(key, "unsigned integer", v)),
            }
        };
        let ids = SpecialIds {
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            eot: id("tokenizer.ggml.eot_token_id")?,
            eom: id("tokenizer.ggml.eom_token_id")?,
            unk: id("tokenizer.ggml.unknown_token_id")?,
            // the deprecated prefix/suffix/middle keys name FIM pre/suf/mid, which
            // are not end-of-generation, so they are not read
            fim_pad: id("tokenizer.ggml.fim_pad_token_id")?,
            fim_rep: id("tokenizer.ggml.fim_rep_token_id")?,
            fim_sep: id("tokenizer.ggml.fim_sep_token_id")?,
        };
        let flag = |key: &'static str| -> Result<Option<bool>, TextError> {
            match f.get(key) {
                None => Ok(None),
                Some(v) => v.as_bool().map(Some).ok_or_else(|| wrong(key, "bool", v)),
            }
        };
        Ok(TokenizerSpec {
            model,
            pre: opt_str(f, "tokenizer.ggml.pre")?.unwrap_or_default(),
            tokens: Vec::new(),
            scores,
            token_types,
            merges: Vec::new(),
            ids,
            add_bos: flag("tokenizer.ggml.add_bos_token")?,
            add_eos: flag("tokenizer.ggml.add_eos_token")?,
            add_space_prefix: flag("tokenizer.ggml.add_space_prefix")?,
            model_name: opt_str(f, "general.name")?.unwrap_or_default(),
            architecture: opt_str(f, "general.architecture")?.unwrap_or_default(),
        })
    }
}

fn wrong(key: &str, expected: &'static str, v: &Value) -> TextError {
    TextError::WrongType {
        key: key.to_string(),
        expected,
        found: v.type_name().to_string(),
    }
}

fn opt_str(f: &GgufFile, key: &'static str) -> Result<Option<String>, TextError> {
    match f.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(|s| Some(s.to_string()))
            .ok_or_else(|| wrong(key, "string", v)),
    }
}

fn req_str(f: &GgufFile, key: &'static str) -> Result<String, TextError> {
    opt_str(f, key)?.ok_or(TextError::MissingKey { key })
}

fn array<'a>(v: &'a Value, key: &'static str) -> Result<&'a [Value], TextError> {
    v.as_array().ok_or_else(|| wrong(key, "array", v))
}

/// The strings of an array-of-strings key, borrowed; `None` when absent.
pub(crate) fn strings_of<'a>(
    f: &'a GgufFile,
    key: &'static str,
) -> Result<Option<Vec<&'a str>>, TextError> {
    let Some(v) = f.get(key) else {
        return Ok(None);
    };
    array(v, key)?
        .iter()
        .map(|x| x.as_str().ok_or_else(|| wrong(key, "array of strings", x)))
        .collect::<Result<Vec<&str>, _>>()
        .map(Some)
}
