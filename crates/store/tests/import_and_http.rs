//! `pull PATH` and `pull URL` (against a loopback HTTP server the test starts).
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: failing loudly is the point

mod common;

use std::fs;

use common::{gguf_bytes, serve, sha256_hex, Fixture, Reply};
use llmos_store::{Progress, StoreError};

#[test]
fn importing_a_local_gguf_copies_it_under_its_file_stem() {
    let fx = Fixture::new();
    let bytes = gguf_bytes(123_457, 11);
    let src = fx.dir.join("My Model.Q8_0.GGUF");
    fs::write(&src, &bytes).unwrap();
    let store = fx.store();

    let path = store.pull(src.to_str().unwrap(), Progress::Quiet).unwrap();
    assert_eq!(path, fx.root.join("models/My-Model.Q8_0.gguf"));
    assert!(fs::read(&path).unwrap() == bytes);
    assert!(src.exists(), "import copies, it does not move");
    assert_eq!(fx.tmp_entries(), Vec::<String>::new());

    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].bytes),
        ("My-Model.Q8_0", 123_457)
    );
    assert!(listed[0].entry.is_none() && !listed[0].verified);
    assert_eq!(
        store
            .resolve("My-Model.Q8_0", false, Progress::Quiet)
            .unwrap(),
        path
    );

    store.remove("My-Model.Q8_0").unwrap();
    assert_eq!(fx.model_entries(), Vec::<String>::new());
}

#[test]
fn a_file_without_the_gguf_magic_is_rejected() {
    let fx = Fixture::new();
    let src = fx.dir.join("weights.gguf");
    fs::write(&src, b"PK\x03\x04 this is a zip").unwrap();
    let err = fx
        .store()
        .pull(src.to_str().unwrap(), Progress::Quiet)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::NotGguf { .. }), "{msg}");
    assert!(
        msg.contains("504b0304") && msg.contains("weights.gguf"),
        "{msg}"
    );
    fx.assert_no_leftovers();

    let empty = fx.dir.join("empty.gguf");
    fs::write(&empty, b"").unwrap();
    let err = fx
        .store()
        .pull(empty.to_str().unwrap(), Progress::Quiet)
        .unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    fx.assert_no_leftovers();
}

#[test]
fn an_import_cannot_shadow_a_catalog_name() {
    let fx = Fixture::new();
    let src = fx.dir.join("gemma3.gguf");
    fs::write(&src, gguf_bytes(100, 1)).unwrap();
    let err = fx
        .store()
        .pull(src.to_str().unwrap(), Progress::Quiet)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::ReservedName { .. }), "{msg}");
    assert!(msg.contains("gemma3-270m"), "{msg}");
    fx.assert_no_leftovers();
}

#[test]
fn pulling_a_directory_path_is_refused() {
    let fx = Fixture::new();
    let dir = fx.dir.join("a-folder");
    fs::create_dir(&dir).unwrap();
    let err = fx
        .store()
        .pull(dir.to_str().unwrap(), Progress::Quiet)
        .unwrap_err();
    assert!(matches!(err, StoreError::NotAFile { .. }), "{err}");
}

#[test]
fn url_download_is_cached_under_its_file_name() {
    let fx = Fixture::new();
    let body = gguf_bytes(2_500_000, 12);
    let base = serve(vec![("/files/tiny.gguf", Reply::Ok(body.clone()))]);
    let url = format!("{base}/files/tiny.gguf");
    let store = fx.store();

    let err = store.resolve(&url, false, Progress::Quiet).unwrap_err();
    assert!(matches!(err, StoreError::NotPulled { .. }), "{err}");

    let path = store.pull(&url, Progress::Quiet).unwrap();
    assert_eq!(path, fx.root.join("models/tiny.gguf"));
    let got = fs::read(&path).unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&body));
    assert_eq!(fx.tmp_entries(), Vec::<String>::new());

    // Cached now: resolving the URL needs no server.
    assert_eq!(store.resolve(&url, false, Progress::Quiet).unwrap(), path);
}

#[test]
fn resolve_with_auto_pull_downloads_a_url() {
    let fx = Fixture::new();
    let body = gguf_bytes(10_000, 13);
    let base = serve(vec![("/m/auto.gguf?x=1", Reply::Ok(body.clone()))]);
    let path = fx
        .store()
        .resolve(&format!("{base}/m/auto.gguf?x=1"), true, Progress::Quiet)
        .unwrap();
    assert_eq!(path, fx.root.join("models/auto.gguf"));
    assert!(fs::read(path).unwrap() == body);
}

#[test]
fn http_404_is_a_clean_error() {
    let fx = Fixture::new();
    let base = serve(vec![]);
    let url = format!("{base}/missing.gguf");
    let err = fx.store().pull(&url, Progress::Quiet).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, StoreError::HttpStatus { status: 404, .. }),
        "{msg}"
    );
    assert!(msg.contains(&url), "{msg}");
    fx.assert_no_leftovers();
}

#[test]
fn a_url_that_serves_something_else_is_rejected() {
    let fx = Fixture::new();
    let base = serve(vec![(
        "/page.gguf",
        Reply::Ok(b"<html>login</html>".to_vec()),
    )]);
    let err = fx
        .store()
        .pull(&format!("{base}/page.gguf"), Progress::Quiet)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::NotGguf { .. }), "{msg}");
    assert!(msg.contains("<htm"), "{msg}");
    fx.assert_no_leftovers();
}

#[test]
fn a_connection_cut_mid_download_leaves_nothing() {
    let fx = Fixture::new();
    let body = gguf_bytes(100_000, 14);
    let base = serve(vec![(
        "/cut.gguf",
        Reply::Truncated {
            body,
            len: 1_000_000,
        },
    )]);
    let err = fx
        .store()
        .pull(&format!("{base}/cut.gguf"), Progress::Quiet)
        .unwrap_err();
    assert!(matches!(err, StoreError::Http { .. }), "{err}");
    fx.assert_no_leftovers();
}

#[test]
fn unreachable_server_is_a_clean_error() {
    let fx = Fixture::new();
    // Bind then drop, so the port is (almost certainly) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = fx
        .store()
        .pull(&format!("http://127.0.0.1:{port}/x.gguf"), Progress::Quiet)
        .unwrap_err();
    assert!(matches!(err, StoreError::Http { .. }), "{err}");
    fx.assert_no_leftovers();
}
