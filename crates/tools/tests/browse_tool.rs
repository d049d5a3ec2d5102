//! `browse` against a local HTTP server the test starts: allowlist, redirects, limits, HTML to text.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmos_tools::browse::Browse;
use llmos_tools::{SideEffect, Tool};
use serde_json::json;

/// A tiny HTTP/1.1 server: one response per connection, chosen by path. Returns (port, request count).
fn server() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in l.incoming().flatten() {
            h.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut r = BufReader::new(&stream);
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                        break;
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, ctype, extra, body): (&str, &str, String, Vec<u8>) = match path.as_str() {
                    "/page" => ("200 OK", "text/html; charset=utf-8", String::new(),
                        b"<html><head><title>T</title><style>body{color:red}</style><script>var secret='SCRIPT-CODE';</script></head>\
                          <body><h1>Prime numbers</h1><p>The first primes are <b>2, 3, 5</b> and 7.</p></body></html>".to_vec()),
                    "/plain" => ("200 OK", "text/plain", String::new(), b"just text".to_vec()),
                    "/in" => ("302 Found", "text/plain", "Location: /page\r\n".into(), Vec::new()),
                    "/out" => ("302 Found", "text/plain", "Location: http://evil.test/steal\r\n".into(), Vec::new()),
                    "/big" => ("200 OK", "text/plain", String::new(), vec![b'a'; 3 << 20]),
                    "/bin" => ("200 OK", "application/octet-stream", String::new(), vec![0, 1, 2]),
                    "/404" => ("404 Not Found", "text/plain", String::new(), b"nothing here".to_vec()),
                    "/slow" => {
                        std::thread::sleep(Duration::from_secs(5));
                        ("200 OK", "text/plain", String::new(), b"late".to_vec())
                    }
                    _ => ("404 Not Found", "text/plain", String::new(), Vec::new()),
                };
                let mut s = &stream;
                let head = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n", body.len());
                let _ = s
                    .write_all(head.as_bytes())
                    .and_then(|()| s.write_all(&body));
            });
        }
    });
    (port, hits)
}

fn browse(port: u16) -> Browse {
    let mut b = Browse::new(&[format!("127.0.0.1:{port}")]);
    b.limits.timeout = Duration::from_secs(2);
    b.limits.max_bytes = 1 << 20;
    b
}

#[test]
fn html_becomes_readable_text_and_is_untrusted() {
    let (port, _) = server();
    let out = browse(port).call(json!({"url": format!("http://127.0.0.1:{port}/page")}));
    assert!(!out.is_error && out.untrusted, "{out:?}");
    assert!(
        out.content.contains("Prime numbers") && out.content.contains("2, 3, 5"),
        "{}",
        out.content
    );
    assert!(
        !out.content.contains("SCRIPT-CODE") && !out.content.contains("color:red"),
        "{}",
        out.content
    );
    assert!(
        matches!(out.side_effects.first(), Some(SideEffect::Fetched { host, .. }) if host == "127.0.0.1")
    );
    let out = browse(port).call(json!({"url": format!("http://127.0.0.1:{port}/plain")}));
    assert!(out.content.ends_with("just text"), "{}", out.content);
}

#[test]
fn hosts_off_the_allowlist_are_never_contacted() {
    let (port, hits) = server();
    for url in [
        format!("http://localhost:{port}/page"),
        format!("http://127.0.0.1:{}/page", port.wrapping_add(1)),
        "http://evil.test/".into(),
    ] {
        let out = browse(port).call(json!({"url": url}));
        assert!(
            out.is_error && out.content.contains("not on the allowlist"),
            "{url}: {}",
            out.content
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused URL reached the server"
    );
    let out = browse(port).call(json!({"url": "file:///etc/passwd"}));
    assert!(
        out.is_error && out.content.contains("only http"),
        "{}",
        out.content
    );
}

#[test]
fn redirects_are_checked_hop_by_hop() {
    let (port, _) = server();
    let out = browse(port).call(json!({"url": format!("http://127.0.0.1:{port}/in")}));
    assert!(
        !out.is_error && out.content.contains("Prime numbers"),
        "{}",
        out.content
    );
    assert_eq!(out.side_effects.len(), 2);
    let out = browse(port).call(json!({"url": format!("http://127.0.0.1:{port}/out")}));
    assert!(
        out.is_error && out.content.contains("'evil.test'") && out.content.contains("redirect"),
        "{}",
        out.content
    );
}

#[test]
fn size_time_status_and_type_limits() {
    let (port, _) = server();
    let b = browse(port);
    let out = b.call(json!({"url": format!("http://127.0.0.1:{port}/big")}));
    assert!(
        !out.is_error && out.content.contains("[output truncated at"),
        "{}",
        &out.content[out.content.len().saturating_sub(200)..]
    );
    assert!(out.content.len() < 25_000);
    let t = Instant::now();
    let out = b.call(json!({"url": format!("http://127.0.0.1:{port}/slow")}));
    assert!(
        out.is_error && out.content.contains("did not answer within 2 s"),
        "{}",
        out.content
    );
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let out = b.call(json!({"url": format!("http://127.0.0.1:{port}/404")}));
    assert!(
        out.is_error && out.content.contains("HTTP 404"),
        "{}",
        out.content
    );
    let out = b.call(json!({"url": format!("http://127.0.0.1:{port}/bin")}));
    assert!(
        out.is_error && out.content.contains("application/octet-stream"),
        "{}",
        out.content
    );
}

#[test]
fn allowlist_patterns() {
    let b = Browse::new(&["example.org", "*.docs.rs", "127.0.0.1:8080"]);
    let ok = |u: &str| u.parse().map(|u| b.allowed(&u)).unwrap_or(false);
    assert!(ok("https://example.org/x") && ok("http://example.org:81/"));
    assert!(!ok("https://sub.example.org/") && !ok("https://example.org.evil.test/"));
    assert!(ok("https://docs.rs/") && ok("https://serde.docs.rs/") && !ok("https://evildocs.rs/"));
    assert!(ok("http://127.0.0.1:8080/") && !ok("http://127.0.0.1/"));
}
