//! The recall store: every message of every agent session, verbatim, in one
//! SQLite file (`$LLMOS_HOME/sessions.sqlite`), with FTS5 over the messages,
//! the summaries of what was paged out of the prompt, and archival notes.
//!
//! Crash safety: WAL with `synchronous=FULL`, and every write is one
//! transaction, committed before the caller shows it. A message is stored
//! when it is produced, so a killed run loses nothing it already printed;
//! paging a range out (mark the messages, add the summary) is one
//! transaction, so a crash leaves either the old prompt or the new one.

use llmos_text::Message;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RecallError {
    #[error("recall store {path}: {op}: {source}")]
    Sql {
        path: PathBuf,
        op: &'static str,
        source: rusqlite::Error,
    },
    #[error("no session named {0:?} (see `llmos sessions list`)")]
    NoSession(String),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id           INTEGER PRIMARY KEY,
    session      INTEGER NOT NULL REFERENCES sessions(id),
    seq          INTEGER NOT NULL,            -- 1, 2, .. within the session
    turn         INTEGER NOT NULL,            -- the user task it belongs to (1-based)
    role         TEXT NOT NULL,
    name         TEXT,
    tool_call_id TEXT,
    content      TEXT NOT NULL,
    untrusted    INTEGER NOT NULL,            -- text from a tool / outside source
    paged        INTEGER NOT NULL DEFAULT 0,  -- 1: out of the prompt (summarised)
    created      REAL NOT NULL,
    UNIQUE (session, seq)
);
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts
    USING fts5(content, content='messages', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS messages_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER IF NOT EXISTS messages_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TABLE IF NOT EXISTS summaries (
    id          INTEGER PRIMARY KEY,
    session     INTEGER NOT NULL REFERENCES sessions(id),
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    first_turn  INTEGER NOT NULL,
    last_turn   INTEGER NOT NULL,
    text        TEXT NOT NULL,
    untrusted   INTEGER NOT NULL,
    merged_into INTEGER,                      -- set when folded into a newer summary
    created     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS archival (
    id        INTEGER PRIMARY KEY,
    session   INTEGER NOT NULL REFERENCES sessions(id),
    text      TEXT NOT NULL,
    untrusted INTEGER NOT NULL,
    created   REAL NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS archival_fts
    USING fts5(text, content='archival', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS archival_ai AFTER INSERT ON archival BEGIN
    INSERT INTO archival_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS archival_ad AFTER DELETE ON archival BEGIN
    INSERT INTO archival_fts(archival_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
";

/// A stored message.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    pub seq: i64,
    pub turn: i64,
    pub message: Message,
    pub untrusted: bool,
    pub paged: bool,
}

/// A summary of a paged-out range.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub id: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    pub first_turn: i64,
    pub last_turn: i64,
    pub text: String,
    pub untrusted: bool,
}

/// One line of `llmos sessions list`.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub name: String,
    pub messages: i64,
    pub paged: i64,
    pub turns: i64,
    pub archival: i64,
    /// Seconds since the Unix epoch.
    pub updated: f64,
}

/// An archival note.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub id: i64,
    pub text: String,
    pub untrusted: bool,
}

/// The SQLite recall store.
pub struct RecallStore {
    conn: Connection,
    path: PathBuf,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A free-text query as an FTS5 expression: its words, quoted, OR-ed
/// (quoting makes any punctuation the model writes harmless).
pub fn fts_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}

impl RecallStore {
    /// Opens (creating) the store at `path`.
    ///
    /// # Errors
    /// The file cannot be opened or its schema created.
    pub fn open(path: &Path) -> Result<RecallStore, RecallError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(|source| RecallError::Sql {
            path: path.into(),
            op: "open",
            source,
        })?;
        RecallStore::init(conn, path.into())
    }

    /// A store that lives only as long as the process (tests, runs without a session).
    ///
    /// # Errors
    /// SQLite cannot create the schema.
    pub fn in_memory() -> Result<RecallStore, RecallError> {
        let conn = Connection::open_in_memory().map_err(|source| RecallError::Sql {
            path: ":memory:".into(),
            op: "open",
            source,
        })?;
        RecallStore::init(conn, ":memory:".into())
    }

    fn init(conn: Connection, path: PathBuf) -> Result<RecallStore, RecallError> {
        let s = RecallStore { conn, path };
        // WAL: readers never block the writer; FULL: a committed message
        // survives a power cut, not just a killed process.
        s.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(s.err("set WAL"))?;
        s.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(s.err("set synchronous"))?;
        s.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(s.err("set busy timeout"))?;
        s.conn
            .execute_batch(SCHEMA)
            .map_err(s.err("create schema"))?;
        Ok(s)
    }

    fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> RecallError + '_ {
        move |source| RecallError::Sql {
            path: self.path.clone(),
            op,
            source,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of session `name`, created if `create`.
    ///
    /// # Errors
    /// SQLite failed, or the session does not exist and `create` is false.
    pub fn session(&self, name: &str, create: bool) -> Result<i64, RecallError> {
        let id: Option<i64> = self
            .conn
            .query_row("SELECT id FROM sessions WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err("find session"))?;
        match id {
            Some(id) => Ok(id),
            None if create => {
                let t = now();
                self.conn
                    .execute(
                        "INSERT INTO sessions (name, created, updated) VALUES (?1, ?2, ?2)",
                        params![name, t],
                    )
                    .map_err(self.err("create session"))?;
                Ok(self.conn.last_insert_rowid())
            }
            None => Err(RecallError::NoSession(name.into())),
        }
    }

    /// Every session, most recently used first.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn sessions(&self) -> Result<Vec<SessionInfo>, RecallError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT s.name, s.updated,
                    (SELECT count(*) FROM messages m WHERE m.session = s.id),
                    (SELECT count(*) FROM messages m WHERE m.session = s.id AND m.paged = 1),
                    (SELECT coalesce(max(turn), 0) FROM messages m WHERE m.session = s.id),
                    (SELECT count(*) FROM archival a WHERE a.session = s.id)
                 FROM sessions s ORDER BY s.updated DESC",
            )
            .map_err(self.err("list sessions"))?;
        let rows = st
            .query_map([], |r| {
                Ok(SessionInfo {
                    name: r.get(0)?,
                    updated: r.get(1)?,
                    messages: r.get(2)?,
                    paged: r.get(3)?,
                    turns: r.get(4)?,
                    archival: r.get(5)?,
                })
            })
            .map_err(self.err("list sessions"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("list sessions"))
    }

    /// Deletes a session and everything it holds; false if there was none.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn remove(&mut self, name: &str) -> Result<bool, RecallError> {
        let path = self.path.clone();
        let e = move |op| {
            let path = path.clone();
            move |source| RecallError::Sql {
                path: path.clone(),
                op,
                source,
            }
        };
        let tx = self.conn.transaction().map_err(e("remove session"))?;
        let id: Option<i64> = tx
            .query_row("SELECT id FROM sessions WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(e("remove session"))?;
        let Some(id) = id else { return Ok(false) };
        for sql in [
            "DELETE FROM messages WHERE session = ?1",
            "DELETE FROM summaries WHERE session = ?1",
            "DELETE FROM archival WHERE session = ?1",
            "DELETE FROM sessions WHERE id = ?1",
        ] {
            tx.execute(sql, [id]).map_err(e("remove session"))?;
        }
        tx.commit().map_err(e("remove session"))?;
        Ok(true)
    }

    /// The next user turn's number in `session`.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn next_turn(&self, session: i64) -> Result<i64, RecallError> {
        self.conn
            .query_row(
                "SELECT coalesce(max(turn), 0) + 1 FROM messages WHERE session = ?1",
                [session],
                |r| r.get(0),
            )
            .map_err(self.err("next turn"))
    }

    /// Appends a message (committed on return); its sequence number.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn append(
        &mut self,
        session: i64,
        turn: i64,
        m: &Message,
        untrusted: bool,
    ) -> Result<i64, RecallError> {
        let path = self.path.clone();
        let e = |source| RecallError::Sql {
            path: path.clone(),
            op: "append message",
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let seq: i64 = tx
            .query_row(
                "SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE session = ?1",
                [session],
                |r| r.get(0),
            )
            .map_err(e)?;
        let t = now();
        tx.execute(
            "INSERT INTO messages (session, seq, turn, role, name, tool_call_id, content, untrusted, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![session, seq, turn, m.role, m.name, m.tool_call_id, m.content, untrusted, t],
        )
        .map_err(e)?;
        tx.execute(
            "UPDATE sessions SET updated = ?2 WHERE id = ?1",
            params![session, t],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(seq)
    }

    fn rows(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Stored>, RecallError> {
        let mut st = self.conn.prepare(sql).map_err(self.err("read messages"))?;
        let rows = st
            .query_map(p, |r| {
                Ok(Stored {
                    seq: r.get(0)?,
                    turn: r.get(1)?,
                    message: Message {
                        role: r.get(2)?,
                        name: r.get(3)?,
                        tool_call_id: r.get(4)?,
                        content: r.get(5)?,
                        tool_calls: None,
                    },
                    untrusted: r.get(6)?,
                    paged: r.get(7)?,
                })
            })
            .map_err(self.err("read messages"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("read messages"))
    }

    /// Every message of `session`, in order.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn messages(&self, session: i64) -> Result<Vec<Stored>, RecallError> {
        self.rows(
            "SELECT seq, turn, role, name, tool_call_id, content, untrusted, paged
             FROM messages WHERE session = ?1 ORDER BY seq",
            [session],
        )
    }

    /// FTS5 search over `session`'s messages (only the paged-out ones if
    /// `paged_only`), best first.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn search(
        &self,
        session: i64,
        query: &str,
        paged_only: bool,
        limit: usize,
    ) -> Result<Vec<Stored>, RecallError> {
        let Some(q) = fts_query(query) else {
            return Ok(Vec::new());
        };
        self.rows(
            "SELECT m.seq, m.turn, m.role, m.name, m.tool_call_id, m.content, m.untrusted, m.paged
             FROM messages_fts f JOIN messages m ON m.id = f.rowid
             WHERE messages_fts MATCH ?1 AND m.session = ?2 AND (m.paged = 1 OR ?3 = 0)
             ORDER BY bm25(messages_fts), m.seq LIMIT ?4",
            params![q, session, paged_only, limit as i64],
        )
    }

    /// The live (not merged) summaries of `session`, oldest first.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn summaries(&self, session: i64) -> Result<Vec<Summary>, RecallError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, first_seq, last_seq, first_turn, last_turn, text, untrusted
                 FROM summaries WHERE session = ?1 AND merged_into IS NULL ORDER BY first_seq",
            )
            .map_err(self.err("read summaries"))?;
        let rows = st
            .query_map([session], |r| {
                Ok(Summary {
                    id: r.get(0)?,
                    first_seq: r.get(1)?,
                    last_seq: r.get(2)?,
                    first_turn: r.get(3)?,
                    last_turn: r.get(4)?,
                    text: r.get(5)?,
                    untrusted: r.get(6)?,
                })
            })
            .map_err(self.err("read summaries"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("read summaries"))
    }

    /// Pages messages `seqs` out of the prompt and records their summary, in
    /// one transaction. The summary is untrusted if any message was.
    ///
    /// # Errors
    /// SQLite failed (nothing changed).
    pub fn page_out(
        &mut self,
        session: i64,
        seqs: &[i64],
        summary: &str,
    ) -> Result<Summary, RecallError> {
        let path = self.path.clone();
        let e = |source| RecallError::Sql {
            path: path.clone(),
            op: "page out",
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        let (mut t0, mut t1) = (i64::MAX, i64::MIN);
        let mut untrusted = false;
        for &s in seqs {
            let (turn, u): (i64, bool) = tx
                .query_row(
                    "UPDATE messages SET paged = 1 WHERE session = ?1 AND seq = ?2 RETURNING turn, untrusted",
                    params![session, s],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(e)?;
            first = first.min(s);
            last = last.max(s);
            t0 = t0.min(turn);
            t1 = t1.max(turn);
            untrusted |= u;
        }
        let sum =
            insert_summary(&tx, session, (first, last), (t0, t1), summary, untrusted).map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(sum)
    }

    /// Folds summaries `ids` into one new summary `text` (recursive
    /// summarisation), in one transaction; the old ones stay, marked merged.
    ///
    /// # Errors
    /// SQLite failed (nothing changed).
    pub fn merge_summaries(
        &mut self,
        session: i64,
        old: &[Summary],
        text: &str,
    ) -> Result<Summary, RecallError> {
        let path = self.path.clone();
        let e = |source| RecallError::Sql {
            path: path.clone(),
            op: "merge summaries",
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let first = old.iter().map(|s| s.first_seq).min().unwrap_or(0);
        let last = old.iter().map(|s| s.last_seq).max().unwrap_or(0);
        let t0 = old.iter().map(|s| s.first_turn).min().unwrap_or(0);
        let t1 = old.iter().map(|s| s.last_turn).max().unwrap_or(0);
        let untrusted = old.iter().any(|s| s.untrusted);
        let sum =
            insert_summary(&tx, session, (first, last), (t0, t1), text, untrusted).map_err(e)?;
        for s in old {
            tx.execute(
                "UPDATE summaries SET merged_into = ?1 WHERE id = ?2",
                params![sum.id, s.id],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(sum)
    }

    /// Adds an archival note; its id.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn archival_insert(
        &self,
        session: i64,
        text: &str,
        untrusted: bool,
    ) -> Result<i64, RecallError> {
        self.conn
            .execute(
                "INSERT INTO archival (session, text, untrusted, created) VALUES (?1, ?2, ?3, ?4)",
                params![session, text, untrusted, now()],
            )
            .map_err(self.err("archival insert"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// FTS5 search over `session`'s archival notes, best first.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn archival_search(
        &self,
        session: i64,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Note>, RecallError> {
        let Some(q) = fts_query(query) else {
            return Ok(Vec::new());
        };
        let mut st = self
            .conn
            .prepare(
                "SELECT a.id, a.text, a.untrusted FROM archival_fts f JOIN archival a ON a.id = f.rowid
                 WHERE archival_fts MATCH ?1 AND a.session = ?2
                 ORDER BY bm25(archival_fts), a.id LIMIT ?3",
            )
            .map_err(self.err("archival search"))?;
        let rows = st
            .query_map(params![q, session, limit as i64], |r| {
                Ok(Note {
                    id: r.get(0)?,
                    text: r.get(1)?,
                    untrusted: r.get(2)?,
                })
            })
            .map_err(self.err("archival search"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("archival search"))
    }

    /// Every archival note of `session`, oldest first.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn archival(&self, session: i64) -> Result<Vec<Note>, RecallError> {
        let mut st = self
            .conn
            .prepare("SELECT id, text, untrusted FROM archival WHERE session = ?1 ORDER BY id")
            .map_err(self.err("archival list"))?;
        let rows = st
            .query_map([session], |r| {
                Ok(Note {
                    id: r.get(0)?,
                    text: r.get(1)?,
                    untrusted: r.get(2)?,
                })
            })
            .map_err(self.err("archival list"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("archival list"))
    }
}

fn insert_summary(
    tx: &Transaction,
    session: i64,
    (first_seq, last_seq): (i64, i64),
    (first_turn, last_turn): (i64, i64),
    text: &str,
    untrusted: bool,
) -> Result<Summary, rusqlite::Error> {
    tx.execute(
        "INSERT INTO summaries (session, first_seq, last_seq, first_turn, last_turn, text, untrusted, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![session, first_seq, last_seq, first_turn, last_turn, text, untrusted, now()],
    )?;
    Ok(Summary {
        id: tx.last_insert_rowid(),
        first_seq,
        last_seq,
        first_turn,
        last_turn,
        text: text.into(),
        untrusted,
    })
}
