//! `python`: run Python code in a bubblewrap sandbox, with state kept across calls.
//!
//! **Session state.** A [`Python`] tool is one session. It owns a scratch
//! directory (the only writable place the code sees, at `/scratch`) and one
//! long-lived Python process inside the sandbox that executes cells sent over
//! a one-line JSON protocol (see `repl.py`), so variables, imports and
//! functions persist between calls like a notebook. Re-running earlier cells
//! was the alternative; it repeats side effects and gets slower every call.
//! If a cell is killed (wall-clock limit, memory, CPU) the process is gone and
//! the next call starts a fresh one: the output says that the variables were
//! lost; the scratch files remain.
//!
//! **Confinement** is in [`sandbox`]: namespaces (no network, no host files
//! beyond read-only `/usr`), a seccomp filter ([`seccomp`]), rlimits (memory, CPU, processes, file size), a
//! wall-clock limit that kills the whole sandbox, and capped output that
//! ends with an explicit `[output truncated at N bytes]` marker.
//! Without a working bwrap, [`Python::new`] fails: nothing runs unconfined.
//!
//! **The user's folders.** [`Python::read_only`] shows folders (the agent's
//! `--files` roots) inside the sandbox, read-only, at their own absolute
//! paths, and the tool's description names them: data questions over a CSV
//! are a `pandas.read_csv` away, while the files tool stays the only way to
//! write. The code cannot change them, but what it reads flows into its
//! output, which is untrusted like every result of this tool.
//!
//! **Host-side care with sandbox-written files.** The capture files are
//! created by the host before each cell and read through the handles it kept,
//! so the code cannot swap in a symlink to a host file; the scratch listing
//! never follows symlinks.

pub mod sandbox;
pub mod seccomp;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value as Json};

pub use sandbox::{Limits, Sandbox};

use crate::{args::Args, Error, SideEffect, Tool, ToolOutput};

const REPL: &str = include_str!("repl.py");

/// The result of one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellResult {
    pub stdout: String,
    pub stderr: String,
    pub status: Status,
    /// Files in the scratch dir created or changed by this cell, relative to it.
    pub files: Vec<(PathBuf, u64)>,
    /// The Python process was (re)started for this cell, so earlier state is gone.
    pub fresh_process: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// The cell ran to the end.
    Ok,
    /// The cell raised this exception (the traceback is in stderr).
    Exception(String),
    /// The cell ran past the wall-clock limit; the sandbox was killed.
    TimedOut,
    /// The Python process ended during the cell (killed by a limit, `os._exit`, ...).
    Died(String),
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    /// bwrap's and the REPL's own stderr (outside cells), capped.
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Kill the sandbox: the process group of bwrap, then bwrap itself. Inside,
/// `--die-with-parent` and the pid namespace take every process down with it.
fn kill(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A Python session: a scratch directory and a sandboxed interpreter.
pub struct Python {
    sandbox: Sandbox,
    limits: Limits,
    /// Holds `scratch/` and `io/`; removed when the session is dropped.
    root: tempfile::TempDir,
    /// Host folders shown read-only at the same paths (canonical).
    read_only: Vec<PathBuf>,
    /// Those of them under the user's working directory, also shown at their
    /// path relative to it inside the scratch folder (`data/x.csv` works as
    /// the user wrote it): (host folder, relative path).
    relative: Vec<(PathBuf, PathBuf)>,
    /// The tool's description, naming the read-only folders.
    description: String,
    proc: Mutex<Option<Proc>>,
}

const DESCRIPTION: &str = "Run Python 3 code in a sandbox, like a notebook cell: variables, imports and functions persist between calls. \
     The value of a final expression is printed. The working directory is a scratch folder (files you write there \
     are returned); there is no network and the rest of the file system is read-only or hidden. Limits: time, memory, \
     processes and output size. Use print() to show results.";

/// Well-known packages that small models reach for, and whether the system
/// Python (the one the sandbox runs) has them.
const KNOWN_PACKAGES: [&str; 4] = ["numpy", "pandas", "scipy", "matplotlib"];

/// The sentence of the description on packages: which of [`KNOWN_PACKAGES`]
/// `/usr/bin/python3` can import (Debian puts them under
/// /usr/lib/python3/dist-packages), or that there is only the standard
/// library. Models default to pandas for a CSV; told it is missing, they
/// use the csv module.
fn packages_sentence() -> String {
    let have: Vec<&str> = KNOWN_PACKAGES
        .iter()
        .copied()
        .filter(|p| Path::new("/usr/lib/python3/dist-packages").join(p).is_dir())
        .collect();
    if have.is_empty() {
        " Only the standard library is installed (no pandas or numpy): read CSV files with the csv module, \
         compute with statistics, fractions, decimal and datetime."
            .to_string()
    } else {
        format!(
            " Installed beyond the standard library: {}.",
            have.join(", ")
        )
    }
}

impl Python {
    /// A new session with its own scratch directory under the system temp dir.
    ///
    /// # Errors
    /// [`Error::SandboxUnavailable`] when bwrap, prlimit or the system Python
    /// is missing or namespaces are not permitted; [`Error::SandboxIo`] when the
    /// scratch directory cannot be created.
    pub fn new(limits: Limits) -> Result<Python, Error> {
        Python::with_sandbox(Sandbox::detect()?, limits, &std::env::temp_dir())
    }

    /// A session with an explicit sandbox and parent directory for the scratch dir.
    ///
    /// # Errors
    /// As [`Python::new`].
    pub fn with_sandbox(sandbox: Sandbox, limits: Limits, parent: &Path) -> Result<Python, Error> {
        let io_err = |op: &str| {
            let op = op.to_string();
            move |source| Error::SandboxIo { op, source }
        };
        let root = tempfile::Builder::new()
            .prefix("llmos-python-")
            .tempdir_in(parent)
            .map_err(io_err(&format!(
                "create a session dir in {}",
                parent.display()
            )))?;
        for d in ["scratch", "io"] {
            let p = root.path().join(d);
            std::fs::create_dir(&p).map_err(io_err(&format!("create {}", p.display())))?;
        }
        if let Some(uid) = sandbox.sandbox_uid() {
            for p in [
                root.path().to_path_buf(),
                root.path().join("scratch"),
                root.path().join("io"),
            ] {
                std::os::unix::fs::chown(&p, Some(uid), Some(uid))
                    .map_err(io_err(&format!("give {} to uid {uid}", p.display())))?;
            }
        }
        Ok(Python {
            sandbox,
            limits,
            root,
            read_only: Vec::new(),
            relative: Vec::new(),
            description: format!("{DESCRIPTION}{}", packages_sentence()),
            proc: Mutex::new(None),
        })
    }

    /// Show these host folders inside the sandbox, read-only, at their own
    /// absolute paths (canonicalised), and name them in the description.
    ///
    /// # Errors
    /// [`Error::BadRoot`] when a folder cannot be canonicalised or is not a
    /// directory; [`Error::SandboxUnavailable`] when it would cover one of the
    /// sandbox's own mounts (`/`, `/usr`, `/tmp`, ...).
    pub fn read_only<P: AsRef<Path>>(self, dirs: &[P]) -> Result<Python, Error> {
        let cwd = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
        self.read_only_from(dirs, cwd.as_deref())
    }

    /// As [`Python::read_only`]; a folder under `cwd` (the user's working
    /// directory) is also shown at its path relative to `cwd` inside the
    /// scratch folder, so the paths the user writes work in code as they
    /// are (`llmos agent --files ./data "... data/sales.csv ..."`: Python
    /// runs in the scratch folder, where `data/sales.csv` was not found).
    ///
    /// # Errors
    /// As [`Python::read_only`].
    pub fn read_only_from<P: AsRef<Path>>(
        mut self,
        dirs: &[P],
        cwd: Option<&Path>,
    ) -> Result<Python, Error> {
        for d in dirs {
            let p = d.as_ref();
            let c = crate::canonical_dir(p)?;
            sandbox::check_read_only(&c)?;
            if self.read_only.contains(&c) {
                continue;
            }
            let rel = cwd
                .and_then(|w| c.strip_prefix(w).ok())
                .filter(|r| r.components().count() > 0)
                .map(Path::to_path_buf);
            if let Some(rel) = rel {
                self.relative.push((c.clone(), rel));
            }
            self.read_only.push(c);
        }
        let list: Vec<String> = self
            .read_only
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        let rel: Vec<String> = self
            .relative
            .iter()
            .map(|(_, r)| format!("{}/", r.display()))
            .collect();
        self.description = if list.is_empty() {
            format!("{DESCRIPTION}{}", packages_sentence())
        } else if rel.is_empty() {
            format!(
                "{DESCRIPTION}{} The user's folders can be read (not written) at these absolute paths: {}.",
                packages_sentence(),
                list.join(", ")
            )
        } else {
            format!(
                "{DESCRIPTION}{} The user's folders can be read (not written) at these absolute paths: {}; \
                 and from the working directory as {}.",
                packages_sentence(),
                list.join(", "),
                rel.join(", ")
            )
        };
        Ok(self)
    }

    /// The host folders shown read-only inside the sandbox.
    pub fn read_only_dirs(&self) -> &[PathBuf] {
        &self.read_only
    }

    /// The host path of the session's scratch directory (`/scratch` inside).
    pub fn scratch(&self) -> PathBuf {
        self.root.path().join("scratch")
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn start(&self) -> Result<Proc, Error> {
        let (mut cmd, _seccomp) = self.sandbox.command(
            &self.scratch(),
            &self.root.path().join("io"),
            &self.read_only,
            &self.relative,
            &self.limits,
            REPL,
        )?;
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::SandboxIo {
                op: format!("start {}", self.sandbox.bwrap.display()),
                source,
            })?;
        let (Some(stdin), Some(stdout), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill(&mut child);
            return Err(Error::SandboxUnavailable(
                "the sandbox's pipes were not created".into(),
            ));
        };
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            // Replies are one short JSON line; anything longer is not ours.
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match r.by_ref().take(64 << 10).read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    let room = (16usize << 10).saturating_sub(s.len());
                    s.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        });
        Ok(Proc {
            child,
            stdin,
            replies,
            stderr,
        })
    }

    /// Create (fresh, never following a symlink) the capture file `name` and keep a handle.
    fn capture_file(&self, name: &str) -> Result<File, Error> {
        let p = self.root.path().join("io").join(name);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::SandboxIo {
                    op: format!("remove {}", p.display()),
                    source,
                })
            }
        }
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
            .map_err(|source| Error::SandboxIo {
                op: format!("create {}", p.display()),
                source,
            })?;
        if let Some(uid) = self.sandbox.sandbox_uid() {
            std::os::unix::fs::fchown(&f, Some(uid), Some(uid)).map_err(|source| {
                Error::SandboxIo {
                    op: format!("chown {}", p.display()),
                    source,
                }
            })?;
        }
        Ok(f)
    }

    /// Run one cell.
    ///
    /// # Errors
    /// Only when the sandbox cannot be started or its files cannot be made;
    /// everything the code does (exceptions, limits, crashes) is a [`Status`].
    pub fn run(&self, code: &str) -> Result<CellResult, Error> {
        let mut guard = self
            .proc
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = self.capture_file("stdout")?;
        let mut err = self.capture_file("stderr")?;
        let before = snapshot(&self.scratch());
        let fresh_process = guard.is_none();
        if guard.is_none() {
            *guard = Some(self.start()?);
        }
        let status = match guard.as_mut() {
            Some(p) => self.exchange(p, code),
            None => Status::Died("the sandbox did not start".into()),
        };
        if !matches!(status, Status::Ok | Status::Exception(_)) {
            // Kill and reap now, so the next call starts clean and the error can quote bwrap's stderr.
            if let Some(mut p) = guard.take() {
                kill(&mut p.child);
            }
        }
        let cap = self.limits.output_bytes;
        let stdout = read_capped(&mut out, cap);
        let stderr = read_capped(&mut err, cap);
        let after = snapshot(&self.scratch());
        let files = after
            .into_iter()
            .filter(|(p, v)| before.get(p) != Some(v))
            .map(|(p, (len, _))| (p, len))
            .collect();
        Ok(CellResult {
            stdout,
            stderr,
            status,
            files,
            fresh_process,
        })
    }

    fn exchange(&self, p: &mut Proc, code: &str) -> Status {
        let req = json!({"code": code, "cpu_s": self.limits.cpu_s}).to_string() + "\n";
        if p.stdin
            .write_all(req.as_bytes())
            .and_then(|()| p.stdin.flush())
            .is_err()
        {
            return self.died(p, "its input closed before the cell was sent");
        }
        let deadline = Instant::now() + self.limits.wall;
        match p
            .replies
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(line) => match serde_json::from_str::<Json>(&line) {
                Ok(v) if v["ok"] == true => Status::Ok,
                Ok(v) => match v["error"].as_str() {
                    Some(e) if !e.starts_with("protocol:") => Status::Exception(e.to_string()),
                    _ => Status::Died(format!("it broke the reply protocol: {}", line.trim())),
                },
                Err(_) => Status::Died(format!("it broke the reply protocol: {}", line.trim())),
            },
            Err(RecvTimeoutError::Timeout) => Status::TimedOut,
            Err(RecvTimeoutError::Disconnected) => self.died(p, "it exited during the cell"),
        }
    }

    fn died(&self, p: &mut Proc, what: &str) -> Status {
        let code = p.child.wait().map(|s| s.to_string()).unwrap_or_default();
        let mut why = format!("{what} ({code})");
        if let Ok(s) = p.stderr.lock() {
            let s = String::from_utf8_lossy(&s);
            if !s.trim().is_empty() {
                why.push_str(&format!("; its stderr: {}", s.trim()));
            }
        }
        Status::Died(why)
    }

    /// The tool-facing text of a cell result.
    pub fn render(&self, r: &CellResult) -> String {
        let mut s = String::new();
        if r.fresh_process {
            s.push_str("[new Python process: variables from earlier calls, if any, are gone; files in the working directory remain]\n");
        }
        let status = match &r.status {
            Status::Ok => "ok".to_string(),
            Status::Exception(e) if e.starts_with("ModuleNotFoundError") => format!(
                "error: the code raised {e} (traceback in stderr). The sandbox cannot install packages:{} \
                 Rewrite the code without that module",
                packages_sentence()
            ),
            Status::Exception(e) => format!("error: the code raised {e} (traceback in stderr)"),
            Status::TimedOut => format!(
                "killed: the cell ran longer than the {} s wall-clock limit; the Python process was ended, so variables are lost. \
                 Make the computation smaller or faster",
                self.limits.wall.as_secs_f64()
            ),
            Status::Died(why) => format!(
                "killed: the Python process ended: {why}. Likely a limit (memory {} MiB, CPU {} s per cell, {} processes, \
                 files up to {} MiB); variables are lost",
                self.limits.memory_bytes >> 20,
                self.limits.cpu_s,
                self.limits.processes,
                self.limits.file_bytes >> 20
            ),
        };
        s.push_str(&format!("status: {status}\n"));
        if !r.stdout.is_empty() {
            s.push_str(&format!("stdout:\n{}\n", r.stdout.trim_end_matches('\n')));
        }
        if !r.stderr.is_empty() {
            s.push_str(&format!("stderr:\n{}\n", r.stderr.trim_end_matches('\n')));
        }
        if !r.files.is_empty() {
            let list: Vec<String> = r
                .files
                .iter()
                .map(|(p, n)| format!("{} ({n} bytes)", p.display()))
                .collect();
            s.push_str(&format!(
                "files created or changed in the working directory: {}\n",
                list.join(", ")
            ));
        }
        s
    }
}

/// Read at most `cap` bytes from the start of `f`; if there was more, say so at the end.
fn read_capped(f: &mut File, cap: usize) -> String {
    let total = f.metadata().map_or(0, |m| m.len());
    let mut buf = Vec::with_capacity(cap.min(total as usize));
    let _ = f
        .seek(SeekFrom::Start(0))
        .and_then(|_| Read::by_ref(f).take(cap as u64).read_to_end(&mut buf));
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    if total > cap as u64 {
        s.push_str(&format!(
            "\n[output truncated at {cap} bytes] (the program wrote {total} bytes)"
        ));
    }
    s
}

/// Regular files under `dir` (relative path → (size, mtime)), not following symlinks.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if out.len() >= 10_000 {
                return out;
            }
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if let Ok(rel) = e.path().strip_prefix(dir) {
                out.insert(rel.to_path_buf(), (m.len(), m.modified().ok()));
            }
        }
    }
    out
}

impl Tool for Python {
    fn name(&self) -> &str {
        "python"
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Json {
        json!({
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Python 3 source to execute."}
            },
            "required": ["code"],
            "additionalProperties": false
        })
    }

    fn call(&self, a: Json) -> ToolOutput {
        let code = match Args::new(self.name(), &a, &["code"]).and_then(|a| a.string("code")) {
            Ok(c) => c,
            Err(e) => return ToolOutput::error(e),
        };
        match self.run(&code) {
            Ok(r) => {
                let mut out = ToolOutput::ok(self.render(&r)).untrusted();
                out.is_error = r.status != Status::Ok;
                if !r.files.is_empty() {
                    let scratch = self.scratch();
                    out.side_effects.push(SideEffect::FilesWritten(
                        r.files.iter().map(|(p, _)| scratch.join(p)).collect(),
                    ));
                }
                out
            }
            Err(e) => ToolOutput::error(format!("{e}")),
        }
    }
}
