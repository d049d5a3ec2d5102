//! `POST /v1/embeddings` on `llmos serve --embedding-model all-minilm-l6-v2`,
//! over a raw HTTP/1.1 socket: string and list inputs, float and base64
//! encodings, usage, and the 400s. Vectors are checked against the
//! sentence-transformers fixture of `crates/embed/tests/parity.rs`.

mod common;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn post(addr: &str, path: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let status: u16 = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn b64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let mut out = Vec::new();
    for q in s.as_bytes().chunks(4) {
        let n = q.iter().filter(|&&c| c != b'=').count();
        let v = q.iter().take(n).fold(0u32, |a, &c| a << 6 | val(c) as u32) << (6 * (4 - n));
        out.extend(&v.to_be_bytes()[1..n]);
    }
    out
}

#[test]
fn embeddings_endpoint_matches_sentence_transformers() {
    let Some(chat) = common::model("smollm2-135m-instruct") else {
        return;
    };
    let models = chat.parent().expect("models dir").to_path_buf();
    if !models.join("all-minilm-l6-v2/model.safetensors").is_file() {
        assert!(
            std::env::var("LLMOS_REQUIRE_MODELS").as_deref() != Ok("1"),
            "all-minilm-l6-v2 missing"
        );
        eprintln!("skipping: all-minilm-l6-v2 not pulled");
        return;
    }
    let home = models.parent().expect("home").to_path_buf();
    let mut child = common::llmos()
        .args(["--home"])
        .arg(&home)
        .args([
            "serve",
            "-m",
            "smollm2-135m-instruct",
            "--embedding-model",
            "all-minilm-l6-v2",
            "--port",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[serve] {line}");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("serve did not start");
    let srv = Server { child, addr };

    let fx_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/embed");
    let meta: Value =
        serde_json::from_slice(&std::fs::read(fx_dir.join("minilm.json")).expect("json"))
            .expect("parse");
    let bin = std::fs::read(fx_dir.join("minilm.bin")).expect("bin");
    let reference = |i: usize| -> Vec<f32> {
        bin[i * 384 * 4..(i + 1) * 384 * 4]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let (t0, t2) = (
        meta["texts"][0].as_str().expect("t"),
        meta["texts"][2].as_str().expect("t"),
    );

    // A list, floats.
    let (st, r) = post(
        &srv.addr,
        "/v1/embeddings",
        &json!({"model": "all-minilm-l6-v2", "input": [t0, t2]}),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["object"], "list");
    let data = r["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    for (k, i) in [(0usize, 0usize), (1, 2)] {
        assert_eq!(data[k]["index"], k);
        let v: Vec<f32> = data[k]["embedding"]
            .as_array()
            .expect("floats")
            .iter()
            .map(|x| x.as_f64().expect("f") as f32)
            .collect();
        assert!(cos(&v, &reference(i)) > 0.999, "text {i}");
    }
    let want_tokens =
        meta["n_tokens"][0].as_u64().expect("n") + meta["n_tokens"][2].as_u64().expect("n");
    assert_eq!(r["usage"]["prompt_tokens"].as_u64(), Some(want_tokens));

    // A string, base64 (f32 little-endian).
    let (st, r) = post(
        &srv.addr,
        "/v1/embeddings",
        &json!({"model": "all-minilm-l6-v2", "input": t0, "encoding_format": "base64"}),
    );
    assert_eq!(st, 200, "{r}");
    let bytes = b64_decode(r["data"][0]["embedding"].as_str().expect("base64 string"));
    assert_eq!(bytes.len(), 384 * 4);
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert!(cos(&v, &reference(0)) > 0.999);

    // Errors: bad format, bad input, a chat model.
    let (st, r) = post(
        &srv.addr,
        "/v1/embeddings",
        &json!({"model": "all-minilm-l6-v2", "input": "x", "encoding_format": "int8"}),
    );
    assert_eq!(
        (st, r["error"]["param"].as_str()),
        (400, Some("encoding_format")),
        "{r}"
    );
    let (st, r) = post(
        &srv.addr,
        "/v1/embeddings",
        &json!({"model": "all-minilm-l6-v2", "input": [1, 2]}),
    );
    assert_eq!(
        (st, r["error"]["param"].as_str()),
        (400, Some("input")),
        "{r}"
    );
    let (st, _) = post(
        &srv.addr,
        "/v1/embeddings",
        &json!({"model": "smollm2-135m-instruct", "input": "x"}),
    );
    assert_eq!(st, 400);
}
