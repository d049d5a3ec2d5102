//! Crash-safe writes: temp dirs in `<root>/tmp`, per-model locks, hashing sinks and
//! atomic publication into `<root>/models`.
//!
//! Every pull works in its own temp dir named `<key>.pull-<unique>` on the same
//! filesystem as the cache. A model becomes visible only through one `rename` of a
//! fully written, fsynced file (or folder), so `<root>/models` never holds half a
//! model. Temp dirs are removed on drop; those left by a SIGKILL are swept by a later
//! pull once it can take their model's lock (nobody is using them then).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::interrupt;
use crate::progress::Phase;

const STAGING_MARK: &str = ".pull-";

/// A temp dir inside `<root>/tmp`, removed (with everything in it) on drop.
pub(crate) struct Staging {
    path: PathBuf,
}

impl Staging {
    pub(crate) fn create(tmp: &Path, key: &str) -> Result<Staging, StoreError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = tmp.join(format!(
            "{key}{STAGING_MARK}{}-{nanos}-{n}",
            std::process::id()
        ));
        fs::create_dir(&path).map_err(|e| StoreError::io("creating temp dir", &path, e))?;
        Ok(Staging { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Best effort: whatever survives is swept by the next pull of this model.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// An exclusive advisory lock on `<root>/locks/<key>.lock`, released on drop (and by
/// the kernel if the process dies).
pub(crate) struct PullLock {
    _file: File,
}

fn lock_path(locks: &Path, key: &str) -> PathBuf {
    locks.join(format!("{key}.lock"))
}

fn open_lock(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| StoreError::io("opening lock file", path, e))
}

/// Takes the lock for `key` or fails at once with [`StoreError::PullInProgress`].
pub(crate) fn lock(locks: &Path, key: &str) -> Result<PullLock, StoreError> {
    let path = lock_path(locks, key);
    let file = open_lock(&path)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(PullLock { _file: file }),
        Err(fs4::TryLockError::WouldBlock) => Err(StoreError::PullInProgress {
            name: key.to_string(),
            lock: path,
        }),
        Err(fs4::TryLockError::Error(e)) => Err(StoreError::io("locking", &path, e)),
    }
}

/// Removes temp dirs no live pull owns. Call while holding `own_key`'s lock: that
/// model's dirs are stale by definition; any other model's dirs are removed only if
/// its lock is free.
pub(crate) fn sweep(tmp: &Path, locks: &Path, own_key: &str) -> Result<(), StoreError> {
    let entries = fs::read_dir(tmp).map_err(|e| StoreError::io("listing", tmp, e))?;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        let Some((key, _)) = name.rsplit_once(STAGING_MARK) else {
            continue;
        };
        // Taking another model's lock for a moment proves nobody uses its dirs
        // (the file, and with it the lock, is dropped right away).
        let stale = key == own_key
            || open_lock(&lock_path(locks, key))
                .ok()
                .is_some_and(|f| fs4::FileExt::try_lock(&f).is_ok());
        if stale {
            let path = entry.path();
            fs::remove_dir_all(&path)
                .map_err(|e| StoreError::io("removing stale temp dir", &path, e))?;
        }
    }
    Ok(())
}

/// A new file that hashes everything written to it.
pub(crate) struct Sink {
    file: File,
    path: PathBuf,
    hasher: Sha256,
    written: u64,
}

impl Sink {
    pub(crate) fn create(path: &Path) -> Result<Sink, StoreError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| StoreError::io("creating", path, e))?;
        Ok(Sink {
            file,
            path: path.to_path_buf(),
            hasher: Sha256::new(),
            written: 0,
        })
    }

    pub(crate) fn write(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all(buf)
            .map_err(|e| StoreError::io("writing", &self.path, e))?;
        self.hasher.update(buf);
        self.written += buf.len() as u64;
        Ok(())
    }

    /// Streams `reader` into the sink in 1 MiB chunks, checking for Ctrl-C between
    /// chunks. `read_err` turns a read failure into an error naming the source.
    pub(crate) fn copy_from(
        &mut self,
        reader: &mut dyn Read,
        phase: &mut Phase,
        name: &str,
        read_err: &dyn Fn(std::io::Error) -> StoreError,
    ) -> Result<u64, StoreError> {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            interrupt::check(name)?;
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            self.write(&buf[..n])?;
            total += n as u64;
            phase.inc(n as u64);
        }
    }

    /// Flushes the file to disk and returns (sha256 hex, bytes written).
    pub(crate) fn finish(self) -> Result<(String, u64), StoreError> {
        self.file
            .sync_all()
            .map_err(|e| StoreError::io("syncing", &self.path, e))?;
        Ok((hex(&self.hasher.finalize()), self.written))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// fsyncs a directory so a rename into (or out of) it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("syncing directory", dir, e))
}

/// fsyncs `dir` and every folder below it (the files were synced as written).
pub(crate) fn sync_tree(dir: &Path) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io("listing", dir, e))? {
        let entry = entry.map_err(|e| StoreError::io("listing", dir, e))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            sync_tree(&entry.path())?;
        }
    }
    sync_dir(dir)
}

/// Atomically replaces `dest` with the finished file `staged` (same filesystem).
/// A Ctrl-C that came in after the last chunk still cancels: this is the last point
/// where the pull can be undone.
pub(crate) fn publish_file(staged: &Path, dest: &Path, name: &str) -> Result<(), StoreError> {
    interrupt::check(name)?;
    fs::rename(staged, dest).map_err(|e| StoreError::io("moving model into place at", dest, e))?;
    if let Some(parent) = dest.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Moves the finished folder `staged` to `dest`. An old `dest` is first moved into
/// `trash` (inside a temp dir), because a folder cannot be renamed over a folder.
pub(crate) fn publish_dir(
    staged: &Path,
    dest: &Path,
    trash: &Path,
    name: &str,
) -> Result<(), StoreError> {
    sync_tree(staged)?;
    interrupt::check(name)?;
    if dest.exists() {
        fs::rename(dest, trash)
            .map_err(|e| StoreError::io("moving old model aside from", dest, e))?;
    }
    fs::rename(staged, dest).map_err(|e| StoreError::io("moving model into place at", dest, e))?;
    if let Some(parent) = dest.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Reads the first four bytes of `reader`, for the GGUF magic check.
pub(crate) fn read_magic(reader: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut magic = Vec::with_capacity(4);
    reader.take(4).read_to_end(&mut magic)?;
    Ok(magic)
}

/// The magic bytes for messages: printable ASCII as text, otherwise hex.
pub(crate) fn describe_magic(magic: &[u8]) -> String {
    if magic.is_empty() {
        "nothing (it is empty)".to_string()
    } else if magic.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("\"{}\"", String::from_utf8_lossy(magic))
    } else {
        format!("bytes {}", hex(magic))
    }
}

pub(crate) const GGUF_MAGIC: &[u8] = b"GGUF";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_dir_is_removed_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::create(tmp.path(), "m").unwrap();
        let path = staging.path().to_path_buf();
        fs::write(path.join("f"), b"x").unwrap();
        drop(staging);
        assert!(!path.exists());
    }

    #[test]
    fn sweep_keeps_dirs_of_locked_models_and_removes_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let (tmp, locks) = (root.path().join("tmp"), root.path().join("locks"));
        fs::create_dir_all(&tmp).unwrap();
        fs::create_dir_all(&locks).unwrap();
        let busy = tmp.join("busy.pull-1");
        let stale = tmp.join("stale.pull-2");
        let own = tmp.join("me.pull-3");
        let foreign = tmp.join("not-ours");
        for d in [&busy, &stale, &own, &foreign] {
            fs::create_dir(d).unwrap();
        }
        let _busy_lock = lock(&locks, "busy").unwrap();
        let _own_lock = lock(&locks, "me").unwrap();
        sweep(&tmp, &locks, "me").unwrap();
        assert!(
            busy.exists(),
            "a dir whose model is locked belongs to a live pull"
        );
        assert!(!stale.exists());
        assert!(!own.exists());
        assert!(foreign.exists(), "only our own naming scheme is swept");
    }

    #[test]
    fn second_lock_of_same_key_is_refused() {
        let locks = tempfile::tempdir().unwrap();
        let _held = lock(locks.path(), "m").unwrap();
        let err = lock(locks.path(), "m").err().unwrap();
        assert!(
            err.to_string().contains("another pull of m is in progress"),
            "{err}"
        );
    }

    #[test]
    fn sink_hashes_what_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Sink::create(&dir.path().join("f")).unwrap();
        sink.write(b"ab").unwrap();
        sink.write(b"c").unwrap();
        let (hash, n) = sink.finish().unwrap();
        assert_eq!(n, 3);
        // sha256("abc") from FIPS 180-2, appendix B.1.
        assert_eq!(
            hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn magic_is_described_readably() {
        assert_eq!(describe_magic(b"PK\x03\x04"), "bytes 504b0304");
        assert_eq!(describe_magic(b"<htm"), "\"<htm\"");
        assert_eq!(describe_magic(b""), "nothing (it is empty)");
    }
}
