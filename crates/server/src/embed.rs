//! `POST /v1/embeddings` for the sentence-embedding models given to
//! [`crate::serve_with_embedders`] (llmos-embed, e.g. all-MiniLM-L6-v2).
//!
//! OpenAI's shape: `input` is a string or a list of strings (token-id
//! arrays are refused: these models have their own WordPiece vocabulary),
//! `encoding_format` is `float` (default) or `base64` (the f32 little-endian
//! bytes, as the openai client decodes them), `usage.prompt_tokens` counts
//! the word pieces the model saw (after its 256-piece truncation). The
//! forward pass runs on the blocking pool, never on the async threads.

use crate::api;
use crate::error::ApiError;
use axum::response::{IntoResponse, Response};
use axum::Json;
use llmos_embed::Embedder;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Most inputs in one request (OpenAI's limit is 2048 too).
pub const MAX_INPUTS: usize = 2048;

/// One served embedding model.
pub(crate) struct EmbedEntry {
    pub name: String,
    pub embedder: Arc<Embedder>,
}

#[derive(Deserialize)]
struct Request {
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
}

fn inputs(v: &Value) -> Result<Vec<String>, ApiError> {
    let bad = || {
        ApiError::param(
            "input",
            "input must be a string or a non-empty array of strings (token arrays are not supported)",
        )
    };
    let out = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    if out.len() > MAX_INPUTS {
        return Err(ApiError::param(
            "input",
            format!("{} inputs; at most {MAX_INPUTS} per request", out.len()),
        ));
    }
    Ok(out)
}

/// Standard base64 (with padding) of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Handles a request for `e` (its body already read).
pub(crate) async fn handle(e: &EmbedEntry, body: &[u8]) -> Result<Response, ApiError> {
    let req: Request = api::parse_json(body)?;
    let texts = inputs(&req.input)?;
    let b64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::param(
                "encoding_format",
                format!("encoding_format {other:?}: use \"float\" or \"base64\""),
            ))
        }
    };
    let dim = e.embedder.dim();
    if req.dimensions.is_some_and(|d| d != dim) {
        return Err(ApiError::param(
            "dimensions",
            format!("{} produces {dim}-dimensional vectors only", e.name),
        ));
    }
    let emb = Arc::clone(&e.embedder);
    let (vecs, tokens) = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        emb.embed_counted(&refs)
    })
    .await
    .map_err(|err| ApiError::internal(format!("embedding task failed: {err}")))?
    .map_err(|err| ApiError::internal(format!("embedding: {err}")))?;
    let data: Vec<Value> = vecs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if b64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64(&bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": e.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&1.0f32.to_le_bytes()), "AACAPw==");
    }

    #[test]
    fn inputs_accept_string_or_list() {
        assert_eq!(inputs(&json!("a")).ok(), Some(vec!["a".to_string()]));
        assert_eq!(inputs(&json!(["a", "b"])).map(|v| v.len()).ok(), Some(2));
        assert!(inputs(&json!([1, 2])).is_err());
        assert!(inputs(&json!([])).is_err());
    }
}
