//! PostgreSQL + pgvector behind the [`VectorStore`] seam: the external store
//! for an index that outgrows one machine's memory.
//!
//! Only the vectors live in PostgreSQL (one table per index, `id bigint`,
//! `embedding vector(dim)`, an HNSW index on inner product). Documents, chunk
//! text and BM25 stay in the index's SQLite file, which remains the source of
//! truth: [`crate::sync_store`] makes the table hold exactly the SQLite
//! file's chunk ids, so a crash between the two writes heals on the next
//! open. Chunk ids are never reused (see `Index::put_document`), so an id
//! present on both sides always names the same vector.
//!
//! Vectors are unit length (the embedder normalises them), so the inner
//! product is the cosine, and `<#>` (negative inner product) orders them.

use crate::vector::VectorStore;
use crate::RagError;
use pgvector::Vector;
use postgres::{Client, Config, NoTls};
use std::sync::Mutex;

/// A pgvector table.
pub struct PgVectorStore {
    client: Mutex<Client>,
    table: String,
    dim: usize,
    /// Where it points, without a password (for messages).
    display: String,
}

fn err(what: &str) -> impl Fn(postgres::Error) -> RagError + '_ {
    move |e| RagError::Store {
        msg: format!("postgres: {what}: {}", pg_message(&e)),
    }
}

/// The server's own message when there is one (the `Display` of
/// `postgres::Error` says only "db error").
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

/// Is `t` a plain lower-case SQL identifier we may splice into statements?
fn valid_table(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 63
        && t.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `url` with any password removed, for messages and for storing in an index.
pub fn redact(url: &str) -> String {
    // postgres://user:secret@host/db → postgres://user@host/db
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let user = user.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        _ => url.to_string(),
    }
}

impl PgVectorStore {
    /// Connects to `url` (`postgres://user@host:port/db`, or key=value
    /// form), creating the `vector` extension, the table and its HNSW index
    /// if needed. A password missing from the URL is taken from `PGPASSWORD`.
    ///
    /// # Errors
    /// [`RagError::Store`]: the URL does not parse, the server cannot be
    /// reached, pgvector is not installed there, or the table exists with
    /// another width.
    pub fn connect(url: &str, table: &str, dim: usize) -> Result<PgVectorStore, RagError> {
        let display = redact(url);
        if !valid_table(table) {
            return Err(RagError::Store {
                msg: format!(
                    "table name {table:?}: use lower-case letters, digits and '_' (at most 63)"
                ),
            });
        }
        let mut cfg: Config = url.parse().map_err(|e: postgres::Error| RagError::Store {
            msg: format!(
                "vector store URL {display:?}: {e}; expected postgres://USER@HOST:PORT/DATABASE"
            ),
        })?;
        if cfg.get_password().is_none() {
            if let Ok(pw) = std::env::var("PGPASSWORD") {
                cfg.password(pw);
            }
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(std::time::Duration::from_secs(10));
        }
        let mut client = cfg.connect(NoTls).map_err(|e| RagError::Store {
            msg: format!(
                "connecting to {display}: {}; is the server running, and is the URL right?",
                pg_message(&e)
            ),
        })?;
        client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
            .map_err(|e| RagError::Store {
                msg: format!(
                    "{display}: enabling pgvector: {}; install pgvector on the server (https://github.com/pgvector/pgvector)",
                    pg_message(&e)
                ),
            })?;
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY, embedding vector({dim}) NOT NULL);
                 CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} USING hnsw (embedding vector_ip_ops);"
            ))
            .map_err(err("creating the table"))?;
        // A table made earlier with another width cannot hold these vectors.
        let have: i32 = client
            .query_one(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = $1::text::regclass AND attname = 'embedding'",
                &[&table],
            )
            .map_err(err("reading the table's width"))?
            .get(0);
        if have != dim as i32 {
            return Err(RagError::Store {
                msg: format!(
                    "{display}: table {table} holds vectors of width {have}, this index has width {dim}; drop the table or use another index"
                ),
            });
        }
        Ok(PgVectorStore {
            client: Mutex::new(client),
            table: table.to_string(),
            dim,
            display,
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Where it points (no password).
    pub fn url(&self) -> &str {
        &self.display
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        // A poisoned lock only means another thread panicked mid-query; the
        // connection itself is still usable (postgres rolls back).
        self.client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check(&self, v: &[f32]) -> Result<(), RagError> {
        if v.len() != self.dim {
            return Err(RagError::Dim {
                expected: self.dim,
                got: v.len(),
            });
        }
        Ok(())
    }

    /// Drops the table (for tests and `--vector-store` changes).
    ///
    /// # Errors
    /// Server errors.
    pub fn drop_table(self) -> Result<(), RagError> {
        let t = self.table.clone();
        self.client()
            .batch_execute(&format!("DROP TABLE IF EXISTS {t}"))
            .map_err(err("dropping the table"))
    }
}

impl VectorStore for PgVectorStore {
    fn upsert(&mut self, items: &[(i64, &[f32])]) -> Result<(), RagError> {
        for (_, v) in items {
            self.check(v)?;
        }
        let t = self.table.clone();
        let mut c = self.client();
        let mut tx = c.transaction().map_err(err("beginning a transaction"))?;
        let st = tx
            .prepare(&format!(
                "INSERT INTO {t} (id, embedding) SELECT * FROM unnest($1::bigint[], $2::vector[])
                 ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding"
            ))
            .map_err(err("preparing an upsert"))?;
        for part in items.chunks(512) {
            let ids: Vec<i64> = part.iter().map(|p| p.0).collect();
            let vs: Vec<Vector> = part.iter().map(|p| Vector::from(p.1.to_vec())).collect();
            tx.execute(&st, &[&ids, &vs])
                .map_err(err("upserting vectors"))?;
        }
        tx.commit().map_err(err("committing vectors"))
    }

    fn delete(&mut self, ids: &[i64]) -> Result<(), RagError> {
        let t = self.table.clone();
        let mut c = self.client();
        for part in ids.chunks(10_000) {
            c.execute(&format!("DELETE FROM {t} WHERE id = ANY($1)"), &[&part])
                .map_err(err("deleting vectors"))?;
        }
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(i64, f32)>, RagError> {
        self.check(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut c = self.client();
        // HNSW returns at most ef_search rows (default 40); look at least k deep.
        let ef = k.clamp(40, 1000);
        let mut tx = c.transaction().map_err(err("beginning a search"))?;
        tx.batch_execute(&format!("SET LOCAL hnsw.ef_search = {ef}"))
            .map_err(err("setting hnsw.ef_search"))?;
        let q = Vector::from(query.to_vec());
        let rows = tx
            .query(
                &format!(
                    "SELECT id, (embedding <#> $1) * -1 FROM {} ORDER BY embedding <#> $1 LIMIT $2",
                    self.table
                ),
                &[&q, &(k as i64)],
            )
            .map_err(err("searching"))?;
        tx.commit().map_err(err("ending a search"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, f64>(1) as f32))
            .collect())
    }

    fn len(&self) -> Result<usize, RagError> {
        let n: i64 = self
            .client()
            .query_one(&format!("SELECT count(*) FROM {}", self.table), &[])
            .map_err(err("counting vectors"))?
            .get(0);
        Ok(n as usize)
    }

    fn ids(&self) -> Result<Vec<i64>, RagError> {
        let rows = self
            .client()
            .query(&format!("SELECT id FROM {}", self.table), &[])
            .map_err(err("listing ids"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn describe(&self) -> String {
        format!(
            "postgres pgvector (HNSW) table {} at {}",
            self.table, self.display
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_the_password_only() {
        assert_eq!(
            redact("postgres://me:s3cret@db.local:5432/x"),
            "postgres://me@db.local:5432/x"
        );
        assert_eq!(redact("postgres://me@h/x"), "postgres://me@h/x");
        assert_eq!(redact("host=h user=u"), "host=h user=u");
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        assert!(valid_table("llmos_notes_1a2b"));
        assert!(!valid_table("Notes"));
        assert!(!valid_table("x; DROP TABLE y"));
        assert!(!valid_table("1abc"));
        assert!(!valid_table(&"a".repeat(64)));
    }

    #[test]
    fn bad_urls_and_tables_are_clear_errors() {
        let e = PgVectorStore::connect("postgres://u@h/db", "Bad Name", 3)
            .err()
            .expect("bad table")
            .to_string();
        assert!(e.contains("table name"), "{e}");
        let e = PgVectorStore::connect("not a url at all ===", "t", 3)
            .err()
            .expect("bad url")
            .to_string();
        assert!(e.contains("vector store URL"), "{e}");
    }
}
