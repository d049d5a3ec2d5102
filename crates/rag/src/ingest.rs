//! `ingest`: walk paths, skip files whose content hash is stored, extract,
//! chunk, embed in batches across files, and write each file in its own
//! transaction. Files that were under an ingested root and are gone are
//! removed.

use crate::chunk::{chunk, Chunk, ChunkParams};
use crate::extract::extract;
use crate::index::Index;
use crate::RagError;
use llmos_embed::Embed;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Options for [`ingest`].
#[derive(Clone, Debug)]
pub struct IngestOptions {
    pub chunk: ChunkParams,
    /// Chunks per embedding call (across files).
    pub batch: usize,
    /// Files larger than this are skipped.
    pub max_file_bytes: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            chunk: ChunkParams::default(),
            batch: 64,
            max_file_bytes: 64 << 20,
        }
    }
}

/// What [`ingest`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Files written (new or changed).
    pub added: usize,
    /// Files whose stored hash matched (not re-embedded).
    pub unchanged: usize,
    /// Documents removed because their file is gone.
    pub removed: usize,
    /// Files skipped (binary, too large, unreadable), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    pub chunks: usize,
    pub bytes: u64,
}

/// Progress, reported after each file is written.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub files_done: usize,
    pub files_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// A file read and chunked, waiting for its vectors.
struct Pending {
    path: String,
    hash: String,
    kind: &'static str,
    bytes: u64,
    chunks: Vec<Chunk>,
}

fn hidden(e: &walkdir::DirEntry) -> bool {
    e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.')
}

/// The files under `roots` (hidden files and folders skipped), canonical,
/// sorted, each with its root.
fn walk(roots: &[PathBuf]) -> Result<Vec<(PathBuf, u64)>, RagError> {
    let mut out = Vec::new();
    for root in roots {
        for e in walkdir::WalkDir::new(root)
            .follow_links(true)
            .into_iter()
            .filter_entry(|e| !hidden(e))
        {
            let e = e.map_err(|e| RagError::Io {
                op: "walking",
                path: e.path().map_or_else(|| root.clone(), Path::to_path_buf),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk error")),
            })?;
            if e.file_type().is_file() {
                let len = e.metadata().map_or(0, |m| m.len());
                out.push((e.into_path(), len));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Ingests `roots` (files or folders) into `index`. Calls `on_progress`
/// after each file. If `cancel` is set, stops between files (everything
/// written so far is whole) and returns [`RagError::Interrupted`].
///
/// # Errors
/// Unreadable roots, a model other than the index's, embedding or SQLite
/// errors. Unreadable or binary files inside a folder are skipped, not errors.
pub fn ingest(
    index: &mut Index,
    embedder: &dyn Embed,
    roots: &[PathBuf],
    opts: &IngestOptions,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<IngestReport, RagError> {
    ingest_cancellable(
        index,
        embedder,
        roots,
        opts,
        &AtomicBool::new(false),
        on_progress,
    )
}

/// [`ingest`] with a cancel flag (Ctrl-C).
///
/// # Errors
/// As [`ingest`], plus [`RagError::Interrupted`].
pub fn ingest_cancellable(
    index: &mut Index,
    embedder: &dyn Embed,
    roots: &[PathBuf],
    opts: &IngestOptions,
    cancel: &AtomicBool,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<IngestReport, RagError> {
    index.bind_model(embedder.model_id(), embedder.dim())?;
    let mut canon = Vec::new();
    for r in roots {
        canon.push(std::fs::canonicalize(r).map_err(|e| RagError::Io {
            op: "reading",
            path: r.clone(),
            source: e,
        })?);
    }
    let files = walk(&canon)?;
    let mut report = IngestReport::default();
    let mut prog = Progress {
        files_done: 0,
        files_total: files.len(),
        bytes_done: 0,
        bytes_total: files.iter().map(|f| f.1).sum(),
    };
    on_progress(prog);

    // Removed files: stored under a root, no longer on disk.
    let seen: std::collections::HashSet<String> = files
        .iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    for stored in index.paths()? {
        let under = canon.iter().any(|r| Path::new(&stored).starts_with(r));
        if under && !seen.contains(&stored) && !Path::new(&stored).exists() {
            index.remove_document(&stored)?;
            report.removed += 1;
        }
    }

    let count = |s: &str| embedder.count_tokens(s).saturating_sub(2);
    let mut pending: Vec<Pending> = Vec::new();
    let mut pending_chunks = 0usize;
    for (i, (path, len)) in files.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            flush(
                index,
                embedder,
                &mut pending,
                &mut report,
                &mut prog,
                on_progress,
            )?;
            return Err(RagError::Interrupted);
        }
        let key = path.to_string_lossy().into_owned();
        let skip = |why: String, report: &mut IngestReport| {
            report.skipped.push((path.clone(), why));
        };
        if *len > opts.max_file_bytes {
            skip(
                format!("larger than {} bytes", opts.max_file_bytes),
                &mut report,
            );
            prog.files_done += 1;
            prog.bytes_done += len;
            continue;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                skip(e.to_string(), &mut report);
                prog.files_done += 1;
                continue;
            }
        };
        let hash = format!("{:x}", Sha256::digest(&bytes));
        if index.document(&key)?.is_some_and(|d| d.hash == hash) {
            report.unchanged += 1;
            prog.files_done += 1;
            prog.bytes_done += len;
            on_progress(prog);
            continue;
        }
        let (kind, text) = match extract(path, &bytes) {
            Ok(Some(x)) => x,
            Ok(None) => {
                skip("not text".into(), &mut report);
                prog.files_done += 1;
                prog.bytes_done += len;
                continue;
            }
            Err(e) => {
                skip(e.to_string(), &mut report);
                prog.files_done += 1;
                prog.bytes_done += len;
                continue;
            }
        };
        let chunks = chunk(&text, kind, opts.chunk, &count);
        pending_chunks += chunks.len();
        pending.push(Pending {
            path: key,
            hash,
            kind: kind.as_str(),
            bytes: bytes.len() as u64,
            chunks,
        });
        if pending_chunks >= opts.batch || i + 1 == files.len() {
            flush(
                index,
                embedder,
                &mut pending,
                &mut report,
                &mut prog,
                on_progress,
            )?;
            pending_chunks = 0;
        }
    }
    flush(
        index,
        embedder,
        &mut pending,
        &mut report,
        &mut prog,
        on_progress,
    )?;
    Ok(report)
}

/// Embeds the pending files' chunks in one call, then writes each file in
/// its own transaction.
fn flush(
    index: &mut Index,
    embedder: &dyn Embed,
    pending: &mut Vec<Pending>,
    report: &mut IngestReport,
    prog: &mut Progress,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<(), RagError> {
    if pending.is_empty() {
        return Ok(());
    }
    let texts: Vec<String> = pending
        .iter()
        .flat_map(|p| p.chunks.iter().map(Chunk::embed_text))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut vecs = embedder.embed(&refs)?.into_iter();
    for p in pending.drain(..) {
        let v: Vec<Vec<f32>> = vecs.by_ref().take(p.chunks.len()).collect();
        index.put_document(&p.path, &p.hash, p.kind, p.bytes, &p.chunks, &v)?;
        report.added += 1;
        report.chunks += p.chunks.len();
        report.bytes += p.bytes;
        prog.files_done += 1;
        prog.bytes_done += p.bytes;
        on_progress(*prog);
    }
    Ok(())
}
