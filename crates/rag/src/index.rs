//! The embedded index: one SQLite file (WAL) per index name, holding
//! documents, chunks with their vectors (f32 little-endian blobs), and an
//! FTS5 table over the chunks for BM25.
//!
//! Every change to one document (its old chunks out, its new chunks in) is a
//! single transaction, so a crash or Ctrl-C at any point leaves each document
//! either fully old or fully new; `documents.n_chunks` lets
//! [`Index::check`] prove it.

use crate::chunk::Chunk;
use crate::vector::{FlatIndex, VectorStore};
use crate::RagError;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    n_chunks INTEGER NOT NULL,
    ingested_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY,
    doc_id INTEGER NOT NULL REFERENCES documents(id),
    ord INTEGER NOT NULL,
    line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    heading, text, content='chunks', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, heading, text)
        VALUES ('delete', old.id, old.heading, old.text);
END;
"#;

/// A stored document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub id: i64,
    pub path: String,
    pub hash: String,
    pub n_chunks: usize,
}

/// A stored chunk (without its vector).
#[derive(Clone, Debug)]
pub struct StoredChunk {
    pub id: i64,
    pub path: String,
    pub line_start: usize,
    pub line_end: usize,
    pub heading: String,
    pub text: String,
}

/// Counts that [`Index::check`] found consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    pub documents: usize,
    pub chunks: usize,
}

/// One index (a SQLite file).
pub struct Index {
    conn: Connection,
    path: PathBuf,
}

fn sql(op: &'static str) -> impl Fn(rusqlite::Error) -> RagError {
    move |e| RagError::Sql { op, source: e }
}

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(b: &[u8]) -> impl Iterator<Item = f32> + '_ {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

impl Index {
    /// Opens (creating if needed) the index file at `path`.
    ///
    /// # Errors
    /// The file cannot be created or is not an llmos index.
    pub fn open(path: &Path) -> Result<Index, RagError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| RagError::Io {
                op: "creating",
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        let conn = Connection::open(path).map_err(sql("opening the index"))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql("setting busy timeout"))?;
        // WAL: readers never block the ingest; NORMAL sync is crash-safe in WAL
        // mode (a power cut may lose the last commits, never consistency).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("enabling WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql("setting synchronous"))?;
        conn.execute_batch(SCHEMA)
            .map_err(sql("creating the schema"))?;
        Ok(Index {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A `meta` value.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn meta(&self, key: &str) -> Result<Option<String>, RagError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(sql("reading meta"))
    }

    /// Records the embedding model on first use; afterwards it must match,
    /// since vectors from two models cannot be compared.
    ///
    /// # Errors
    /// [`RagError::ModelMismatch`].
    pub fn bind_model(&self, model: &str, dim: usize) -> Result<(), RagError> {
        let want = format!("{model}:{dim}");
        match self.meta("embedding_model")? {
            Some(have) if have != want => Err(RagError::ModelMismatch {
                index: self.path.clone(),
                have,
                want,
            }),
            Some(_) => Ok(()),
            None => {
                self.conn
                    .execute(
                        "INSERT INTO meta(key, value) VALUES ('embedding_model', ?1)",
                        [&want],
                    )
                    .map_err(sql("writing meta"))?;
                Ok(())
            }
        }
    }

    /// The stored document at `path`.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn document(&self, path: &str) -> Result<Option<Document>, RagError> {
        self.conn
            .query_row(
                "SELECT id, path, hash, n_chunks FROM documents WHERE path = ?1",
                [path],
                |r| {
                    Ok(Document {
                        id: r.get(0)?,
                        path: r.get(1)?,
                        hash: r.get(2)?,
                        n_chunks: r.get::<_, i64>(3)? as usize,
                    })
                },
            )
            .optional()
            .map_err(sql("reading a document"))
    }

    /// Every stored document path.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn paths(&self) -> Result<Vec<String>, RagError> {
        let mut st = self
            .conn
            .prepare("SELECT path FROM documents ORDER BY path")
            .map_err(sql("listing documents"))?;
        let rows = st
            .query_map([], |r| r.get(0))
            .map_err(sql("listing documents"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("listing documents"))
    }

    /// Replaces a document's chunks in one transaction (inserting the
    /// document if new). `vectors[i]` belongs to `chunks[i]`.
    ///
    /// # Errors
    /// SQLite errors (the transaction is rolled back).
    pub fn put_document(
        &mut self,
        path: &str,
        hash: &str,
        kind: &str,
        bytes: u64,
        chunks: &[Chunk],
        vectors: &[Vec<f32>],
    ) -> Result<(), RagError> {
        let tx = self
            .conn
            .transaction()
            .map_err(sql("beginning a transaction"))?;
        delete_doc(&tx, path)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        tx.execute(
            "INSERT INTO documents(path, hash, kind, bytes, n_chunks, ingested_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![path, hash, kind, bytes as i64, chunks.len() as i64, now],
        )
        .map_err(sql("inserting a document"))?;
        let doc_id = tx.last_insert_rowid();
        // Chunk ids are never reused (an external vector store keyed by id
        // must never see one id name two vectors): new ids start above a
        // high-water mark kept in meta, in this same transaction.
        let hwm: i64 = tx
            .query_row(
                "SELECT max(coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'chunk_id_hwm'), 0),
                            coalesce((SELECT max(id) FROM chunks), 0))",
                [],
                |r| r.get(0),
            )
            .map_err(sql("reading the chunk id mark"))?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('chunk_id_hwm', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(hwm + chunks.len() as i64).to_string()],
        )
        .map_err(sql("writing the chunk id mark"))?;
        bump_chunks_version(&tx)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO chunks(id, doc_id, ord, line_start, line_end, heading, text, embedding)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(sql("inserting chunks"))?;
            for (i, (c, v)) in chunks.iter().zip(vectors).enumerate() {
                st.execute(params![
                    hwm + 1 + i as i64,
                    doc_id,
                    i as i64,
                    c.line_start as i64,
                    c.line_end as i64,
                    c.heading,
                    c.text,
                    to_blob(v)
                ])
                .map_err(sql("inserting chunks"))?;
            }
        }
        tx.commit().map_err(sql("committing a document"))
    }

    /// Removes a document and its chunks in one transaction.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn remove_document(&mut self, path: &str) -> Result<bool, RagError> {
        let tx = self
            .conn
            .transaction()
            .map_err(sql("beginning a transaction"))?;
        let removed = delete_doc(&tx, path)?;
        if removed {
            bump_chunks_version(&tx)?;
        }
        tx.commit().map_err(sql("committing a removal"))?;
        Ok(removed)
    }

    /// Loads every chunk vector into an in-memory exact index.
    ///
    /// # Errors
    /// SQLite errors; a blob of the wrong size.
    pub fn load_vectors(&self, dim: usize) -> Result<FlatIndex, RagError> {
        let mut ix = FlatIndex::new(dim);
        let mut st = self
            .conn
            .prepare("SELECT id, embedding FROM chunks")
            .map_err(sql("loading vectors"))?;
        let mut rows = st.query([]).map_err(sql("loading vectors"))?;
        let mut buf = Vec::with_capacity(dim);
        while let Some(r) = rows.next().map_err(sql("loading vectors"))? {
            let id: i64 = r.get(0).map_err(sql("loading vectors"))?;
            let blob = r.get_ref(1).map_err(sql("loading vectors"))?;
            let bytes = blob.as_blob().map_err(|e| RagError::Sql {
                op: "loading vectors",
                source: rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Blob,
                    Box::new(e),
                ),
            })?;
            buf.clear();
            buf.extend(from_blob(bytes));
            ix.upsert(&[(id, &buf)])?;
        }
        Ok(ix)
    }

    /// Every chunk id.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn chunk_ids(&self) -> Result<Vec<i64>, RagError> {
        let mut st = self
            .conn
            .prepare("SELECT id FROM chunks")
            .map_err(sql("listing chunk ids"))?;
        let rows = st
            .query_map([], |r| r.get(0))
            .map_err(sql("listing chunk ids"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("listing chunk ids"))
    }

    /// A value that changes whenever chunks are added or removed: the
    /// change counter kept with the chunks, and the highest chunk id (which
    /// also moves when a writer that predates the counter adds chunks).
    /// Both are single-row reads.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn chunks_version(&self) -> Result<String, RagError> {
        self.conn
            .query_row(
                "SELECT coalesce((SELECT value FROM meta WHERE key = 'chunks_version'), '0')
                        || ':' || coalesce((SELECT max(id) FROM chunks), 0)",
                [],
                |r| r.get(0),
            )
            .map_err(sql("reading the chunks version"))
    }

    /// How many chunks the index holds.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn chunk_count(&self) -> Result<usize, RagError> {
        self.conn
            .query_row("SELECT count(*) FROM chunks", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(sql("counting chunks"))
    }

    /// The vectors of these chunks, in the same order (missing ids skipped).
    ///
    /// # Errors
    /// SQLite errors; a blob of the wrong size.
    pub fn vectors(&self, ids: &[i64], dim: usize) -> Result<Vec<(i64, Vec<f32>)>, RagError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT embedding FROM chunks WHERE id = ?1")
            .map_err(sql("reading vectors"))?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let v: Option<Vec<u8>> = st
                .query_row([id], |r| r.get(0))
                .optional()
                .map_err(sql("reading vectors"))?;
            if let Some(b) = v {
                if b.len() != dim * 4 {
                    return Err(RagError::Dim {
                        expected: dim,
                        got: b.len() / 4,
                    });
                }
                out.push((id, from_blob(&b).collect()));
            }
        }
        Ok(out)
    }

    /// Sets a `meta` value.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), RagError> {
        self.conn
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map_err(sql("writing meta"))?;
        Ok(())
    }

    /// Removes a `meta` value.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn unset_meta(&self, key: &str) -> Result<(), RagError> {
        self.conn
            .execute("DELETE FROM meta WHERE key = ?1", [key])
            .map_err(sql("writing meta"))?;
        Ok(())
    }

    /// BM25 over the chunks: the best `k` (id, score), higher is better
    /// (SQLite's `bm25()` negated). Words of `query` are OR-ed, each quoted,
    /// so no FTS5 syntax in user text can break the query.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn bm25(&self, query: &str, k: usize) -> Result<Vec<(i64, f32)>, RagError> {
        let mut words: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| w.to_lowercase())
            .collect();
        words.sort();
        words.dedup();
        // Function words match most chunks, add almost nothing to the BM25
        // ranking (their IDF is near zero) and dominate its cost: at 100k
        // chunks a question's "how", "do", "the" made the query 5x slower.
        // A query made only of them keeps them.
        if words.iter().any(|w| !is_stopword(w)) {
            words.retain(|w| !is_stopword(w));
        }
        if words.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let q = words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT rowid, bm25(chunks_fts, 0.5, 1.0) AS s FROM chunks_fts
                 WHERE chunks_fts MATCH ?1 ORDER BY s LIMIT ?2",
            )
            .map_err(sql("BM25 search"))?;
        let rows = st
            .query_map(params![q, k as i64], |r| {
                Ok((r.get::<_, i64>(0)?, -(r.get::<_, f64>(1)? as f32)))
            })
            .map_err(sql("BM25 search"))?;
        rows.collect::<Result<_, _>>().map_err(sql("BM25 search"))
    }

    /// The chunks with these ids, in the same order (missing ids skipped).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn chunks(&self, ids: &[i64]) -> Result<Vec<StoredChunk>, RagError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT c.id, d.path, c.line_start, c.line_end, c.heading, c.text
                 FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id = ?1",
            )
            .map_err(sql("reading chunks"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let c = st
                .query_row([id], |r| {
                    Ok(StoredChunk {
                        id: r.get(0)?,
                        path: r.get(1)?,
                        line_start: r.get::<_, i64>(2)? as usize,
                        line_end: r.get::<_, i64>(3)? as usize,
                        heading: r.get(4)?,
                        text: r.get(5)?,
                    })
                })
                .optional()
                .map_err(sql("reading chunks"))?;
            out.extend(c);
        }
        Ok(out)
    }

    /// Checks that every document has exactly the chunks it records, that no
    /// chunk is orphaned, and that the FTS index agrees with the chunks.
    ///
    /// # Errors
    /// [`RagError::Inconsistent`] naming what is wrong.
    pub fn check(&self) -> Result<Stats, RagError> {
        let bad: Option<String> = self
            .conn
            .query_row(
                "SELECT d.path FROM documents d
                 WHERE d.n_chunks != (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("checking"))?;
        if let Some(p) = bad {
            return Err(RagError::Inconsistent {
                what: format!("document {p} does not have the chunks it records"),
            });
        }
        let orphans: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)",
                [],
                |r| r.get(0),
            )
            .map_err(sql("checking"))?;
        if orphans > 0 {
            return Err(RagError::Inconsistent {
                what: format!("{orphans} chunks belong to no document"),
            });
        }
        self.conn
            .execute(
                "INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .map_err(|e| RagError::Inconsistent {
                what: format!("full-text index: {e}"),
            })?;
        let count = |q: &str| -> Result<usize, RagError> {
            self.conn
                .query_row(q, [], |r| r.get::<_, i64>(0))
                .map(|n| n as usize)
                .map_err(sql("checking"))
        };
        Ok(Stats {
            documents: count("SELECT count(*) FROM documents")?,
            chunks: count("SELECT count(*) FROM chunks")?,
        })
    }
}

/// English function words left out of BM25 queries (the common core of the
/// Lucene/Snowball lists, plus question words).
const STOPWORDS: &[&str] = &[
    "a", "about", "am", "an", "and", "any", "are", "as", "at", "be", "been", "being", "but", "by",
    "can", "could", "did", "do", "does", "doing", "for", "from", "had", "has", "have", "having",
    "he", "her", "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on",
    "or", "our", "she", "should", "so", "some", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "to", "was", "we", "were", "what", "when", "where",
    "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your",
];

pub(crate) fn is_stopword(w: &str) -> bool {
    STOPWORDS.binary_search(&w).is_ok()
}

/// Counts changes to the chunks, in the transaction that makes them, so a
/// derived copy (the HNSW sidecar) can tell it is current without listing
/// every chunk id.
fn bump_chunks_version(tx: &rusqlite::Transaction) -> Result<(), RagError> {
    tx.execute(
        "INSERT INTO meta(key, value) VALUES ('chunks_version', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        [],
    )
    .map_err(sql("writing the chunks version"))?;
    Ok(())
}

fn delete_doc(tx: &rusqlite::Transaction, path: &str) -> Result<bool, RagError> {
    let id: Option<i64> = tx
        .query_row("SELECT id FROM documents WHERE path = ?1", [path], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql("finding a document"))?;
    let Some(id) = id else { return Ok(false) };
    tx.execute("DELETE FROM chunks WHERE doc_id = ?1", [id])
        .map_err(sql("deleting chunks"))?;
    tx.execute("DELETE FROM documents WHERE id = ?1", [id])
        .map_err(sql("deleting a document"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopword_list_is_sorted_for_binary_search() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(is_stopword("the") && is_stopword("how") && !is_stopword("json"));
    }

    #[test]
    fn bm25_ignores_function_words_unless_that_is_all_there_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ix = Index::open(&dir.path().join("t.sqlite")).expect("open");
        let chunk = |t: &str| Chunk {
            text: t.into(),
            heading: String::new(),
            line_start: 1,
            line_end: 1,
        };
        ix.put_document(
            "a",
            "h1",
            "text",
            1,
            &[chunk("how to parse json in the shell")],
            &[vec![1.0]],
        )
        .expect("put");
        ix.put_document(
            "b",
            "h2",
            "text",
            1,
            &[chunk("to be or not to be")],
            &[vec![1.0]],
        )
        .expect("put");
        let hits = ix.bm25("how do I parse JSON?", 5).expect("bm25");
        assert_eq!(hits.len(), 1, "{hits:?}");
        let hits = ix.bm25("to be", 5).expect("bm25");
        assert_eq!(hits.len(), 2, "{hits:?}");
    }
}
