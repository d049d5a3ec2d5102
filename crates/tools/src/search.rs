//! `search`: the disk index (llmos-rag) as a tool. Returns the best chunks
//! for a query, each headed by its `file:line` citation, as untrusted data
//! (ingested files are outside data: an instruction inside one is not the
//! user's).
//!
//! The index and the embedding model are owned by the tool; a
//! [`Retriever`] borrows them per call (it loads the embedded vectors, a
//! few ms per 10k chunks, so the tool holds no self-referential state). The
//! SQLite connection is not `Sync`, hence the mutex.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use llmos_embed::Embed;
use llmos_rag::ask::Source;
use llmos_rag::{Index, Mode, Retriever};
use serde_json::{json, Value as Json};

use crate::{args::Args, Tool, ToolOutput};

/// Size limits for results.
#[derive(Debug, Clone)]
pub struct SearchLimits {
    /// Chunks returned per query.
    pub k: usize,
    /// Characters per chunk shown (the rest is cut with a marker).
    pub chunk_chars: usize,
    /// Cosine below which a chunk is not shown (it does not match).
    pub min_cosine: f32,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            k: 4,
            chunk_chars: 1200,
            min_cosine: llmos_rag::ask::MIN_COSINE,
        }
    }
}

/// The `search` tool over one index.
pub struct Search {
    index: Mutex<Index>,
    embedder: Arc<dyn Embed>,
    /// Citation paths are shown relative to these folders' parents
    /// (`docs/intro.md:12-20`, not a long absolute path).
    roots: Vec<PathBuf>,
    description: String,
    pub limits: SearchLimits,
}

impl Search {
    /// A tool over `index`, embedding queries with `embedder` (the index's
    /// model). `about` says what the index holds, for the model
    /// (e.g. "the llmos documentation"); `roots` are its ingested folders.
    pub fn new(index: Index, embedder: Arc<dyn Embed>, about: &str, roots: &[PathBuf]) -> Search {
        let about = if about.trim().is_empty() {
            "the user's documents".to_string()
        } else {
            about.trim().to_string()
        };
        Search {
            index: Mutex::new(index),
            embedder,
            roots: roots
                .iter()
                .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
                .collect(),
            description: format!(
                "Search {about} (an index of local files) for passages about a question. \
                 Returns the best passages, each headed by its source as path:line; \
                 cite that source when you use a passage."
            ),
            limits: SearchLimits::default(),
        }
    }

    /// `path` relative to the parent of the root that holds it.
    fn cite_path(&self, path: &str) -> String {
        let p = Path::new(path);
        self.roots
            .iter()
            .filter(|r| p.starts_with(r))
            .max_by_key(|r| r.as_os_str().len())
            .and_then(|r| p.strip_prefix(r.parent().unwrap_or(r)).ok())
            .map_or_else(|| path.to_string(), |rel| rel.display().to_string())
    }

    fn search(&self, query: &str) -> Result<(String, Vec<Source>), String> {
        let index = self.index.lock().map_err(|_| {
            "search: the index is unavailable (an earlier call panicked)".to_string()
        })?;
        let r =
            Retriever::new(&index, self.embedder.as_ref()).map_err(|e| format!("search: {e}"))?;
        let hits = r
            .search(query, self.limits.k, Mode::Hybrid)
            .map_err(|e| format!("search: {e}"))?;
        let hits: Vec<_> = hits
            .into_iter()
            .filter(|h| h.cosine >= self.limits.min_cosine)
            .collect();
        if hits.is_empty() {
            // A statement, not an instruction: small models copy this as
            // their answer ("... Say that ...; do not guess." was copied).
            return Ok((
                format!(
                    "No passage in the index matches {query:?}: the documents do not cover this."
                ),
                Vec::new(),
            ));
        }
        let mut out = String::new();
        let mut sources = Vec::new();
        for (i, h) in hits.iter().enumerate() {
            let c = &h.chunk;
            let mut text = c.text.trim().to_string();
            if text.chars().count() > self.limits.chunk_chars {
                text = text
                    .chars()
                    .take(self.limits.chunk_chars)
                    .collect::<String>()
                    + " […]";
            }
            let heading = if c.heading.is_empty() {
                String::new()
            } else {
                format!(" § {}", c.heading)
            };
            // The source heads the passage and closes it: small models copy
            // what sits next to the fact they use.
            let source = Source {
                path: self.cite_path(&c.path),
                line_start: c.line_start,
                line_end: c.line_end,
                excerpt: String::new(),
            };
            let passage = format!("[{}] {source}{heading}\n{text}\n(source: {source})", i + 1);
            out.push_str(&passage);
            out.push_str("\n\n");
            sources.push(Source {
                excerpt: passage,
                ..source
            });
        }
        Ok((out.trim_end().to_string(), sources))
    }
}

impl Tool for Search {
    fn name(&self) -> &str {
        "search"
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Json {
        parameters()
    }

    fn call(&self, a: Json) -> ToolOutput {
        let query = match Args::new(self.name(), &a, &["query"]).and_then(|a| a.string("query")) {
            Ok(q) if !q.trim().is_empty() => q,
            Ok(_) => return ToolOutput::error("search: 'query' is empty; say what to look for"),
            Err(e) => return ToolOutput::error(e),
        };
        match self.search(&query) {
            Ok((text, sources)) => ToolOutput {
                sources,
                ..ToolOutput::ok(text).untrusted()
            },
            Err(e) => ToolOutput::error(e),
        }
    }
}

/// The schema. The query's description holds no example: under the forced
/// first call of a profile with knowledge, qwen2.5-coder-0.5b sent the old
/// example ("how are backups rotated") as the query for 6 of 7 questions
/// (bench/tools), and found nothing.
fn parameters() -> Json {
    json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for: the user's question, or its key words"}
        },
        "required": ["query"],
        "additionalProperties": false
    })
}

#[cfg(test)]
mod schema_tests {
    #[test]
    fn the_query_description_has_no_example_to_copy() {
        let p = super::parameters();
        let d = p["properties"]["query"]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(!d.is_empty());
        assert!(!d.contains("e.g.") && !d.contains('"'), "{d}");
    }
}
