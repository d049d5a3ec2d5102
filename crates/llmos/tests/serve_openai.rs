//! `llmos serve` end to end: starts the server on free ports with the real
//! models and runs tests/serve/test_openai.py against it with the official
//! `openai` Python package (tests/serve/requirements.txt; `.ci/run` installs
//! it). The Python script is where the API behaviour is checked; this test
//! fails when the script exits non-zero.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running server, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `llmos serve ARGS --port 0` and waits for its "listening on" line.
fn start(args: &[&str]) -> Server {
    let mut child = common::llmos()
        .arg("serve")
        .args(args)
        .args(["--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning llmos serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[serve] {line}");
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send(url);
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("llmos serve did not start listening within 120 s");
    Server { child, url }
}

fn python_has_openai() -> bool {
    Command::new("python3")
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn openai_client_against_llmos_serve() {
    let (Some(small), Some(qwen)) = (
        common::model("smollm2-135m-instruct"),
        common::model("qwen2.5-coder-0.5b-instruct"),
    ) else {
        return;
    };
    if !python_has_openai() {
        if std::env::var("LLMOS_REQUIRE_MODELS").as_deref() == Ok("1") {
            panic!("python3 cannot import openai; run `python3 -m pip install -r tests/serve/requirements.txt`");
        }
        eprintln!(
            "skipping: python3 cannot import openai (pip install -r tests/serve/requirements.txt)"
        );
        return;
    }
    let (small, qwen) = (
        small.to_string_lossy().into_owned(),
        qwen.to_string_lossy().into_owned(),
    );
    let main = start(&[
        "-m",
        &small,
        "-m",
        &qwen,
        "--parallel",
        "4",
        "--ctx",
        "2048",
        "--max-body",
        "1000000",
    ]);
    // One slot and a queue of one: the 429 test.
    let busy = start(&[
        "-m",
        &small,
        "--parallel",
        "1",
        "--queue",
        "1",
        "--ctx",
        "512",
        "-t",
        "1",
    ]);
    let t0 = Instant::now();
    let status = Command::new("python3")
        .arg(repo_root().join("tests/serve/test_openai.py"))
        .args(["--url", &format!("{}/v1", main.url)])
        .args(["--busy-url", &format!("{}/v1", busy.url)])
        .args([
            "--model",
            "smollm2-135m-instruct",
            "--tool-model",
            "qwen2.5-coder-0.5b-instruct",
        ])
        .args(["--ctx", "2048", "--max-body", "1000000", "--json-schema"])
        .status()
        .expect("running python3");
    eprintln!("test_openai.py: {:.1} s", t0.elapsed().as_secs_f64());
    assert!(
        status.success(),
        "tests/serve/test_openai.py failed ({status})"
    );
}

#[test]
fn serve_refuses_a_public_address_without_an_api_key() {
    // Checked before any model is loaded, so no model is needed.
    let out = common::llmos()
        .args(["serve", "--host", "0.0.0.0", "-m", "/nonexistent.gguf"])
        .env_remove("LLMOS_API_KEY")
        .output()
        .expect("running llmos");
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("--api-key"), "{err}");
}

#[test]
fn serve_with_api_key_rejects_requests_without_it() {
    let Some(small) = common::model("smollm2-135m-instruct") else {
        return;
    };
    let s = start(&[
        "-m",
        &small.to_string_lossy(),
        "--api-key",
        "sekrit",
        "--parallel",
        "1",
        "--ctx",
        "256",
        "-t",
        "1",
    ]);
    let addr = s.url.trim_start_matches("http://").to_string();
    let get = |auth: Option<&str>| {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&addr).expect("connect");
        let h = auth.map_or(String::new(), |a| format!("Authorization: Bearer {a}\r\n"));
        write!(
            c,
            "GET /v1/models HTTP/1.1\r\nHost: x\r\n{h}Connection: close\r\n\r\n"
        )
        .expect("write");
        let mut s = String::new();
        c.read_to_string(&mut s).expect("read");
        s
    };
    let none = get(None);
    assert!(none.starts_with("HTTP/1.1 401"), "{none}");
    assert!(none.contains("\"authentication_error\""), "{none}");
    assert!(get(Some("wrong")).starts_with("HTTP/1.1 401"));
    let ok = get(Some("sekrit"));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    // No CORS headers unless --cors-origin is given.
    assert!(
        !ok.to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{ok}"
    );
}
