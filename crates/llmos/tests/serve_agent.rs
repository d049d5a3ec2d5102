//! The agent loop through `llmos serve` (issue 6), end to end: starts the
//! server on a free port with qwen2.5-coder-0.5b-instruct (python off, so
//! which tools are enabled is known) and runs tests/serve/test_agent.py with
//! the official `openai` Python package: a calculator task with its step in
//! the trace, a client tool passed through as `tool_calls` and resumed,
//! errors for unknown, disabled and malformed `llmos` fields, and a
//! streamed run. The Python script checks the API; this test fails when it
//! exits non-zero.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running server, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn agent_loop_through_llmos_serve() {
    let Some(qwen) = common::model("qwen2.5-coder-0.5b-instruct") else {
        return;
    };
    let has_openai = Command::new("python3")
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_openai {
        if std::env::var("LLMOS_REQUIRE_MODELS").as_deref() == Ok("1") {
            panic!("python3 cannot import openai; run `python3 -m pip install -r tests/serve/requirements.txt`");
        }
        eprintln!("skipping: python3 cannot import openai");
        return;
    }
    let mut child = common::llmos()
        .args(["serve", "-m"])
        .arg(&qwen)
        .args([
            "--port",
            "0",
            "--parallel",
            "2",
            "--ctx",
            "2048",
            "--no-python",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning llmos serve");
    let stderr = child.stderr.take().expect("stderr");
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[serve] {line}");
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("llmos serve did not start listening within 120 s");
    let t0 = Instant::now();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/serve/test_agent.py");
    let status = Command::new("python3")
        .arg(script)
        .args(["--url", &format!("{url}/v1")])
        .args(["--model", "qwen2.5-coder-0.5b-instruct"])
        .status()
        .expect("running python3");
    eprintln!("test_agent.py: {:.1} s", t0.elapsed().as_secs_f64());
    drop(server);
    assert!(
        status.success(),
        "tests/serve/test_agent.py failed ({status})"
    );
}
