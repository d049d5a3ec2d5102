//! MCP both ways, against the official Python SDK (PyPI `mcp` 2.x, pinned in
//! tests/mcp/requirements.txt, which `.ci/run` installs):
//!
//! - the SDK's client drives `llmos mcp` over stdio and streamable HTTP
//!   (tests/mcp/client_test.py holds the checks);
//! - our client (llmos-mcp) lists and calls the tools of an SDK server
//!   (tests/mcp/order_server.py) over stdio and streamable HTTP;
//! - `llmos agent --mcp 'python3 tests/mcp/order_server.py'` answers from the
//!   MCP tool with qwen2.5-coder-0.5b-instruct.
//!
//! Without the Python package the tests skip with a note, or fail when
//! LLMOS_REQUIRE_MODELS=1 (CI).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use llmos_mcp::client::{connect_named, Options, ServerSpec};
use serde_json::json;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script(name: &str) -> String {
    repo_root()
        .join("tests/mcp")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The SDK is importable; otherwise skip (false) or, in CI, fail.
fn python_has_mcp() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import mcp.server.mcpserver, mcp.client"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("LLMOS_REQUIRE_MODELS").as_deref() == Ok("1") {
            panic!("python3 cannot import mcp; run `python3 -m pip install -r tests/mcp/requirements.txt`");
        }
        eprintln!(
            "skipping: python3 cannot import mcp (pip install -r tests/mcp/requirements.txt)"
        );
    }
    ok
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A files root holding hello.txt.
fn files_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("hello.txt"),
        "hello from the llmos mcp test\n",
    )
    .expect("write hello.txt");
    dir
}

fn run_client_test(args: &[&str]) {
    let t0 = Instant::now();
    let out = Command::new("python3")
        .arg(script("client_test.py"))
        .args(args)
        .output()
        .expect("running python3");
    let (o, e) = (common::stdout(&out), common::stderr(&out));
    eprintln!(
        "client_test.py ({:.1} s):\n{o}\n{e}",
        t0.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "client_test.py failed:\n{o}\n{e}");
    assert!(o.contains("all checks passed"), "{o}");
}

#[test]
fn python_sdk_client_against_llmos_mcp_over_stdio() {
    if !python_has_mcp() {
        return;
    }
    let root = files_root();
    let r = root.path().to_string_lossy().into_owned();
    let bin = env!("CARGO_BIN_EXE_llmos");
    run_client_test(&[
        "--root",
        &r,
        "--stdio",
        bin,
        "mcp",
        "--no-python",
        "--files",
        &r,
    ]);
}

#[test]
fn python_sdk_client_against_llmos_mcp_over_http() {
    if !python_has_mcp() {
        return;
    }
    let root = files_root();
    let r = root.path().to_string_lossy().into_owned();
    let mut child = common::llmos()
        .args(["mcp", "--no-python", "--files", &r, "--http", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning llmos mcp --http");
    let stderr = child.stderr.take().expect("stderr");
    let _server = Proc(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[llmos mcp] {line}");
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("llmos mcp --http did not say where it listens within 30 s");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{url}"
    );
    run_client_test(&["--root", &r, "--url", &url]);
}

#[test]
fn llmos_mcp_refuses_a_non_loopback_address() {
    let out = common::llmos()
        .args(["mcp", "--no-python", "--http", "0.0.0.0:0"])
        .output()
        .expect("running llmos mcp");
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(err.contains("--allow-remote"), "{err}");
}

/// Lists the order server's tools (with a built-in `calculator` already
/// taken) and calls them; the results must be untrusted.
fn check_order_server(spec: &ServerSpec) {
    let mut taken = vec!["calculator".to_string()];
    let tools = connect_named(spec, &Options::default(), &mut taken)
        .unwrap_or_else(|e| panic!("connecting to the order server: {e}"));
    let names: Vec<&str> = tools.iter().map(|t| t.name()).collect();
    assert!(names.contains(&"order_status"), "{names:?}");
    // The server's `calculator` collides with the built-in: prefixed.
    assert!(names.contains(&"orders_calculator"), "{names:?}");
    let status = tools
        .iter()
        .find(|t| t.name() == "order_status")
        .expect("order_status");
    assert!(status.description().contains("delivery status"));
    assert_eq!(status.parameters()["required"], json!(["order_id"]));
    assert_eq!(status.definition()["function"]["strict"], false);

    let out = status.call(json!({"order_id": "12345"}));
    assert!(!out.is_error, "{}", out.content);
    assert!(out.untrusted, "a foreign result must be untrusted");
    assert_eq!(out.content, "Order 12345 status: shipped");

    // The server's readOnlyHint reaches the guard: a read-only tool is no
    // side effect; a tool not declared read-only is one.
    assert_eq!(status.side_effect(&json!({"order_id": "1"})), None);
    let cancel = tools
        .iter()
        .find(|t| t.name() == "cancel_order")
        .expect("cancel_order");
    let effect = cancel
        .side_effect(&json!({"order_id": "1"}))
        .expect("cancel_order is a side effect");
    assert!(effect.contains("not declared read-only"), "{effect}");

    let bad = status.call(json!({"order_id": 5}));
    assert!(bad.is_error && bad.untrusted, "{bad:?}");

    let calc = tools
        .iter()
        .find(|t| t.name() == "orders_calculator")
        .expect("orders_calculator");
    let out = calc.call(json!({"expression": "1+1"}));
    assert_eq!(out.content, "orders server got 1+1");
}

#[test]
fn our_client_against_a_python_sdk_server_over_stdio() {
    if !python_has_mcp() {
        return;
    }
    let line = format!(
        "python3 '{}' --with-calculator --with-cancel",
        script("order_server.py")
    );
    let spec = ServerSpec::command_line(&line).expect("command line");
    check_order_server(&spec);
}

#[test]
fn our_client_against_a_python_sdk_server_over_http() {
    if !python_has_mcp() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("python3")
        .arg(script("order_server.py"))
        .args([
            "--with-calculator",
            "--with-cancel",
            "--http",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawning order_server.py --http");
    let _server = Proc(child);
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "order_server.py did not listen on {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    check_order_server(&ServerSpec::url(&format!("http://127.0.0.1:{port}/mcp")));
}

#[test]
fn agent_with_an_mcp_server_that_cannot_start_names_it() {
    // MCP servers connect before the model loads: no model needed.
    let out = common::llmos()
        .args([
            "agent",
            "--no-python",
            "--mcp",
            "/nonexistent/mcp-server --port 1",
            "-m",
            "/nonexistent.gguf",
            "hi",
        ])
        .output()
        .expect("running llmos agent");
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("mcp server `/nonexistent/mcp-server --port 1`: cannot start"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn agent_answers_from_an_mcp_tool() {
    let Some(m) = common::model("qwen2.5-coder-0.5b-instruct") else {
        return;
    };
    if !python_has_mcp() {
        return;
    }
    let o = common::llmos()
        .args(["agent", "--no-python", "--max-steps", "4", "-m"])
        .arg(&m)
        .args(["--mcp", &format!("python3 '{}'", script("order_server.py"))])
        .arg("What is the status of order 12345?")
        .output()
        .expect("run llmos agent");
    let out = common::stdout(&o);
    assert!(o.status.success(), "{}\n{out}", common::stderr(&o));
    let call = out
        .lines()
        .find(|l| l.starts_with("call: order_status"))
        .unwrap_or_else(|| panic!("no order_status call:\n{out}"));
    assert!(call.contains("12345"), "{out}");
    // The foreign result reached the model as untrusted (spotlighted) data.
    assert!(
        out.contains("result of order_status (untrusted data)"),
        "{out}"
    );
    let answer = out.split("── answer\n").nth(1).unwrap_or_default();
    assert!(
        answer.to_lowercase().contains("shipped"),
        "the answer lacks the status:\n{out}"
    );
}
