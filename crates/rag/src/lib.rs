//! `llmos-rag`: the disk of the LLM OS. Local files are extracted, chunked,
//! embedded and indexed; queries retrieve chunks by BM25, by vector or by
//! both (reciprocal rank fusion); `ask` turns the hits into a cited prompt.
//!
//! Design:
//! - one SQLite file per index under `$LLMOS_HOME/indexes/NAME.sqlite`
//!   ([`index::Index`]): documents, chunks with their vectors, FTS5 for BM25;
//! - a document is written in one transaction after all its chunks are
//!   embedded, so an interrupted ingest leaves whole documents only, and the
//!   next ingest skips every file whose content hash is already stored;
//! - vector search is exact over an in-memory copy ([`vector::FlatIndex`])
//!   behind the [`vector::VectorStore`] seam;
//! - the embedding model is any [`llmos_embed::Embed`] (all-MiniLM-L6-v2 in
//!   the product, doubles in tests).
//!
//! ```no_run
//! use llmos_rag::{ingest, Index, IngestOptions, Retriever, Mode};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let emb = llmos_embed::Embedder::load(std::path::Path::new("/models/all-minilm-l6-v2"))?;
//! let mut ix = Index::open(std::path::Path::new("/tmp/notes.sqlite"))?;
//! ingest(&mut ix, &emb, &["/home/me/notes".into()], &IngestOptions::default(), &mut |_| {})?;
//! let r = Retriever::new(&ix, &emb)?;
//! for hit in r.search("how do I rotate the logs?", 5, Mode::Hybrid)? {
//!     println!("{:.3} {}:{}-{}", hit.score, hit.chunk.path, hit.chunk.line_start, hit.chunk.line_end);
//! }
//! # Ok(()) }
//! ```

pub mod ask;
pub mod chunk;
pub mod extract;
pub mod index;
mod ingest;
pub mod vector;

pub use chunk::{Chunk, ChunkParams};
pub use index::{Index, Stats, StoredChunk};
pub use ingest::{ingest, ingest_cancellable, IngestOptions, IngestReport, Progress};
pub use vector::{FlatIndex, VectorStore};

use llmos_embed::Embed;
use std::path::PathBuf;

/// Errors of the disk layer, by stage.
#[derive(thiserror::Error, Debug)]
pub enum RagError {
    // --- files
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("extracting text from {path}: {msg}")]
    Extract { path: PathBuf, msg: String },
    // --- embedding
    #[error(transparent)]
    Embed(#[from] llmos_embed::EmbedError),
    #[error("vector of width {got}, the index holds width {expected}")]
    Dim { expected: usize, got: usize },
    // --- index
    #[error("index {op}: {source}")]
    Sql {
        op: &'static str,
        source: rusqlite::Error,
    },
    #[error(
        "index {index} was built with embedding model {have}, not {want}; use another --index"
    )]
    ModelMismatch {
        index: PathBuf,
        have: String,
        want: String,
    },
    #[error("index is inconsistent: {what}")]
    Inconsistent { what: String },
    #[error("interrupted")]
    Interrupted,
    #[error("vector store: {msg}")]
    Store { msg: String },
}

/// How `search` ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Reciprocal rank fusion of BM25 and vector ranks.
    #[default]
    Hybrid,
    Bm25,
    Vector,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "hybrid" => Ok(Mode::Hybrid),
            "bm25" => Ok(Mode::Bm25),
            "vector" => Ok(Mode::Vector),
            _ => Err(format!("unknown mode {s:?}: hybrid, bm25 or vector")),
        }
    }
}

/// A retrieved chunk.
#[derive(Clone, Debug)]
pub struct Hit {
    pub chunk: StoredChunk,
    /// The mode's score: RRF sum, BM25 (higher is better) or cosine.
    pub score: f32,
    /// Cosine between the query and the chunk (every mode), for relevance.
    pub cosine: f32,
}

/// RRF's rank constant (Cormack et al. 2009).
pub const RRF_K: f32 = 60.0;

/// Reciprocal rank fusion: `Σ 1 / (RRF_K + rank)` over the lists (rank from 1).
pub fn rrf(lists: &[&[(i64, f32)]], k: usize) -> Vec<(i64, f32)> {
    let mut score: std::collections::HashMap<i64, f32> = std::collections::HashMap::new();
    for list in lists {
        for (rank, (id, _)) in list.iter().enumerate() {
            *score.entry(*id).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    vector::top_k(score.into_iter().collect(), k)
}

/// Search over one index with one embedding model; holds the vectors in
/// memory, so build it once per process.
pub struct Retriever<'a> {
    index: &'a Index,
    embedder: &'a dyn Embed,
    vectors: FlatIndex,
}

impl<'a> Retriever<'a> {
    /// Loads the index's vectors.
    ///
    /// # Errors
    /// A model other than the one the index was built with; SQLite errors.
    pub fn new(index: &'a Index, embedder: &'a dyn Embed) -> Result<Retriever<'a>, RagError> {
        if index.meta("embedding_model")?.is_some() {
            index.bind_model(embedder.model_id(), embedder.dim())?;
        }
        let vectors = index.load_vectors(embedder.dim())?;
        Ok(Retriever {
            index,
            embedder,
            vectors,
        })
    }

    /// The in-memory vectors.
    pub fn vectors(&self) -> &FlatIndex {
        &self.vectors
    }

    /// The `k` best chunks for `query`.
    ///
    /// # Errors
    /// Embedding or SQLite errors.
    pub fn search(&self, query: &str, k: usize, mode: Mode) -> Result<Vec<Hit>, RagError> {
        let q = self.embedder.embed(&[query])?.pop().unwrap_or_default();
        // Fusion looks deeper than k so a chunk ranked well by one side only
        // still gets its share.
        let depth = (k * 4).max(50);
        let ranked = match mode {
            Mode::Bm25 => self.index.bm25(query, k)?,
            Mode::Vector => self.vectors.search(&q, k)?,
            Mode::Hybrid => {
                let b = self.index.bm25(query, depth)?;
                let v = self.vectors.search(&q, depth)?;
                rrf(&[&b, &v], k)
            }
        };
        let ids: Vec<i64> = ranked.iter().map(|r| r.0).collect();
        let mut by_id: std::collections::HashMap<i64, StoredChunk> = self
            .index
            .chunks(&ids)?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        Ok(ranked
            .into_iter()
            .filter_map(|(id, score)| {
                let chunk = by_id.remove(&id)?;
                let cosine = self.vectors.get(id).map_or(0.0, |v| vector::dot(&q, v));
                Some(Hit {
                    chunk,
                    score,
                    cosine,
                })
            })
            .collect())
    }
}
