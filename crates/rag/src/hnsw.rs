//! The embedded approximate index: HNSW (USearch) in a sidecar of the
//! index's SQLite file, for indexes past the exact-search crossover
//! ([`crate::HNSW_MIN_VECTORS`]).
//!
//! The SQLite file stays the source of truth; the sidecar is a derived cache
//! and may be deleted at any time. It is two files next to `NAME.sqlite`:
//!
//! - `NAME.sqlite.hnsw`: the USearch graph and vectors (f16, inner product),
//!   opened with a memory-mapped `view` when it is current, so opening a
//!   1M-vector index reads neither the vectors from SQLite nor the file;
//! - `NAME.sqlite.hnsw.meta`: what the graph holds (its chunk ids, the
//!   embedding model, width and build parameters) and the identity of the
//!   graph file it describes (inode, length, mtime), sealed by a SHA-256.
//!
//! On open the meta's ids are compared with the index's chunk ids; ids are
//! never reused (`chunk_id_hwm`), so equal ids mean equal vectors, and the
//! difference is exactly what to add and remove ([`crate::sync_store`]). A
//! sidecar that is missing, unreadable, corrupt, of another model or width,
//! or whose two files do not belong together is rebuilt from SQLite, with a
//! line on stderr, never an error.
//!
//! Both files are written as temp files in the same directory, fsynced and
//! renamed over the old ones (graph first, then meta), so an interrupted write
//! leaves the old pair, or a new graph with the old meta, whose recorded
//! identity then no longer matches: rebuilt, never trusted. Temp files of
//! processes that no longer run are removed on the next open.

use crate::vector::VectorStore;
use crate::{Index, RagError};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use usearch::{IndexOptions, MetricKind, ScalarKind};

/// HNSW build and search parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    /// Graph degree (`M`): links per node on the upper levels, twice that on
    /// level 0.
    pub connectivity: usize,
    /// Candidate list while inserting (`efConstruction`).
    pub ef_add: usize,
    /// Candidate list while searching (`ef`); a search for more than this
    /// many hits looks `k` deep instead.
    pub ef_search: usize,
}

impl Default for HnswParams {
    /// M=16, efConstruction=128, ef=96: recall@10 0.999 at 100k and 300k
    /// embedding-like vectors and 0.989 at 1M against exact search, in
    /// 0.1–0.2 ms (BENCHMARKS.md, "Query latency and the exact-search
    /// crossover"); ef 256 gains half a point at 1M for twice the time.
    fn default() -> HnswParams {
        HnswParams {
            connectivity: 16,
            ef_add: 128,
            ef_search: 96,
        }
    }
}

/// Format of the `.meta` file (bumped when its layout changes).
const META_MAGIC: &[u8; 8] = b"LLMHNSW\x01";

/// The graph file next to an index file: `NAME.sqlite.hnsw`.
pub fn sidecar_path(index_path: &Path) -> PathBuf {
    let mut s = index_path.as_os_str().to_os_string();
    s.push(".hnsw");
    PathBuf::from(s)
}

fn meta_path(graph: &Path) -> PathBuf {
    let mut s = graph.as_os_str().to_os_string();
    s.push(".meta");
    PathBuf::from(s)
}

/// What identifies one graph file: a rewritten file has another inode (it
/// was created while the old one still existed), a truncated one another
/// length or mtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    len: u64,
    ino: u64,
    mtime_ns: i64,
}

fn file_id(path: &Path) -> std::io::Result<FileId> {
    let m = std::fs::metadata(path)?;
    #[cfg(unix)]
    let (ino, mtime_ns) = {
        use std::os::unix::fs::MetadataExt;
        (m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec())
    };
    #[cfg(not(unix))]
    let (ino, mtime_ns) = (
        0,
        m.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64),
    );
    Ok(FileId {
        len: m.len(),
        ino,
        mtime_ns,
    })
}

/// The decoded `.meta` file.
#[derive(Debug, PartialEq)]
struct Meta {
    model: String,
    /// The index's chunks version the ids were taken at.
    version: String,
    dim: usize,
    params: HnswParams,
    graph: FileId,
    /// Sorted.
    ids: Vec<i64>,
}

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(128 + self.ids.len() * 8);
        b.extend_from_slice(META_MAGIC);
        b.extend_from_slice(&(self.model.len() as u64).to_le_bytes());
        b.extend_from_slice(self.model.as_bytes());
        b.extend_from_slice(&(self.version.len() as u64).to_le_bytes());
        b.extend_from_slice(self.version.as_bytes());
        for x in [
            self.dim as u64,
            self.params.connectivity as u64,
            self.params.ef_add as u64,
            self.graph.len,
            self.graph.ino,
            self.graph.mtime_ns as u64,
            self.ids.len() as u64,
        ] {
            b.extend_from_slice(&x.to_le_bytes());
        }
        for id in &self.ids {
            b.extend_from_slice(&id.to_le_bytes());
        }
        let seal = Sha256::digest(&b);
        b.extend_from_slice(&seal);
        b
    }

    fn decode(b: &[u8]) -> Result<Meta, String> {
        if b.len() < META_MAGIC.len() + 32 || &b[..META_MAGIC.len()] != META_MAGIC {
            return Err("not an llmos HNSW meta file (or another version)".into());
        }
        let (body, seal) = b.split_at(b.len() - 32);
        if Sha256::digest(body).as_slice() != seal {
            return Err("checksum mismatch (truncated or corrupt)".into());
        }
        let mut at = META_MAGIC.len();
        let u64_at = |at: &mut usize| -> Result<u64, String> {
            let s = body.get(*at..*at + 8).ok_or("too short")?;
            *at += 8;
            Ok(u64::from_le_bytes(s.try_into().map_err(|_| "too short")?))
        };
        let string_at = |at: &mut usize| -> Result<String, String> {
            let n = u64_at(at)? as usize;
            let s = body
                .get(*at..at.saturating_add(n))
                .ok_or("too short")
                .and_then(|s| std::str::from_utf8(s).map_err(|_| "a name is not UTF-8"))?
                .to_string();
            *at += n;
            Ok(s)
        };
        let model = string_at(&mut at)?;
        let version = string_at(&mut at)?;
        let dim = u64_at(&mut at)? as usize;
        let connectivity = u64_at(&mut at)? as usize;
        let ef_add = u64_at(&mut at)? as usize;
        let graph = FileId {
            len: u64_at(&mut at)?,
            ino: u64_at(&mut at)?,
            mtime_ns: u64_at(&mut at)? as i64,
        };
        let count = u64_at(&mut at)? as usize;
        if body.len() - at != count.saturating_mul(8) {
            return Err(format!(
                "{count} ids recorded, {} bytes of them",
                body.len() - at
            ));
        }
        let ids = body[at..]
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Ok(Meta {
            model,
            version,
            dim,
            params: HnswParams {
                connectivity,
                ef_add,
                ef_search: 0,
            },
            graph,
            ids,
        })
    }
}

/// The sidecar's meta: `Ok(None)` when there is no sidecar at all,
/// `Err(why)` when it cannot be read or decoded.
fn read_meta(graph: &Path) -> Result<Option<Meta>, String> {
    let mp = meta_path(graph);
    let bytes = match std::fs::read(&mp) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !graph.exists() => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", mp.display())),
    };
    Meta::decode(&bytes)
        .map(Some)
        .map_err(|e| format!("{}: {e}", mp.display()))
}

/// An HNSW index (USearch) over an index's chunk vectors, cached in a
/// sidecar file ([`sidecar_path`]).
pub struct HnswStore {
    index: usearch::Index,
    dim: usize,
    params: HnswParams,
    /// `embedding_model` of the SQLite index when built ("" for an empty one).
    model: String,
    /// [`Index::chunks_version`] when the ids were last made equal to the
    /// index's; "" once changed by anything else.
    version: String,
    /// Sorted: the chunk ids in the graph.
    ids: Vec<i64>,
    /// The sidecar graph file.
    path: PathBuf,
    /// Memory-mapped from `path` (read-only) rather than loaded.
    viewed: bool,
}

fn store_err(path: &Path, what: &str, e: impl std::fmt::Display) -> RagError {
    RagError::Store {
        msg: format!("HNSW {}: {what}: {e}", path.display()),
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> RagError + 'a {
    move |e| RagError::Io {
        op,
        path: path.to_path_buf(),
        source: e,
    }
}

fn key(id: i64) -> Result<u64, RagError> {
    u64::try_from(id).map_err(|_| RagError::Store {
        msg: format!("HNSW: chunk id {id} is negative"),
    })
}

impl HnswStore {
    /// An empty in-memory index whose sidecar will be `path`.
    ///
    /// # Errors
    /// [`RagError::Store`] when USearch cannot create it.
    pub fn new(
        path: &Path,
        dim: usize,
        model: &str,
        params: HnswParams,
    ) -> Result<HnswStore, RagError> {
        let index = usearch::Index::new(&options(dim, params))
            .map_err(|e| store_err(path, "creating the index", e))?;
        Ok(HnswStore {
            index,
            dim,
            params,
            model: model.to_string(),
            version: String::new(),
            ids: Vec::new(),
            path: path.to_path_buf(),
            viewed: false,
        })
    }

    /// Opens the sidecar of `index` and brings it in step with the index's
    /// chunks, rebuilding it from SQLite when it is missing or unusable
    /// (saying why on stderr) and saving it when anything changed.
    ///
    /// # Errors
    /// SQLite errors (a sidecar that cannot be written is said on stderr).
    pub fn open(index: &Index, dim: usize, params: HnswParams) -> Result<HnswStore, RagError> {
        let path = sidecar_path(index.path());
        remove_stale_temps(&path);
        let model = index.meta("embedding_model")?.unwrap_or_default();
        // Read before the ids: a write in between leaves an older version
        // recorded, so the next open looks again.
        let version = index.chunks_version()?;
        let sorted_ids = || -> Result<Vec<i64>, RagError> {
            let mut v = index.chunk_ids()?;
            // Read in document order, which is nearly id order: a stable
            // sort merges the runs.
            v.sort();
            Ok(v)
        };
        let found = match read_meta(&path) {
            Ok(Some(meta)) => {
                // The same chunks version: current without listing the ids.
                let current = meta.version == version || meta.ids == sorted_ids()?;
                Self::attach(&path, dim, &model, params, meta, current)
            }
            Ok(None) => Ok(None),
            Err(why) => Err(why),
        };
        let mut store = match found {
            Ok(Some(s)) => s,
            Ok(None) => {
                if index.chunk_count()? > 0 {
                    eprintln!("building the HNSW index {}", path.display());
                }
                Self::new(&path, dim, &model, params)?
            }
            Err(why) => {
                eprintln!(
                    "HNSW index {}: {why}; rebuilding it from {}",
                    path.display(),
                    index.path().display()
                );
                Self::new(&path, dim, &model, params)?
            }
        };
        // The sidecar is a cache: one that cannot be written (a read-only
        // directory, a full disk) costs the next open a rebuild, not this
        // search its answer.
        let unsaved = |e: RagError| {
            eprintln!(
                "HNSW index {}: not saved ({e}); searching it from memory",
                path.display()
            );
        };
        if store.viewed {
            // Current; record the version when it was found current by ids.
            if store.version != version {
                store.version = version;
                store.write_meta_only().unwrap_or_else(unsaved);
            }
        } else {
            crate::sync_store(index, &mut store, dim)?;
            store.version = version;
            store.save().unwrap_or_else(unsaved);
        }
        Ok(store)
    }

    /// Checks a sidecar against its meta and the index: `Err(why)` when it
    /// cannot be used. A `current` one is viewed (mmap), a stale one loaded
    /// so it can be changed.
    fn attach(
        path: &Path,
        dim: usize,
        model: &str,
        params: HnswParams,
        meta: Meta,
        current: bool,
    ) -> Result<Option<HnswStore>, String> {
        if meta.model != model || meta.dim != dim {
            return Err(format!(
                "built for embedding model {:?} (width {}), the index holds {model:?} (width {dim})",
                meta.model, meta.dim
            ));
        }
        if meta.params.connectivity != params.connectivity || meta.params.ef_add != params.ef_add {
            return Err(format!(
                "built with M={} efConstruction={}, now M={} efConstruction={}",
                meta.params.connectivity, meta.params.ef_add, params.connectivity, params.ef_add
            ));
        }
        let before = file_id(path).map_err(|e| format!("{e}"))?;
        if before != meta.graph {
            return Err("the graph file is not the one its meta describes \
                        (interrupted write, or changed by hand)"
                .into());
        }
        let ix = usearch::Index::new(&options(dim, params)).map_err(|e| e.to_string())?;
        let p = path.to_str().ok_or("path is not UTF-8")?;
        if current { ix.view(p) } else { ix.load(p) }.map_err(|e| format!("reading: {e}"))?;
        // The file may have been replaced between the check and the read.
        if file_id(path).map_err(|e| format!("{e}"))? != before {
            return Err("replaced while being read".into());
        }
        if ix.dimensions() != dim || ix.size() != meta.ids.len() {
            return Err(format!(
                "holds {} vectors of width {}, its meta says {} of width {dim}",
                ix.size(),
                ix.dimensions(),
                meta.ids.len()
            ));
        }
        if !current && !meta.ids.iter().all(|&id| ix.contains(id as u64)) {
            return Err("its ids differ from its meta".into());
        }
        ix.change_expansion_search(params.ef_search);
        Ok(Some(HnswStore {
            index: ix,
            dim,
            params,
            model: model.to_string(),
            version: meta.version,
            ids: meta.ids,
            path: path.to_path_buf(),
            viewed: current,
        }))
    }

    /// The sidecar graph file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the graph is memory-mapped from its file (a current sidecar)
    /// rather than held in memory.
    pub fn is_viewed(&self) -> bool {
        self.viewed
    }

    /// Sets the search depth (`ef`).
    pub fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef;
        self.index.change_expansion_search(ef);
    }

    /// A viewed graph is read-only: load it (the same file) before a change.
    fn materialize(&mut self) -> Result<(), RagError> {
        if !self.viewed {
            return Ok(());
        }
        let before = file_id(&self.path).map_err(io_err("reading", &self.path))?;
        let ix = usearch::Index::new(&options(self.dim, self.params))
            .map_err(|e| store_err(&self.path, "creating the index", e))?;
        let p = self.path.to_str().ok_or_else(|| RagError::Store {
            msg: format!("HNSW {}: path is not UTF-8", self.path.display()),
        })?;
        ix.load(p)
            .map_err(|e| store_err(&self.path, "loading", e))?;
        let after = file_id(&self.path).map_err(io_err("reading", &self.path))?;
        if before != after
            || ix.size() != self.ids.len()
            || !self.ids.iter().all(|&id| ix.contains(id as u64))
        {
            return Err(store_err(
                &self.path,
                "loading",
                "the file changed since it was opened; open the index again",
            ));
        }
        ix.change_expansion_search(self.params.ef_search);
        self.index = ix;
        self.viewed = false;
        Ok(())
    }

    /// Writes the sidecar (graph, then meta), each as a temp file renamed
    /// into place after an fsync, then views the new graph file.
    ///
    /// # Errors
    /// I/O errors (the old sidecar is left in place and the temp files are
    /// removed).
    pub fn save(&mut self) -> Result<(), RagError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp_graph = temp_path(&self.path);
        let mp = meta_path(&self.path);
        let tmp_meta = temp_path(&mp);
        let res = self.write_pair(&dir, &tmp_graph, &tmp_meta, &mp);
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp_graph);
            let _ = std::fs::remove_file(&tmp_meta);
        }
        res?;
        // Search the file just written through the page cache from now on
        // (and give the memory of the built graph back).
        let p = self.path.to_str().unwrap_or_default();
        let ix = usearch::Index::new(&options(self.dim, self.params))
            .map_err(|e| store_err(&self.path, "creating the index", e))?;
        if ix.view(p).is_ok() && ix.size() == self.ids.len() {
            ix.change_expansion_search(self.params.ef_search);
            self.index = ix;
            self.viewed = true;
        }
        Ok(())
    }

    fn write_pair(
        &self,
        dir: &Path,
        tmp_graph: &Path,
        tmp_meta: &Path,
        meta_final: &Path,
    ) -> Result<(), RagError> {
        let tg = tmp_graph.to_str().ok_or_else(|| RagError::Store {
            msg: format!("HNSW {}: path is not UTF-8", tmp_graph.display()),
        })?;
        self.index
            .save(tg)
            .map_err(|e| store_err(tmp_graph, "writing", e))?;
        std::fs::File::open(tmp_graph)
            .and_then(|f| f.sync_all())
            .map_err(io_err("syncing", tmp_graph))?;
        self.write_meta_file(
            tmp_meta,
            file_id(tmp_graph).map_err(io_err("reading", tmp_graph))?,
        )?;
        std::fs::rename(tmp_graph, &self.path).map_err(io_err("renaming", tmp_graph))?;
        std::fs::rename(tmp_meta, meta_final).map_err(io_err("renaming", tmp_meta))?;
        // The renames themselves are durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Removes ids known to be in the (materialized) graph.
    fn remove_ids(&mut self, ids: &[i64]) -> Result<(), RagError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.version.clear();
        for &id in ids {
            self.index
                .remove(id as u64)
                .map_err(|e| store_err(&self.path, "removing a vector", e))?;
        }
        let gone: std::collections::HashSet<i64> = ids.iter().copied().collect();
        self.ids.retain(|id| !gone.contains(id));
        Ok(())
    }

    fn write_meta_file(&self, tmp_meta: &Path, graph: FileId) -> Result<(), RagError> {
        let meta = Meta {
            model: self.model.clone(),
            version: self.version.clone(),
            dim: self.dim,
            params: self.params,
            graph,
            ids: self.ids.clone(),
        };
        let mut f = std::fs::File::create(tmp_meta).map_err(io_err("creating", tmp_meta))?;
        f.write_all(&meta.encode())
            .and_then(|()| f.sync_all())
            .map_err(io_err("writing", tmp_meta))
    }

    /// Rewrites the meta of an unchanged graph file (a new chunks version).
    fn write_meta_only(&self) -> Result<(), RagError> {
        let mp = meta_path(&self.path);
        let tmp = temp_path(&mp);
        let res = file_id(&self.path)
            .map_err(io_err("reading", &self.path))
            .and_then(|id| self.write_meta_file(&tmp, id))
            .and_then(|()| std::fs::rename(&tmp, &mp).map_err(io_err("renaming", &tmp)));
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res
    }

    /// Makes room for `extra` more vectors (USearch needs the capacity
    /// before an add), doubling so that many small upserts stay cheap.
    fn reserve(&self, extra: usize) -> Result<(), RagError> {
        let need = self.index.size() + extra;
        if need > self.index.capacity() {
            let cap = need.max(self.index.capacity() * 2).max(1024);
            self.index
                .reserve(cap)
                .map_err(|e| store_err(&self.path, "reserving memory", e))?;
        }
        Ok(())
    }
}

fn options(dim: usize, p: HnswParams) -> IndexOptions {
    IndexOptions {
        dimensions: dim,
        // Unit vectors: the inner product is the cosine (distance 1 - dot).
        metric: MetricKind::IP,
        // Half the memory and file of f32; recall measured the same
        // (BENCHMARKS.md).
        quantization: ScalarKind::F16,
        connectivity: p.connectivity,
        expansion_add: p.ef_add,
        expansion_search: p.ef_search,
        multi: false,
    }
}

/// `DIR/.FILE.PID.NANOS.tmp`, so two writers never share a temp file and an
/// abandoned one names the process that left it.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    path.with_file_name(format!(".{name}.{}.{nanos}.tmp", std::process::id()))
}

/// Removes temp files of this sidecar left by processes that are gone (a
/// crash or a kill mid-write). Another live process's temp file is left
/// alone; so is anything when liveness cannot be told and the file is
/// younger than a day.
fn remove_stale_temps(graph: &Path) {
    let (Some(dir), Some(name)) = (graph.parent(), graph.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = n.strip_prefix(&prefix) else {
            continue;
        };
        // rest: ".PID.NANOS.tmp" or ".meta.PID.NANOS.tmp"
        let rest = rest.strip_prefix(".meta").unwrap_or(rest);
        let parts: Vec<&str> = rest.split('.').collect();
        let [_, pid, _, "tmp"] = parts.as_slice() else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let proc_root = Path::new("/proc/self");
        let stale = if proc_root.exists() {
            pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        } else {
            e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 86_400)
        };
        if stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl VectorStore for HnswStore {
    fn upsert(&mut self, items: &[(i64, &[f32])]) -> Result<(), RagError> {
        for (id, v) in items {
            key(*id)?;
            if v.len() != self.dim {
                return Err(RagError::Dim {
                    expected: self.dim,
                    got: v.len(),
                });
            }
        }
        // One id twice in a batch: the last vector wins, as in FlatIndex.
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        let last: Vec<(i64, &[f32])> = if items.iter().all(|(id, _)| seen.insert(*id)) {
            items.to_vec()
        } else {
            let mut seen = std::collections::HashSet::new();
            let mut v: Vec<(i64, &[f32])> = items
                .iter()
                .rev()
                .filter(|(id, _)| seen.insert(*id))
                .copied()
                .collect();
            v.reverse();
            v
        };
        let items = &last[..];
        if items.is_empty() {
            return Ok(());
        }
        self.materialize()?;
        // Replacing is removing, then adding.
        let replaced: Vec<i64> = items
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| self.ids.binary_search(id).is_ok())
            .collect();
        self.remove_ids(&replaced)?;
        self.version.clear();
        self.reserve(items.len())?;
        // Inserts are independent searches plus link updates; USearch locks
        // per node, so one slice per core builds the graph in parallel.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let per = items.len().div_ceil(threads).max(256);
        let index = &self.index;
        let path = &self.path;
        let results: Vec<Result<(), RagError>> = std::thread::scope(|s| {
            let handles: Vec<_> = items
                .chunks(per)
                .map(|part| {
                    s.spawn(move || {
                        for (id, v) in part {
                            index
                                .add(*id as u64, v)
                                .map_err(|e| store_err(path, "adding a vector", e))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        // Record what went in even if a later part failed, so ids() stays
        // true to the graph. New chunk ids are above the old ones, so this
        // is usually an append (and the sort a check of one run).
        self.ids.extend(
            items
                .iter()
                .map(|(id, _)| *id)
                .filter(|&id| self.index.contains(id as u64)),
        );
        self.ids.sort();
        self.ids.dedup();
        results.into_iter().collect()
    }

    fn delete(&mut self, ids: &[i64]) -> Result<(), RagError> {
        let present: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| self.ids.binary_search(id).is_ok())
            .collect();
        if present.is_empty() {
            return Ok(());
        }
        self.materialize()?;
        self.remove_ids(&present)
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(i64, f32)>, RagError> {
        if query.len() != self.dim {
            return Err(RagError::Dim {
                expected: self.dim,
                got: query.len(),
            });
        }
        if k == 0 || self.ids.is_empty() {
            return Ok(Vec::new());
        }
        let m = self
            .index
            .search(query, k)
            .map_err(|e| store_err(&self.path, "searching", e))?;
        Ok(m.keys
            .iter()
            .zip(&m.distances)
            .map(|(&key, &d)| (key as i64, 1.0 - d))
            .collect())
    }

    fn len(&self) -> Result<usize, RagError> {
        Ok(self.ids.len())
    }

    fn ids(&self) -> Result<Vec<i64>, RagError> {
        Ok(self.ids.clone())
    }

    fn describe(&self) -> String {
        format!(
            "embedded HNSW (usearch, f16, M={}, efConstruction={}, ef={}) over {} vectors at {}",
            self.params.connectivity,
            self.params.ef_add,
            self.params.ef_search,
            self.ids.len(),
            self.path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            model: "all-minilm-l6-v2:384".into(),
            version: "7:1234".into(),
            dim: 384,
            params: HnswParams {
                ef_search: 0,
                ..HnswParams::default()
            },
            graph: FileId {
                len: 1 << 33,
                ino: 42,
                mtime_ns: 1_700_000_000_123_456_789,
            },
            ids: vec![1, 2, 5, 1 << 40],
        }
    }

    #[test]
    fn meta_round_trips_and_any_damage_is_caught() {
        let m = meta();
        let b = m.encode();
        assert_eq!(Meta::decode(&b), Ok(m));
        for cut in [0, 7, 8, 40, b.len() - 33, b.len() - 1] {
            assert!(Meta::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
        for at in [0, 9, 30, b.len() - 40, b.len() - 1] {
            let mut bad = b.clone();
            bad[at] ^= 0x10;
            assert!(Meta::decode(&bad).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn temp_files_name_their_process_and_only_dead_ones_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let graph = dir.path().join("x.sqlite.hnsw");
        let ours = temp_path(&graph);
        let name = ours
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with(".x.sqlite.hnsw."), "{name}");
        assert!(
            name.contains(&format!(".{}.", std::process::id())),
            "{name}"
        );
        let dead = dir.path().join(".x.sqlite.hnsw.meta.999999999.5.tmp");
        let other = dir.path().join(".y.sqlite.hnsw.999999999.5.tmp");
        for p in [&ours, &dead, &other] {
            std::fs::write(p, b"x").expect("write");
        }
        remove_stale_temps(&graph);
        assert!(ours.exists(), "a live writer's temp file is kept");
        assert!(!dead.exists(), "a dead writer's temp file is removed");
        assert!(other.exists(), "another index's files are not ours");
    }
}
