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
//! - vector search is behind the [`vector::VectorStore`] seam: exact over an
//!   in-memory copy ([`vector::FlatIndex`]) below [`HNSW_MIN_VECTORS`], an
//!   HNSW graph in a sidecar file ([`hnsw::HnswStore`]) from there on
//!   ([`VectorIndex`], `LLMOS_VECTOR_INDEX`), or PostgreSQL with pgvector
//!   ([`pg::PgVectorStore`]) for an index recorded with one; the sidecar and
//!   the external store are kept in step with the SQLite file by
//!   [`sync_store`];
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
pub mod hnsw;
pub mod index;
mod ingest;
pub mod pg;
pub mod vector;

pub use chunk::{Chunk, ChunkParams};
pub use hnsw::{HnswParams, HnswStore};
pub use index::{Index, Stats, StoredChunk};
pub use ingest::{ingest, ingest_cancellable, IngestOptions, IngestReport, Progress};
pub use vector::{FlatIndex, VectorStore};

use llmos_embed::Embed;
use sha2::{Digest, Sha256};
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

/// From this many vectors on, the embedded store is an HNSW graph
/// ([`VectorIndex::Auto`]); below it, exact search.
///
/// Measured on the project's 2-core machine (BENCHMARKS.md, "Query latency
/// and the exact-search crossover", `search_latency --hnsw`): the CLI and
/// the agent's `search` tool open the store on every search, and opening
/// the exact one reads every vector from SQLite: 0.24 s at 100k vectors,
/// 0.85 s at 300k, 9.4 s at 1M, on top of a scan of 12–30 ms, 99 ms and
/// 165 ms (p50, machine loaded). The HNSW sidecar opened in 5, 51 and 107 ms
/// and searched in 0.1–0.2 ms at recall@10 0.999, 0.999 and 0.989 (ef 96,
/// embedding-like vectors). At 100k exact search still costs a quarter of a
/// second per search and the approximate one loses almost nothing, so the
/// switch is there; its one-off build (55 s at 100k) is paid by `ingest`.
pub const HNSW_MIN_VECTORS: usize = 100_000;

/// The environment variable that picks the embedded vector index:
/// `exact`, `hnsw` or `auto` ([`VectorIndex`]).
pub const VECTOR_INDEX_ENV: &str = "LLMOS_VECTOR_INDEX";

/// Which embedded vector index to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VectorIndex {
    /// Exact below [`HNSW_MIN_VECTORS`] vectors, HNSW from there on.
    #[default]
    Auto,
    /// Always the exact scan ([`FlatIndex`]).
    Exact,
    /// Always the HNSW sidecar ([`HnswStore`]).
    Hnsw,
}

impl std::str::FromStr for VectorIndex {
    type Err = String;
    fn from_str(s: &str) -> Result<VectorIndex, String> {
        match s {
            "auto" => Ok(VectorIndex::Auto),
            "exact" => Ok(VectorIndex::Exact),
            "hnsw" => Ok(VectorIndex::Hnsw),
            _ => Err(format!("unknown vector index {s:?}: auto, exact or hnsw")),
        }
    }
}

impl VectorIndex {
    /// From [`VECTOR_INDEX_ENV`] (unset or empty: `auto`).
    ///
    /// # Errors
    /// [`RagError::Store`] for a value other than auto, exact or hnsw.
    pub fn from_env() -> Result<VectorIndex, RagError> {
        match std::env::var(VECTOR_INDEX_ENV) {
            Ok(v) if !v.is_empty() => v.parse().map_err(|e| RagError::Store {
                msg: format!("{VECTOR_INDEX_ENV}: {e}"),
            }),
            _ => Ok(VectorIndex::Auto),
        }
    }

    /// Whether an index of `n` vectors gets the HNSW graph.
    pub fn uses_hnsw(self, n: usize) -> bool {
        match self {
            VectorIndex::Auto => n >= HNSW_MIN_VECTORS,
            VectorIndex::Exact => false,
            VectorIndex::Hnsw => true,
        }
    }
}

/// The embedded vector store of `index`: exact search over its vectors
/// loaded into memory, or its HNSW sidecar (opened, reconciled with the
/// chunks, or built), as `kind` picks.
///
/// # Errors
/// SQLite errors (an HNSW sidecar that cannot be written is said on stderr).
pub fn open_embedded(
    index: &Index,
    dim: usize,
    kind: VectorIndex,
) -> Result<Box<dyn VectorStore>, RagError> {
    if kind.uses_hnsw(index.chunk_count()?) {
        Ok(Box::new(HnswStore::open(
            index,
            dim,
            HnswParams::default(),
        )?))
    } else {
        Ok(Box::new(index.load_vectors(dim)?))
    }
}

/// Meta keys recording an index's external vector store.
const META_STORE_URL: &str = "vector_store";
const META_STORE_TABLE: &str = "vector_store_table";

/// A pgvector table name for an index: its file stem plus a random suffix,
/// so two machines' indexes of the same name never share a table.
fn table_name(index: &Index) -> String {
    let stem: String = index
        .path()
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect();
    let mut h = Sha256::new();
    h.update(index.path().to_string_lossy().as_bytes());
    h.update(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    h.update(std::process::id().to_le_bytes());
    let hex: String = h.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("llmos_{stem}_{hex}")
}

/// The vector store an index uses.
///
/// - `url` `None`: the one recorded in the index (an external store, whose
///   password comes from `PGPASSWORD`), else the embedded one
///   ([`open_embedded`], picked by [`VectorIndex::from_env`]);
/// - `Some("embedded")`: the embedded index, forgetting any external one;
/// - `Some("postgres://…")`: that PostgreSQL server (pgvector), recorded in
///   the index (without its password) for later opens.
///
/// An external store is then reconciled with the index's chunks
/// ([`sync_store`]), so it holds exactly what the SQLite file holds even after
/// a crash between the two writes.
///
/// # Errors
/// [`RagError::Store`] for a store that cannot be reached or set up; SQLite
/// errors.
pub fn open_store(
    index: &Index,
    dim: usize,
    url: Option<&str>,
) -> Result<Box<dyn VectorStore>, RagError> {
    open_store_as(index, dim, url, VectorIndex::from_env()?)
}

/// [`open_store`] with the embedded index picked by `kind` rather than the
/// environment.
///
/// # Errors
/// As [`open_store`].
pub fn open_store_as(
    index: &Index,
    dim: usize,
    url: Option<&str>,
    kind: VectorIndex,
) -> Result<Box<dyn VectorStore>, RagError> {
    match external_store(index, dim, url)? {
        Some(s) => Ok(s),
        None => open_embedded(index, dim, kind),
    }
}

/// [`open_store`] without loading the embedded index: `None` when the index
/// keeps its vectors itself.
///
/// # Errors
/// As [`open_store`].
pub fn external_store(
    index: &Index,
    dim: usize,
    url: Option<&str>,
) -> Result<Option<Box<dyn VectorStore>>, RagError> {
    let url = match url {
        Some("embedded") => {
            index.unset_meta(META_STORE_URL)?;
            index.unset_meta(META_STORE_TABLE)?;
            None
        }
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            Some(u.to_string())
        }
        Some(u) => {
            return Err(RagError::Store {
                msg: format!(
                    "vector store {:?}: use `embedded` or a postgres://USER@HOST:PORT/DATABASE URL",
                    pg::redact(u)
                ),
            })
        }
        None => index.meta(META_STORE_URL)?,
    };
    let Some(url) = url else {
        return Ok(None);
    };
    let table = match (index.meta(META_STORE_URL)?, index.meta(META_STORE_TABLE)?) {
        (Some(have), Some(t)) if have == pg::redact(&url) => t,
        _ => table_name(index),
    };
    let mut store = pg::PgVectorStore::connect(&url, &table, dim)?;
    index.set_meta(META_STORE_URL, &pg::redact(&url))?;
    index.set_meta(META_STORE_TABLE, &table)?;
    sync_store(index, &mut store, dim)?;
    Ok(Some(Box::new(store)))
}

/// What [`sync_store`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub added: usize,
    pub removed: usize,
}

/// Makes `store` hold exactly the index's chunk vectors: the ones it lacks
/// are copied from the SQLite file, the ones the file no longer has are
/// deleted. Chunk ids are never reused, so matching ids are the same vector.
///
/// # Errors
/// Store or SQLite errors (a later call finishes the job).
pub fn sync_store(
    index: &Index,
    store: &mut dyn VectorStore,
    dim: usize,
) -> Result<SyncReport, RagError> {
    let want: std::collections::HashSet<i64> = index.chunk_ids()?.into_iter().collect();
    let have: std::collections::HashSet<i64> = store.ids()?.into_iter().collect();
    let mut extra: Vec<i64> = have.difference(&want).copied().collect();
    let mut missing: Vec<i64> = want.difference(&have).copied().collect();
    extra.sort_unstable();
    missing.sort_unstable();
    store.delete(&extra)?;
    for part in missing.chunks(2048) {
        let vs = index.vectors(part, dim)?;
        let items: Vec<(i64, &[f32])> = vs.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        store.upsert(&items)?;
    }
    Ok(SyncReport {
        added: missing.len(),
        removed: extra.len(),
    })
}

/// Search over one index with one embedding model; holds the vector store
/// (the embedded exact one keeps the vectors in memory, the HNSW one maps
/// its sidecar), so build it once per process where it can be.
pub struct Retriever<'a> {
    index: &'a Index,
    embedder: &'a dyn Embed,
    store: Box<dyn VectorStore>,
}

impl<'a> Retriever<'a> {
    /// Opens the index's vector store ([`open_store`]).
    ///
    /// # Errors
    /// A model other than the one the index was built with; store or SQLite
    /// errors.
    pub fn new(index: &'a Index, embedder: &'a dyn Embed) -> Result<Retriever<'a>, RagError> {
        Self::new_with(index, embedder, VectorIndex::from_env()?)
    }

    /// [`Retriever::new`] with the embedded index picked by `kind` rather
    /// than the environment ([`open_store_as`]).
    ///
    /// # Errors
    /// As [`Retriever::new`].
    pub fn new_with(
        index: &'a Index,
        embedder: &'a dyn Embed,
        kind: VectorIndex,
    ) -> Result<Retriever<'a>, RagError> {
        Self::bind(index, embedder)?;
        let store = open_store_as(index, embedder.dim(), None, kind)?;
        Ok(Retriever {
            index,
            embedder,
            store,
        })
    }

    /// Uses `store`, which must already hold the index's vectors.
    ///
    /// # Errors
    /// A model other than the one the index was built with.
    pub fn with_store(
        index: &'a Index,
        embedder: &'a dyn Embed,
        store: Box<dyn VectorStore>,
    ) -> Result<Retriever<'a>, RagError> {
        Self::bind(index, embedder)?;
        Ok(Retriever {
            index,
            embedder,
            store,
        })
    }

    fn bind(index: &Index, embedder: &dyn Embed) -> Result<(), RagError> {
        if index.meta("embedding_model")?.is_some() {
            index.bind_model(embedder.model_id(), embedder.dim())?;
        }
        Ok(())
    }

    /// The vector store.
    pub fn store(&self) -> &dyn VectorStore {
        self.store.as_ref()
    }

    /// The `k` best chunks for `query`.
    ///
    /// # Errors
    /// Embedding, store or SQLite errors.
    pub fn search(&self, query: &str, k: usize, mode: Mode) -> Result<Vec<Hit>, RagError> {
        // Fusion looks deeper than k so a chunk ranked well by one side only
        // still gets its share.
        let depth = (k * 4).max(50);
        // BM25 (SQLite, this thread) runs while another thread embeds the
        // query and searches the vectors, so a hybrid query costs the
        // slower of the two, not their sum.
        let (dense, lexical) = std::thread::scope(|s| {
            let h = s.spawn(|| -> Result<(Vec<f32>, Vec<(i64, f32)>), RagError> {
                let q = self.embedder.embed(&[query])?.pop().unwrap_or_default();
                let v = match mode {
                    Mode::Bm25 => Vec::new(),
                    Mode::Vector => self.store.search(&q, k)?,
                    Mode::Hybrid => self.store.search(&q, depth)?,
                };
                Ok((q, v))
            });
            let b = match mode {
                Mode::Bm25 => self.index.bm25(query, k),
                Mode::Vector => Ok(Vec::new()),
                Mode::Hybrid => self.index.bm25(query, depth),
            };
            let dense = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (dense, b)
        });
        let (q, v) = dense?;
        let b = lexical?;
        let ranked = match mode {
            Mode::Bm25 => b,
            Mode::Vector => v,
            Mode::Hybrid => rrf(&[&b, &v], k),
        };
        let ids: Vec<i64> = ranked.iter().map(|r| r.0).collect();
        let mut by_id: std::collections::HashMap<i64, StoredChunk> = self
            .index
            .chunks(&ids)?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let cosines: std::collections::HashMap<i64, f32> = self
            .index
            .vectors(&ids, self.embedder.dim())?
            .into_iter()
            .map(|(id, v)| (id, vector::dot(&q, &v)))
            .collect();
        Ok(ranked
            .into_iter()
            .filter_map(|(id, score)| {
                let chunk = by_id.remove(&id)?;
                let cosine = cosines.get(&id).copied().unwrap_or(0.0);
                Some(Hit {
                    chunk,
                    score,
                    cosine,
                })
            })
            .collect())
    }
}
