//! The bubblewrap command line that confines the Python process.
//!
//! Layers, outermost first:
//! 1. `setpriv` to `nobody` when we are root: the kernel never enforces
//!    `RLIMIT_NPROC` for real uid 0, so a root sandbox could fork without bound.
//! 2. `bwrap`: new user, pid, network, ipc, uts and cgroup namespaces; the
//!    system (`/usr` and its `/bin`, `/lib` links) read-only; `/proc` of the
//!    new pid namespace; a private `/dev` and `/tmp`; the scratch dir (rw) at
//!    `/scratch` and the capture dir (rw) at `/run/llmos-io`; the user's
//!    read-only folders (`llmos agent --files`), each at its own absolute
//!    path; nothing else of the host (no `/root`, `/home`, `/work`, `/etc`). `--die-with-parent`
//!    and the pid namespace mean killing bwrap kills everything inside;
//!    `--new-session` stops TIOCSTI-style terminal injection.
//!    A seccomp filter ([`super::seccomp`], `--seccomp FD`) refuses the
//!    kernel interfaces a cell has no use for (ptrace, mount, unshare and
//!    namespace flags of clone, so no nested user namespaces; keyrings,
//!    bpf, io_uring, modules, ...). bwrap's `--disable-userns` would say the
//!    same but needs bwrap 0.8; the filter works with any.
//! 3. `prlimit` inside the namespace: address space, CPU seconds, processes,
//!    file size, open files, no core dumps. Set *inside* so that the process
//!    count is per sandbox (the kernel counts `RLIMIT_NPROC` per user namespace).

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::Error;

/// Where the scratch dir and the capture dir appear inside the sandbox.
pub const SCRATCH: &str = "/scratch";
pub const IO: &str = "/run/llmos-io";
/// The uid/gid the sandbox runs as when llmos runs as root (Debian's `nobody`).
pub const NOBODY: u32 = 65534;

/// Resource limits of one session.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock limit of one cell; at the limit the whole sandbox is killed.
    pub wall: Duration,
    /// CPU seconds of one cell (soft `RLIMIT_CPU`, lowered per cell by the REPL).
    pub cpu_s: u64,
    /// CPU seconds of the whole session (hard `RLIMIT_CPU`).
    pub session_cpu_s: u64,
    /// Address space of each process, bytes (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Processes and threads in the sandbox (`RLIMIT_NPROC`, counted per user namespace).
    pub processes: u64,
    /// Largest file a process may write, bytes (`RLIMIT_FSIZE`).
    pub file_bytes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Bytes of stdout and of stderr returned per cell; the rest is cut with a marker.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(30),
            cpu_s: 20,
            session_cpu_s: 600,
            memory_bytes: 2 << 30,
            processes: 64,
            file_bytes: 64 << 20,
            open_files: 256,
            output_bytes: 32 << 10,
        }
    }
}

/// How to start the sandbox: the binaries and the identity to run as.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub bwrap: PathBuf,
    pub prlimit: PathBuf,
    pub python: PathBuf,
    /// `Some(setpriv)` when we are root and must drop to `nobody` first.
    pub setpriv: Option<PathBuf>,
}

fn find(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Our effective uid, without unsafe code: `/proc/self` is owned by it.
pub fn euid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

impl Sandbox {
    /// Locate bwrap, prlimit and python3 and check that bwrap can create its namespaces here.
    ///
    /// # Errors
    /// [`Error::SandboxUnavailable`] naming what is missing and how to install
    /// it, or bwrap's own message when namespaces are not permitted. We never
    /// fall back to running Python unconfined.
    pub fn detect() -> Result<Sandbox, Error> {
        let bwrap = find("bwrap").ok_or_else(|| {
            Error::SandboxUnavailable(
                "bwrap (bubblewrap) is not installed; install it (Debian/Ubuntu: apt-get install -y bubblewrap). \
                 Python is never run without a sandbox"
                    .into(),
            )
        })?;
        let prlimit = find("prlimit").ok_or_else(|| {
            Error::SandboxUnavailable(
                "prlimit is not installed; install util-linux (apt-get install -y util-linux)"
                    .into(),
            )
        })?;
        let python = PathBuf::from("/usr/bin/python3");
        if !python.is_file() {
            return Err(Error::SandboxUnavailable(
                "/usr/bin/python3 is missing; install the system Python (apt-get install -y python3). \
                 Only the system Python under /usr is visible inside the sandbox"
                    .into(),
            ));
        }
        let setpriv = if euid() == 0 {
            Some(find("setpriv").ok_or_else(|| {
                Error::SandboxUnavailable(
                    "running as root needs setpriv to drop to nobody (the process limit does not apply to root); \
                     install util-linux or run llmos as an ordinary user"
                        .into(),
                )
            })?)
        } else {
            None
        };
        let sb = Sandbox {
            bwrap,
            prlimit,
            python,
            setpriv,
        };
        sb.probe()?;
        Ok(sb)
    }

    /// Run `true` under the same namespaces and identity as a real session.
    fn probe(&self) -> Result<(), Error> {
        let mut cmd = self.outer();
        cmd.args([
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--ro-bind",
            "/usr",
            "/usr",
        ]);
        cmd.args(system_links());
        cmd.args(["--", "/usr/bin/true"]);
        let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
            Error::SandboxUnavailable(format!("cannot run {}: {e}", self.bwrap.display()))
        })?;
        if !out.status.success() {
            return Err(Error::SandboxUnavailable(format!(
                "bwrap cannot create namespaces here ({}): {}. Enable unprivileged user namespaces \
                 (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0) or, in a container, \
                 allow them (e.g. docker --security-opt seccomp=unconfined); Python is never run without a sandbox",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// `setpriv ... bwrap` or just `bwrap`.
    fn outer(&self) -> Command {
        match &self.setpriv {
            Some(sp) => {
                let mut c = Command::new(sp);
                c.arg(format!("--reuid={NOBODY}"))
                    .arg(format!("--regid={NOBODY}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(&self.bwrap);
                c
            }
            None => Command::new(&self.bwrap),
        }
    }

    /// The uid that owns files the sandbox must write.
    pub fn sandbox_uid(&self) -> Option<u32> {
        self.setpriv.as_ref().map(|_| NOBODY)
    }

    /// The full command for a session: bwrap, then prlimit, then the Python
    /// REPL; and the read end of the pipe that holds bwrap's seccomp program,
    /// which must stay open until the command has been spawned.
    ///
    /// # Errors
    /// [`Error::SandboxIo`] when the pipe cannot be made.
    pub fn command(
        &self,
        scratch: &Path,
        io: &Path,
        read_only: &[PathBuf],
        relative: &[(PathBuf, PathBuf)],
        limits: &Limits,
        repl_src: &str,
    ) -> Result<(Command, Option<OwnedFd>), Error> {
        let mut cmd = self.outer();
        cmd.args([
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "sandbox",
        ]);
        let filter = seccomp_pipe()?;
        if let Some(fd) = &filter {
            cmd.arg("--seccomp").arg(fd.as_raw_fd().to_string());
        }
        cmd.args(["--ro-bind", "/usr", "/usr"]);
        cmd.args(system_links());
        // /etc/alternatives: Debian's libblas.so.3 and liblapack.so.3 are
        // links through it (numpy, so pandas, failed to import without it).
        for f in [
            "/etc/ld.so.cache",
            "/etc/localtime",
            "/etc/mime.types",
            "/etc/alternatives",
        ] {
            if Path::new(f).exists() {
                cmd.args(["--ro-bind", f, f]);
            }
        }
        cmd.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        cmd.arg("--bind").arg(scratch).arg(SCRATCH);
        cmd.arg("--bind").arg(io).arg(IO);
        // After /tmp's tmpfs, so that a folder under the host's /tmp shows through.
        for d in read_only {
            cmd.arg("--ro-bind").arg(d).arg(d);
        }
        // Again under the scratch folder at the user's relative path (bwrap
        // makes the empty mount point in scratch; host-side listings of
        // produced files see only that empty folder).
        for (d, rel) in relative {
            if rel.is_relative()
                && !rel
                    .components()
                    .any(|c| c == std::path::Component::ParentDir)
            {
                cmd.arg("--ro-bind")
                    .arg(d)
                    .arg(Path::new(SCRATCH).join(rel));
            }
        }
        cmd.args(["--chdir", SCRATCH, "--clearenv"]);
        for (k, v) in [
            ("HOME", SCRATCH),
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("LANG", "C.UTF-8"),
            ("TMPDIR", "/tmp"),
            ("MPLBACKEND", "Agg"),
            ("OPENBLAS_NUM_THREADS", "1"),
            ("OMP_NUM_THREADS", "1"),
        ] {
            cmd.args(["--setenv", k, v]);
        }
        cmd.arg("--").arg(&self.prlimit);
        let lim: [(&str, u64); 6] = [
            ("--as", limits.memory_bytes),
            ("--cpu", limits.session_cpu_s),
            ("--nproc", limits.processes),
            ("--fsize", limits.file_bytes),
            ("--nofile", limits.open_files),
            ("--core", 0),
        ];
        for (flag, v) in lim {
            cmd.arg(format!("{flag}={v}"));
        }
        let py: [OsString; 5] = [
            self.python.clone().into(),
            "-I".into(),
            "-B".into(),
            "-u".into(),
            "-c".into(),
        ];
        cmd.arg("--").args(py).arg(repl_src);
        Ok((cmd, filter))
    }
}

/// Where the sandbox mounts its own file systems: a read-only folder may
/// lie below one of these (it is bound after them) but may not be one of
/// them or hold one, or it would hide the scratch dir or replace the system.
const MOUNT_POINTS: [&str; 10] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib64", "/proc", "/dev", "/tmp", SCRATCH, IO,
];

/// Check a folder the sandbox is to show read-only: it must be canonical
/// (absolute, no symlinks) and must not cover a mount point of the sandbox.
///
/// # Errors
/// [`Error::SandboxUnavailable`] naming the folder and the mount point.
pub fn check_read_only(dir: &Path) -> Result<(), Error> {
    if !dir.is_absolute() {
        return Err(Error::SandboxUnavailable(format!(
            "read-only folder {} must be an absolute, canonical path",
            dir.display()
        )));
    }
    if let Some(m) = MOUNT_POINTS.iter().find(|m| Path::new(m).starts_with(dir)) {
        return Err(Error::SandboxUnavailable(format!(
            "folder {} cannot be shown to Python: it holds the sandbox's own {m}; give a folder below it",
            dir.display()
        )));
    }
    Ok(())
}

/// A pipe holding the seccomp program: written whole and closed (it is far
/// below the pipe's buffer), the read end left inheritable for bwrap. A pipe
/// rather than a file: should a concurrently spawned child inherit the read
/// end too, it could at most drain it, and then bwrap fails to start
/// instead of running unfiltered.
fn seccomp_pipe() -> Result<Option<OwnedFd>, Error> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
    use std::io::Write;
    let Some(prog) = super::seccomp::program() else {
        return Ok(None);
    };
    let io = |op: &str, e: std::io::Error| Error::SandboxIo {
        op: format!("seccomp filter: {op}"),
        source: e,
    };
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| io("pipe", e.into()))?;
    std::fs::File::from(w)
        .write_all(&prog)
        .map_err(|e| io("write", e))?;
    fcntl(r.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty())).map_err(|e| io("fcntl", e.into()))?;
    Ok(Some(r))
}

/// `/bin`, `/lib`, `/lib64`, `/sbin`: symlinks into `/usr` on merged-usr
/// systems (recreated as links), real directories elsewhere (bound read-only).
fn system_links() -> Vec<OsString> {
    let mut args = Vec::new();
    for d in ["/bin", "/sbin", "/lib", "/lib64", "/lib32"] {
        let p = Path::new(d);
        match std::fs::read_link(p) {
            Ok(target) => {
                args.extend(["--symlink".into(), target.into_os_string(), d.into()]);
            }
            Err(_) if p.is_dir() => args.extend(["--ro-bind".into(), d.into(), d.into()]),
            Err(_) => {}
        }
    }
    args
}
