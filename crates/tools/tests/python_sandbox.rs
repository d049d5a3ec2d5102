//! Sandbox escape tests for the `python` tool (issue 6: network, reading
//! outside the scratch dir, fork bomb, memory bomb, infinite loop, signalling
//! the parent, huge output), plus state and file results.
//!
//! Each test would fail if its layer of confinement were missing. Without
//! bwrap they are skipped with a message, unless `LLMOS_REQUIRE_SANDBOX=1`
//! (CI) makes that a failure.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use llmos_tools::python::{sandbox, CellResult, Limits, Python, Sandbox, Status};
use llmos_tools::{SideEffect, Tool};
use serde_json::json;

fn n_min() -> usize {
    5
}

fn session(limits: Limits) -> Option<Python> {
    match Sandbox::detect() {
        Ok(sb) => match Python::with_sandbox(sb, limits, &std::env::temp_dir()) {
            Ok(p) => Some(p),
            Err(e) => panic!("{e}"),
        },
        Err(e) if std::env::var("LLMOS_REQUIRE_SANDBOX").is_ok_and(|v| v == "1") => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

fn quick() -> Limits {
    Limits {
        wall: Duration::from_secs(10),
        cpu_s: 10,
        ..Limits::default()
    }
}

fn run(p: &Python, code: &str) -> CellResult {
    p.run(code).unwrap_or_else(|e| panic!("{e}"))
}

/// Processes whose working directory is `dir` (the sandbox's scratch dir),
/// found by inode so it works across mount namespaces.
fn processes_in(dir: &Path) -> usize {
    let Ok(want) = std::fs::metadata(dir).map(|m| (m.dev(), m.ino())) else {
        return 0;
    };
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    rd.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::metadata(e.path().join("cwd")).ok())
        .filter(|m| (m.dev(), m.ino()) == want)
        .count()
}

#[test]
fn state_persists_between_calls_and_last_expression_is_shown() {
    let Some(p) = session(quick()) else { return };
    let r = run(&p, "x = 41\nimport math");
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(r.fresh_process);
    let r = run(&p, "x + 1");
    assert_eq!(
        (r.stdout.trim(), &r.status, r.fresh_process),
        ("42", &Status::Ok, false),
        "{r:?}"
    );
    let r = run(&p, "1/0");
    assert_eq!(r.status, Status::Exception("ZeroDivisionError".into()));
    assert!(
        r.stderr.contains("ZeroDivisionError") && !r.stderr.contains("_run"),
        "{}",
        r.stderr
    );
    let r = run(&p, "print(math.factorial(5), x)");
    assert_eq!(
        r.stdout.trim(),
        "120 41",
        "an exception must not lose the session: {r:?}"
    );
}

#[test]
fn network_access_is_blocked() {
    let Some(p) = session(quick()) else { return };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("{e}"));
    let code = format!(
        "import socket\n\
         for host, port in [('127.0.0.1', {port}), ('1.1.1.1', 53), ('example.com', 80)]:\n\
         \x20   try:\n\
         \x20       socket.create_connection((host, port), timeout=3).close()\n\
         \x20       print('CONNECTED', host)\n\
         \x20   except OSError as e:\n\
         \x20       print('blocked', host, e)\n"
    );
    let r = run(&p, &code);
    assert!(!r.stdout.contains("CONNECTED"), "{r:?}");
    assert_eq!(r.stdout.matches("blocked").count(), 3, "{r:?}");
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the host listener saw a connection from the sandbox: {other:?}"),
    }
}

#[test]
fn files_outside_scratch_cannot_be_read() {
    let Some(p) = session(quick()) else { return };
    // A host file we know exists, and host places that must stay hidden.
    let here = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    assert!(std::path::Path::new(here).exists());
    let code = format!(
        "import os\n\
         for path in [{here:?}, '/root/.bashrc', '/etc/passwd', '/etc/shadow', '/work', '/home']:\n\
         \x20   try:\n\
         \x20       if os.path.isdir(path):\n\
         \x20           print('LISTED', path, os.listdir(path)[:3])\n\
         \x20       else:\n\
         \x20           open(path).read(10); print('READ', path)\n\
         \x20   except OSError as e:\n\
         \x20       print('denied', path, type(e).__name__)\n\
         try:\n\
         \x20   open('/usr/evil', 'w'); print('WROTE /usr')\n\
         except OSError as e:\n\
         \x20   print('denied /usr', type(e).__name__)\n"
    );
    let r = run(&p, &code);
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(
        !r.stdout.contains("READ") && !r.stdout.contains("LISTED") && !r.stdout.contains("WROTE"),
        "{}",
        r.stdout
    );
    assert_eq!(r.stdout.matches("denied").count(), 7, "{}", r.stdout);
}

#[test]
fn fork_bomb_is_contained() {
    let limits = Limits {
        wall: Duration::from_secs(5),
        processes: 32,
        ..quick()
    };
    let Some(p) = session(limits) else { return };
    // Bounded first: count how many children we get before fork fails.
    let r = run(
        &p,
        "import os, time\nn = 0\ntry:\n    for _ in range(500):\n        if os.fork() == 0:\n            time.sleep(60); os._exit(0)\n        n += 1\nexcept OSError as e:\n    print('fork failed:', e)\nprint('children', n)",
    );
    assert!(
        processes_in(&p.scratch()) > n_min(),
        "the children should be alive and visible: {r:?}"
    );
    let n: usize = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("children "))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(999);
    assert!(n < 32, "the process limit did not hold: {r:?}");
    // Then a real one: it must come back at the wall-clock limit at the latest.
    let t = Instant::now();
    let r = run(
        &p,
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    );
    assert!(t.elapsed() < Duration::from_secs(9), "{:?}", t.elapsed());
    assert!(
        matches!(r.status, Status::TimedOut | Status::Died(_)),
        "{r:?}"
    );
    let ok = Command::new("/usr/bin/true")
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "the host could not start a process after the fork bomb");
    let t = Instant::now();
    while processes_in(&p.scratch()) > 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        processes_in(&p.scratch()),
        0,
        "sandbox processes outlived the kill"
    );
}

#[test]
fn memory_bomb_is_contained() {
    let limits = Limits {
        memory_bytes: 512 << 20,
        ..quick()
    };
    let Some(p) = session(limits) else { return };
    // 8 GiB at once: calloc would succeed lazily on this host without RLIMIT_AS.
    let r = run(&p, "b = bytearray(8 << 30)\nprint(len(b))");
    assert_eq!(r.status, Status::Exception("MemoryError".into()), "{r:?}");
    let r = run(&p, "a = []\nwhile True:\n    a.append(bytearray(10 << 20))");
    assert_eq!(r.status, Status::Exception("MemoryError".into()), "{r:?}");
    let r = run(&p, "del a\nprint('still here')");
    assert_eq!(
        (r.stdout.trim(), r.fresh_process),
        ("still here", false),
        "{r:?}"
    );
}

#[test]
fn infinite_loop_is_killed_at_the_timeout() {
    let limits = Limits {
        wall: Duration::from_secs(2),
        ..quick()
    };
    let Some(p) = session(limits) else { return };
    run(&p, "x = 1");
    let t = Instant::now();
    let r = run(&p, "while True:\n    pass");
    let took = t.elapsed();
    assert_eq!(r.status, Status::TimedOut);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert!(p.render(&r).contains("wall-clock limit"));
    let r = run(&p, "print('x' in globals())");
    assert!(
        r.fresh_process && r.stdout.trim() == "False",
        "a fresh process after the kill: {r:?}"
    );
}

#[test]
fn cpu_limit_ends_a_busy_cell_before_the_wall_clock() {
    let limits = Limits {
        wall: Duration::from_secs(30),
        cpu_s: 1,
        ..quick()
    };
    let Some(p) = session(limits) else { return };
    let t = Instant::now();
    let r = run(&p, "while True:\n    pass");
    assert!(matches!(r.status, Status::Died(_)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[test]
fn signalling_the_parent_does_not_hurt_the_host() {
    let Some(p) = session(quick()) else { return };
    // A host process with the sandbox's own uid: the one a kill(-1) could reach without a pid namespace.
    let mut sentinel = if sandbox::euid() == 0 {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sleep",
                "60",
            ])
            .spawn()
    } else {
        Command::new("sleep").arg("60").spawn()
    }
    .unwrap_or_else(|e| panic!("{e}"));
    let r = run(&p, "import os\nos.kill(os.getppid(), 9)\ntry:\n    os.kill(-1, 9)\nexcept OSError as e:\n    print(e)\nprint('alive')");
    // kill(-1) finds nothing it may signal (ESRCH) or kills only sandbox processes; the ns init ignores SIGKILL.
    assert!(r.stdout.trim_end().ends_with("alive"), "{r:?}");
    // kill -9 -1 from a child: takes down the REPL itself, nothing outside.
    let r = run(&p, "import os\nif os.fork() == 0:\n    os.kill(-1, 9)\n    os._exit(0)\nimport time; time.sleep(5)");
    assert!(matches!(r.status, Status::Died(_)), "{r:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        matches!(sentinel.try_wait(), Ok(None)),
        "the host sentinel was killed"
    );
    let _ = sentinel.kill();
    let _ = sentinel.wait();
    let r = run(&p, "print(6 * 7)");
    assert_eq!((r.stdout.trim(), r.fresh_process), ("42", true), "{r:?}");
}

#[test]
fn huge_output_is_truncated_with_a_marker() {
    let limits = Limits {
        output_bytes: 1000,
        ..quick()
    };
    let Some(p) = session(limits) else { return };
    let r = run(
        &p,
        "import sys\nprint('x' * 10_000_000)\n_ = sys.stderr.write('e' * 5000)",
    );
    assert_eq!(r.status, Status::Ok, "{:?}", r.status);
    assert!(
        r.stdout.starts_with(&"x".repeat(1000)),
        "{}",
        &r.stdout[..50]
    );
    assert!(
        r.stdout.contains("[output truncated at 1000 bytes]")
            && r.stdout.contains("10000001 bytes"),
        "{}",
        &r.stdout[1000..]
    );
    assert!(r.stdout.len() < 1100 && r.stderr.contains("[output truncated at 1000 bytes]"));
}

#[test]
fn created_files_are_returned() {
    let Some(p) = session(quick()) else { return };
    let out = p.call(json!({"code": "import os\nos.makedirs('out/deep', exist_ok=True)\nopen('out/deep/t.csv','w').write('a,b\\n1,2\\n')\nopen('r.txt','w').write('hi')"}));
    assert!(!out.is_error && out.untrusted, "{out:?}");
    assert!(
        out.content.contains("out/deep/t.csv (8 bytes)") && out.content.contains("r.txt (2 bytes)"),
        "{}",
        out.content
    );
    let written = out.side_effects.iter().find_map(|s| match s {
        SideEffect::FilesWritten(v) => Some(v.clone()),
        _ => None,
    });
    let written = written.unwrap_or_default();
    assert_eq!(written.len(), 2);
    let csv = written
        .iter()
        .find(|p| p.ends_with("t.csv"))
        .map(std::fs::read_to_string);
    assert_eq!(csv.and_then(Result::ok).as_deref(), Some("a,b\n1,2\n"));
    // Unchanged files are not reported again.
    let out = p.call(json!({"code": "print(open('r.txt').read())"}));
    assert!(
        out.side_effects.is_empty() && out.content.contains("hi"),
        "{out:?}"
    );
}

#[test]
fn swapping_a_capture_file_for_a_symlink_leaks_nothing() {
    let Some(p) = session(quick()) else { return };
    let secret_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let secret = secret_dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-HOST-DATA").unwrap_or_else(|e| panic!("{e}"));
    let code = format!(
        "import os\nos.remove('/run/llmos-io/stdout')\nos.symlink({:?}, '/run/llmos-io/stdout')",
        secret.display().to_string()
    );
    let r = run(&p, &code);
    assert!(
        !r.stdout.contains("TOP-SECRET") && !r.stderr.contains("TOP-SECRET"),
        "{r:?}"
    );
    let r = run(&p, "print('next')");
    assert!(
        r.stdout.contains("next") && !r.stdout.contains("TOP-SECRET"),
        "{r:?}"
    );
}

#[test]
fn bad_arguments_are_explained() {
    let Some(p) = session(quick()) else { return };
    let out = p.call(json!({"code": 3}));
    assert!(
        out.is_error && out.content.contains("'code' must be a string"),
        "{out:?}"
    );
    let out = p.call(json!({"source": "1"}));
    assert!(
        out.is_error && out.content.contains("unknown argument 'source'"),
        "{out:?}"
    );
}

/// The seccomp layer: kernel interfaces behind container escapes fail with
/// EPERM from inside a cell (nested user namespaces, mounts, ptrace,
/// keyrings, bpf, io_uring, open_by_handle_at), while threads, subprocesses
/// and ordinary files still work. Without the filter, `unshare(CLONE_NEWUSER)`
/// succeeds inside bwrap (the host allows user namespaces: bwrap itself uses
/// one), so this test fails if the filter is not installed.
#[test]
fn seccomp_refuses_escape_syscalls_but_not_ordinary_work() {
    let Some(p) = session(quick()) else { return };
    let code = "import ctypes, os, subprocess, threading\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        libc.syscall.restype = ctypes.c_long\n\
        calls = {\n\
        \x20   'unshare_user': (272, 0x10000000),\n\
        \x20   'unshare_net': (272, 0x40000000),\n\
        \x20   'clone_newuser': (56, 0x10000000 | 17),\n\
        \x20   'mount': (165, 0),\n\
        \x20   'ptrace_traceme': (101, 0),\n\
        \x20   'keyctl': (250, 0),\n\
        \x20   'bpf': (321, 0),\n\
        \x20   'io_uring_setup': (425, 0),\n\
        \x20   'open_by_handle_at': (304, 0),\n\
        \x20   'x32_getpid': (0x40000000 + 39, 0),\n\
        }\n\
        for name, (nr, arg) in calls.items():\n\
        \x20   r = libc.syscall(nr, ctypes.c_long(arg), 0, 0, 0, 0)\n\
        \x20   e = ctypes.get_errno()\n\
        \x20   print(name, 'EPERM' if r == -1 and e == 1 else f'ALLOWED r={r} errno={e}')\n\
        \x20   if r == 0 and nr == 56: os._exit(0)\n\
        out = []\n\
        t = threading.Thread(target=lambda: out.append(1)); t.start(); t.join()\n\
        print('thread', out)\n\
        print('subprocess', subprocess.run(['/usr/bin/echo', 'hi'], capture_output=True, text=True).stdout.strip())\n\
        open('f.txt', 'w').write('x'); print('file', open('f.txt').read())\n";
    let r = run(&p, code);
    for name in [
        "unshare_user",
        "unshare_net",
        "clone_newuser",
        "mount",
        "ptrace_traceme",
        "keyctl",
        "bpf",
        "io_uring_setup",
        "open_by_handle_at",
        "x32_getpid",
    ] {
        assert!(
            r.stdout.contains(&format!("{name} EPERM")),
            "{name} not refused: {r:?}"
        );
    }
    assert!(r.stdout.contains("thread [1]"), "{r:?}");
    assert!(r.stdout.contains("subprocess hi"), "{r:?}");
    assert!(r.stdout.contains("file x"), "{r:?}");
}

/// `llmos agent --files DIR`: Python could not see DIR, so a question about
/// a CSV in it could not be answered with code. Now the folder is bound
/// read-only at its own path; a sibling folder stays hidden.
#[test]
fn read_only_folders_are_readable_but_not_writable() {
    let Some(p) = session(quick()) else { return };
    let host = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let shown = host.path().join("data");
    let hidden = host.path().join("private");
    for d in [&shown, &hidden] {
        std::fs::create_dir(d).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(shown.join("t.csv"), "a,b\n1,2\n3,4\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(hidden.join("secret.txt"), "hunter2").unwrap_or_else(|e| panic!("{e}"));
    let p = p.read_only(&[&shown]).unwrap_or_else(|e| panic!("{e}"));
    let shown = std::fs::canonicalize(&shown).unwrap_or_else(|e| panic!("{e}"));
    let hidden = std::fs::canonicalize(&hidden).unwrap_or_else(|e| panic!("{e}"));
    assert!(p.description().contains(&shown.display().to_string()));
    let code = format!(
        "import csv\n\
         rows = list(csv.DictReader(open({csv:?})))\n\
         print('SUM', sum(int(r['b']) for r in rows))\n\
         for path in [{w:?}, {s:?}]:\n\
         \x20   try:\n\
         \x20       open(path, 'w').write('x'); print('WROTE', path)\n\
         \x20   except OSError as e:\n\
         \x20       print('denied', type(e).__name__)\n\
         try:\n\
         \x20   open({secret:?}).read(); print('READ secret')\n\
         except OSError as e:\n\
         \x20   print('denied', type(e).__name__)\n",
        csv = shown.join("t.csv"),
        w = shown.join("t.csv"),
        s = shown.join("new.txt"),
        secret = hidden.join("secret.txt"),
    );
    let r = run(&p, &code);
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(r.stdout.contains("SUM 6"), "{}", r.stdout);
    assert_eq!(r.stdout.matches("denied").count(), 3, "{}", r.stdout);
    assert!(!shown.join("new.txt").exists());
    assert_eq!(
        std::fs::read_to_string(shown.join("t.csv")).unwrap_or_default(),
        "a,b\n1,2\n3,4\n"
    );
}

/// `llmos agent --files ./data "... data/t.csv ..."`: the code opens the
/// path as the user wrote it, relative to the user's working directory, but
/// runs in the scratch folder. A folder under the working directory is shown
/// there too (read-only), and it is not reported as a produced file.
#[test]
fn read_only_folders_are_also_at_the_users_relative_path() {
    let Some(p) = session(quick()) else { return };
    let host = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cwd = std::fs::canonicalize(host.path()).unwrap_or_else(|e| panic!("{e}"));
    let shown = cwd.join("data");
    std::fs::create_dir(&shown).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(shown.join("t.csv"), "a,b\n1,2\n3,4\n").unwrap_or_else(|e| panic!("{e}"));
    let p = p
        .read_only_from(&[&shown], Some(&cwd))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        p.description()
            .contains("from the working directory as data/"),
        "{}",
        p.description()
    );
    let r = run(
        &p,
        "import csv\n\
         rows = list(csv.DictReader(open('data/t.csv')))\n\
         print('SUM', sum(int(r['b']) for r in rows))\n\
         try:\n\
         \x20   open('data/new.txt', 'w').write('x'); print('WROTE')\n\
         except OSError as e:\n\
         \x20   print('denied', type(e).__name__)\n\
         open('out.txt', 'w').write('ok')\n",
    );
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(r.stdout.contains("SUM 6"), "{}", r.stdout);
    assert!(r.stdout.contains("denied"), "{}", r.stdout);
    assert!(!shown.join("new.txt").exists());
    let produced: Vec<String> = r
        .files
        .iter()
        .map(|(f, _)| f.display().to_string())
        .collect();
    assert_eq!(produced, ["out.txt"], "{r:?}");
    // A folder outside the working directory: absolute path only.
    let Some(p) = session(quick()) else { return };
    let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = p
        .read_only_from(&[other.path()], Some(&cwd))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!p.description().contains("from the working directory"));
}

#[test]
fn a_read_only_folder_may_not_cover_the_sandbox_mounts() {
    let Some(p) = session(quick()) else { return };
    let e = p
        .read_only(&["/"])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("cannot be shown to Python"), "{e}");
    let Some(p) = session(quick()) else { return };
    let e = p
        .read_only(&["/no/such/folder"])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("/no/such/folder"), "{e}");
}

/// The system's data-analysis packages work inside the sandbox (Debian's
/// numpy loads libblas.so.3 through /etc/alternatives). .ci/run installs
/// python3-pandas; where it is missing the test says so and passes.
#[test]
fn pandas_and_numpy_of_the_system_python_import() {
    if !Path::new("/usr/lib/python3/dist-packages/pandas").is_dir() {
        eprintln!("skipped: python3-pandas is not installed (apt-get install python3-pandas)");
        return;
    }
    let Some(p) = session(quick()) else { return };
    let r = run(
        &p,
        "import numpy, pandas, io\ndf = pandas.read_csv(io.StringIO('a,b\\n1,2\\n3,4'))\nprint(int(df['b'].sum()), float(numpy.mean([1, 2])))",
    );
    assert!(matches!(r.status, Status::Ok), "{r:?}");
    assert_eq!(r.stdout.trim(), "6 1.5", "{r:?}");
    assert!(p.description().contains("pandas"), "{}", p.description());
}
