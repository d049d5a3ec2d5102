//! `files`: list, read and grep under allowed roots; writes need approval.
//!
//! Every path is canonicalised (symlinks and `..` resolved by the OS) and
//! must then lie under one of the canonical roots, so neither `../../etc`
//! nor a symlink inside a root that points outside it gets through. Writes
//! are never done by [`Tool::call`] unless the [`WritePolicy`] allows the
//! path: the call returns a [`WriteRequest`] (as
//! [`SideEffect::WriteProposed`]) and the agent loop, after the user or a
//! policy approves, calls [`Files::apply`], which checks the path again.
//!
//! Known gap: a path is checked, then opened; a process that can change the
//! tree between the two (e.g. sandboxed code sharing a root) could race a
//! symlink in. Do not give the `files` tool a root that untrusted code writes to.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use regex::RegexBuilder;
use serde_json::{json, Value as Json};

use crate::{args::Args, Error, SideEffect, Tool, ToolOutput};

/// Which writes happen without asking.
#[derive(Debug, Clone, PartialEq)]
pub enum WritePolicy {
    /// Every write is returned as a [`WriteRequest`] for approval (the default).
    Ask,
    /// Writes under these directories (canonicalised; inside the roots) happen directly.
    AllowUnder(Vec<PathBuf>),
}

/// A write the model asked for; nothing has been written yet.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRequest {
    /// The resolved target (its parent is canonical and inside a root).
    pub path: PathBuf,
    pub content: String,
    /// Append instead of replacing.
    pub append: bool,
}

/// Size limits for reads and greps.
#[derive(Debug, Clone)]
pub struct FileLimits {
    /// Bytes returned by one read.
    pub read_bytes: usize,
    /// Matches returned by one grep.
    pub grep_matches: usize,
    /// Files a grep looks at.
    pub grep_files: usize,
    /// Files larger than this are skipped by grep and refused by read.
    pub max_file_bytes: u64,
    /// Entries returned by one list.
    pub list_entries: usize,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            read_bytes: 64 << 10,
            grep_matches: 200,
            grep_files: 20_000,
            max_file_bytes: 64 << 20,
            list_entries: 500,
        }
    }
}

/// The `files` tool.
#[derive(Debug, Clone)]
pub struct Files {
    roots: Vec<PathBuf>,
    pub policy: WritePolicy,
    pub limits: FileLimits,
}

const OPS: [&str; 4] = ["list", "read", "grep", "write"];

impl Files {
    /// A tool confined to `roots` (each must be an existing directory). Writes ask.
    ///
    /// # Errors
    /// [`Error::BadRoot`] when a root cannot be canonicalised or is not a directory.
    pub fn new<P: AsRef<Path>>(roots: &[P]) -> Result<Files, Error> {
        let canon = roots
            .iter()
            .map(|r| crate::canonical_dir(r.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Files {
            roots: canon,
            policy: WritePolicy::Ask,
            limits: FileLimits::default(),
        })
    }

    /// Allow writes under `dirs` without asking.
    ///
    /// # Errors
    /// [`Error::BadRoot`] when a directory cannot be canonicalised.
    pub fn allow_writes_under<P: AsRef<Path>>(mut self, dirs: &[P]) -> Result<Files, Error> {
        let mut v = Vec::new();
        for d in dirs {
            let p = d.as_ref();
            v.push(std::fs::canonicalize(p).map_err(|source| Error::BadRoot {
                path: p.to_path_buf(),
                source,
            })?);
        }
        self.policy = WritePolicy::AllowUnder(v);
        Ok(self)
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    fn roots_text(&self) -> String {
        self.roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn inside(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(r))
    }

    /// Relative paths are taken from the first root.
    fn join(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        match self.roots.first() {
            Some(r) if p.is_relative() => r.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// Canonicalise an existing path and check it is inside a root.
    fn resolve(&self, path: &str) -> Result<PathBuf, String> {
        let joined = self.join(path);
        let c = std::fs::canonicalize(&joined).map_err(|e| {
            format!("files: cannot open '{path}': {e}; paths are relative to {} (use operation 'list' to see what exists)", self.roots_text())
        })?;
        if !self.inside(&c) {
            return Err(format!(
                "files: '{path}' resolves to {}, outside the allowed roots ({}); only files under them can be used",
                c.display(),
                self.roots_text()
            ));
        }
        Ok(c)
    }

    /// Resolve a write target: its parent must exist (canonicalised, inside a
    /// root); the target itself, if it exists, is canonicalised too (a symlink is followed and checked).
    fn resolve_for_write(&self, path: &str) -> Result<PathBuf, String> {
        let joined = self.join(path);
        if joined.exists() {
            let c = self.resolve(path)?;
            if c.is_dir() {
                return Err(format!(
                    "files: '{path}' is a directory; give a file path to write"
                ));
            }
            return Ok(c);
        }
        let name = match joined.components().next_back() {
            Some(Component::Normal(n)) => n.to_owned(),
            _ => return Err(format!("files: '{path}' does not end in a file name")),
        };
        let parent = joined.parent().unwrap_or(Path::new("/"));
        let cp = std::fs::canonicalize(parent).map_err(|e| {
            format!("files: cannot write '{path}': its directory {} is not usable ({e}); create the directory first or pick an existing one", parent.display())
        })?;
        let target = cp.join(name);
        if !self.inside(&target) {
            return Err(format!(
                "files: '{path}' resolves to {}, outside the allowed roots ({})",
                target.display(),
                self.roots_text()
            ));
        }
        Ok(target)
    }

    fn list(&self, path: &str) -> Result<String, String> {
        let dir = self.resolve(path)?;
        if !dir.is_dir() {
            return Err(format!(
                "files: '{path}' is a file, not a directory; use operation 'read' for files"
            ));
        }
        let rd =
            std::fs::read_dir(&dir).map_err(|e| format!("files: cannot list '{path}': {e}"))?;
        let mut entries: Vec<String> = rd
            .flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                match e.path().symlink_metadata() {
                    Ok(m) if m.is_dir() => format!("{name}/"),
                    Ok(m) if m.file_type().is_symlink() => format!("{name} (symlink)"),
                    Ok(m) => format!("{name} ({} bytes)", m.len()),
                    Err(_) => name,
                }
            })
            .collect();
        entries.sort();
        let n = entries.len();
        let mut out = format!("{} ({n} entries)\n", dir.display());
        for e in entries.iter().take(self.limits.list_entries) {
            out.push_str(e);
            out.push('\n');
        }
        if n > self.limits.list_entries {
            let _ = writeln!(
                out,
                "[listing truncated at {} entries]",
                self.limits.list_entries
            );
        }
        Ok(out)
    }

    fn read(&self, path: &str, start: Option<u64>, end: Option<u64>) -> Result<String, String> {
        let p = self.resolve(path)?;
        if p.is_dir() {
            return Err(format!(
                "files: '{path}' is a directory; use operation 'list'"
            ));
        }
        let len = p.metadata().map(|m| m.len()).unwrap_or(0);
        if len > self.limits.max_file_bytes {
            return Err(format!(
                "files: '{path}' is {len} bytes, over the {} byte limit; use 'grep' to find the part you need",
                self.limits.max_file_bytes
            ));
        }
        let bytes = std::fs::read(&p).map_err(|e| format!("files: cannot read '{path}': {e}"))?;
        if bytes.iter().take(8192).any(|&b| b == 0) {
            return Err(format!(
                "files: '{path}' looks binary (it has NUL bytes); only text files can be read"
            ));
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let n = lines.len() as u64;
        let start = start.unwrap_or(1).max(1);
        let end = end.unwrap_or(n).min(n);
        if start > n.max(1) || start > end.max(start) {
            return Err(format!(
                "files: '{path}' has {n} lines; start_line {start} is past the end"
            ));
        }
        if end < start {
            return Err(format!(
                "files: end_line {end} is before start_line {start}"
            ));
        }
        let mut out = String::new();
        let mut shown_end = start.saturating_sub(1);
        for (i, l) in lines
            .iter()
            .enumerate()
            .take(end as usize)
            .skip(start as usize - 1)
        {
            if out.len() + l.len() > self.limits.read_bytes {
                break;
            }
            let _ = writeln!(out, "{:>6}  {l}", i + 1);
            shown_end = i as u64 + 1;
        }
        let mut head = format!("{} (lines {start}-{shown_end} of {n})\n", p.display());
        if shown_end < end {
            let _ = write!(
                out,
                "[output truncated at {} bytes: continue with start_line {}]",
                self.limits.read_bytes,
                shown_end + 1
            );
        }
        head.push_str(&out);
        Ok(head)
    }

    fn grep(&self, path: &str, pattern: &str) -> Result<String, String> {
        let re = RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("files: bad regex '{pattern}': {e}"))?;
        let start = self.resolve(path)?;
        let mut out = String::new();
        let (mut matches, mut files) = (0usize, 0usize);
        let mut stack = vec![start.clone()];
        let mut truncated = false;
        'walk: while let Some(p) = stack.pop() {
            // Never follow symlinks while walking: a link could lead out of the roots.
            let Ok(m) = p.symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                if let Ok(rd) = std::fs::read_dir(&p) {
                    let mut kids: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                    kids.sort_unstable_by(|a, b| b.cmp(a));
                    stack.extend(kids);
                }
                continue;
            }
            if !m.is_file() || m.len() > self.limits.max_file_bytes {
                continue;
            }
            files += 1;
            if files > self.limits.grep_files {
                truncated = true;
                break;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            if bytes.iter().take(8192).any(|&b| b == 0) {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            let shown = p
                .strip_prefix(&start)
                .ok()
                .filter(|r| !r.as_os_str().is_empty())
                .unwrap_or(&p)
                .display()
                .to_string();
            for (i, line) in text.lines().enumerate() {
                if re.is_match(line) {
                    matches += 1;
                    if matches > self.limits.grep_matches {
                        truncated = true;
                        break 'walk;
                    }
                    let line: String = line.chars().take(300).collect();
                    let _ = writeln!(out, "{shown}:{}: {line}", i + 1);
                }
            }
        }
        if matches == 0 {
            return Ok(format!(
                "no matches for /{pattern}/ under {} ({files} files searched)",
                start.display()
            ));
        }
        if truncated {
            let _ = writeln!(
                out,
                "[grep stopped at {} matches or {} files: narrow the path or the pattern]",
                self.limits.grep_matches, self.limits.grep_files
            );
        }
        Ok(out)
    }

    fn write_allowed(&self, target: &Path) -> bool {
        match &self.policy {
            WritePolicy::Ask => false,
            WritePolicy::AllowUnder(dirs) => dirs.iter().any(|d| target.starts_with(d)),
        }
    }

    /// Perform an approved write (the path is checked against the roots again).
    pub fn apply(&self, req: &WriteRequest) -> ToolOutput {
        let Some(s) = req.path.to_str() else {
            return ToolOutput::error(format!("files: path {} is not UTF-8", req.path.display()));
        };
        let target = match self.resolve_for_write(s) {
            Ok(t) => t,
            Err(e) => return ToolOutput::error(e),
        };
        let res = if req.append {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&target)
                .and_then(|mut f| f.write_all(req.content.as_bytes()))
        } else {
            std::fs::write(&target, &req.content)
        };
        match res {
            Ok(()) => {
                let mut out = ToolOutput::ok(format!(
                    "{} {} bytes to {}",
                    if req.append { "appended" } else { "wrote" },
                    req.content.len(),
                    target.display()
                ));
                out.side_effects
                    .push(SideEffect::FilesWritten(vec![target]));
                out
            }
            Err(e) => ToolOutput::error(format!("files: cannot write {}: {e}", target.display())),
        }
    }

    fn dispatch(&self, a: &Json) -> Result<ToolOutput, String> {
        let a = Args::new(
            self.name(),
            a,
            &[
                "operation",
                "path",
                "pattern",
                "start_line",
                "end_line",
                "content",
                "append",
            ],
        )?;
        let op = a.string("operation")?;
        let path = a.opt_string("path")?.unwrap_or_else(|| ".".to_string());
        // The tool-call grammar makes every key required (nullable), so a
        // small model fills keys its operation does not use: `append: false`
        // on a read, `pattern: ""` on a list. Those are ignored; an unused key
        // with a meaningful value is ignored too, with a note in the result
        // (an error would cost a step and the model rarely recovers).
        let unused = |keys: &[&str]| -> Vec<String> {
            keys.iter()
                .filter(|k| a.is_set(k) && !a.is_neutral(k))
                .map(|k| format!("'{k}'"))
                .collect()
        };
        let note = |keys: &[&str], out: ToolOutput| -> ToolOutput {
            let ignored = unused(keys);
            if ignored.is_empty() || out.is_error {
                return out;
            }
            let mut out = out;
            out.content.push_str(&format!(
                "\n[files: ignored {} (not used by operation '{op}')]",
                ignored.join(", ")
            ));
            out
        };
        match op.as_str() {
            "list" => {
                let out = ToolOutput::ok(self.list(&path)?).untrusted();
                Ok(note(
                    &["pattern", "start_line", "end_line", "content", "append"],
                    out,
                ))
            }
            "read" => {
                // 0 is no line: read from the start / to the end.
                let s = a.opt_uint("start_line", 0, u64::MAX)?.filter(|&n| n > 0);
                let e = a.opt_uint("end_line", 0, u64::MAX)?.filter(|&n| n > 0);
                let out = ToolOutput::ok(self.read(&path, s, e)?).untrusted();
                Ok(note(&["pattern", "content", "append"], out))
            }
            "grep" => {
                let pat = a
                    .opt_string("pattern")?
                    .filter(|p| !p.is_empty())
                    .ok_or("files: operation 'grep' needs 'pattern' (a regular expression)")?;
                let out = ToolOutput::ok(self.grep(&path, &pat)?).untrusted();
                Ok(note(&["start_line", "end_line", "content", "append"], out))
            }
            "write" => {
                let content = a
                    .opt_string("content")?
                    .ok_or("files: operation 'write' needs 'content' (the text to write)")?;
                let append = a.opt_bool("append")?.unwrap_or(false);
                let target = self.resolve_for_write(&path)?;
                let req = WriteRequest {
                    path: target.clone(),
                    content,
                    append,
                };
                let unused_keys = ["pattern", "start_line", "end_line"];
                if self.write_allowed(&target) {
                    return Ok(note(&unused_keys, self.apply(&req)));
                }
                let mut out = ToolOutput::ok(format!(
                    "needs approval: writing {} bytes to {} must be approved by the user; nothing was written yet. \
                     Continue with other work or wait for the result of the approval",
                    req.content.len(),
                    target.display()
                ));
                out.side_effects.push(SideEffect::WriteProposed(req));
                Ok(note(&unused_keys, out))
            }
            other => Err(format!(
                "files: unknown operation '{other}'; use one of {}",
                OPS.join(", ")
            )),
        }
    }
}

impl Tool for Files {
    fn name(&self) -> &str {
        "files"
    }

    fn apply_write(&self, req: &WriteRequest) -> ToolOutput {
        self.apply(req)
    }

    fn description(&self) -> &str {
        "Work with files under the allowed folders. operation 'list' shows a directory; 'read' returns a text file with line \
         numbers (optionally only start_line..end_line); 'grep' searches a file or directory tree for a regular expression \
         and returns path:line: text; 'write' replaces (or with append=true extends) a file, which usually needs the user's \
         approval. Paths are relative to the first allowed folder. Unused fields must be null."
    }

    fn parameters(&self) -> Json {
        json!({
            "type": "object",
            "properties": {
                "operation": {"type": "string", "enum": OPS},
                "path": {"type": ["string", "null"], "description": "File or directory; null means the first allowed folder."},
                "pattern": {"type": ["string", "null"], "description": "grep: a regular expression (Rust regex syntax)."},
                "start_line": {"type": ["integer", "null"], "minimum": 1, "description": "read: first line (1-based)."},
                "end_line": {"type": ["integer", "null"], "minimum": 1, "description": "read: last line (inclusive)."},
                "content": {"type": ["string", "null"], "description": "write: the text to write."},
                "append": {"type": ["boolean", "null"], "description": "write: append instead of replacing."}
            },
            "required": ["operation", "path", "pattern", "start_line", "end_line", "content", "append"],
            "additionalProperties": false
        })
    }

    fn call(&self, a: Json) -> ToolOutput {
        self.dispatch(&a).unwrap_or_else(ToolOutput::error)
    }
}
