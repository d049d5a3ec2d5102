//! `llmos ingest` / `search` / `ask` end to end on small corpora the tests
//! write, with the real all-MiniLM-L6-v2 and smollm2-135m-instruct from
//! `$LLMOS_TEST_MODELS` (= `$LLMOS_HOME/models`, what `.ci/run` pulls).
//! Each test uses its own index file (`--index PATH`) in a tempdir.

mod common;

use common::{llmos, stderr, stdout};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The store root holding the models, or None (skip) when they are absent.
fn home() -> Option<PathBuf> {
    let models = std::env::var_os("LLMOS_TEST_MODELS").map(PathBuf::from);
    match models {
        Some(m)
            if m.join("all-minilm-l6-v2/model.safetensors").is_file()
                && m.join("smollm2-135m-instruct.gguf").is_file() =>
        {
            m.parent().map(Path::to_path_buf)
        }
        _ => {
            assert!(
                std::env::var("LLMOS_REQUIRE_MODELS").as_deref() != Ok("1"),
                "all-minilm-l6-v2 / smollm2-135m-instruct not under $LLMOS_TEST_MODELS and LLMOS_REQUIRE_MODELS=1"
            );
            eprintln!("note: models not under $LLMOS_TEST_MODELS; skipping");
            None
        }
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn corpus(dir: &Path) {
    write(
        dir,
        "garden.md",
        "# Garden\n\nNotes about the allotment.\n\n## Tomatoes\n\nPlant the tomatoes in late May, after the last frost.\nWater them every morning and pinch out the side shoots.\n\n## Compost\n\nTurn the compost heap once a month.\n",
    );
    write(
        dir,
        "ops/backup.txt",
        "Infrastructure notes.\n\nThe backup server is called zephyr.\nNightly backups start at 02:30 and finish before 04:00.\nThey are kept for 30 days.\n",
    );
    write(
        dir,
        "code/fib.py",
        "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    );
    write(
        dir,
        "page.html",
        "<html><head><script>var tracking = 1;</script></head><body><h1>Team lunch</h1>\
         <p>The team lunch is every Friday at the Blue Fig restaurant.</p></body></html>",
    );
    write(dir, "blob.bin", "\u{0}\u{1}binary");
}

fn run(home: &Path, args: &[&str]) -> std::process::Output {
    let o = llmos()
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("run llmos");
    assert!(
        o.status.success(),
        "llmos {args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

#[test]
fn ingest_search_ask_end_to_end() {
    let Some(home) = home() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let docs = tmp.path().join("notes");
    corpus(&docs);
    let index = tmp.path().join("ix.sqlite");
    let ix = index.to_str().expect("utf8");
    let d = docs.to_str().expect("utf8");

    let o = run(&home, &["ingest", d, "--index", ix]);
    let out = stdout(&o);
    assert!(
        out.contains("4 added") && out.contains("holds 4 documents"),
        "{out}"
    );
    assert!(stderr(&o).contains("blob.bin: not text"), "{}", stderr(&o));

    // Every mode finds the backup note for a paraphrased question, with lines.
    for mode in ["hybrid", "bm25", "vector"] {
        let o = run(
            &home,
            &[
                "search",
                "when do the nightly backups start",
                "--index",
                ix,
                "-k",
                "2",
                "--mode",
                mode,
            ],
        );
        let first = stdout(&o).lines().next().unwrap_or_default().to_string();
        assert!(first.contains("backup.txt:1-5"), "{mode}: {}", stdout(&o));
    }
    // Markdown heading paths and HTML main text.
    let o = run(
        &home,
        &[
            "search",
            "when should I plant tomatoes",
            "--index",
            ix,
            "-k",
            "1",
            "--json",
        ],
    );
    let hit: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("json");
    assert_eq!(hit["heading"], "Garden > Tomatoes");
    assert!(hit["path"]
        .as_str()
        .is_some_and(|p| p.ends_with("garden.md")));
    assert_eq!(
        (hit["line_start"].as_u64(), hit["line_end"].as_u64()),
        (Some(5), Some(8))
    );
    let o = run(
        &home,
        &[
            "search",
            "where is the team lunch",
            "--index",
            ix,
            "-k",
            "1",
            "--json",
        ],
    );
    let hit: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("json");
    assert!(
        hit["text"]
            .as_str()
            .is_some_and(|t| t.contains("Blue Fig") && !t.contains("tracking")),
        "{hit}"
    );

    // ask: a cited answer whose sources map to file:lines.
    let o = run(
        &home,
        &[
            "ask",
            "What time do the nightly backups start?",
            "--index",
            ix,
            "-k",
            "2",
        ],
    );
    let out = stdout(&o);
    assert!(out.contains("Sources"), "{out}");
    assert!(out.contains("backup.txt:1-5"), "{out}");
    assert!(
        out.contains("02:30") || out.contains("2:30"),
        "the answer has the time: {out}"
    );

    // ask with nothing relevant: says so, never calls the model.
    let o = run(
        &home,
        &[
            "ask",
            "Who won the football world cup in 1998?",
            "--index",
            ix,
        ],
    );
    assert!(stdout(&o).contains("found nothing"), "{}", stdout(&o));
}

#[test]
fn reingest_is_incremental_and_removes_deleted_files() {
    let Some(home) = home() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let docs = tmp.path().join("notes");
    corpus(&docs);
    let ix = tmp.path().join("ix.sqlite");
    let (ix, d) = (ix.to_str().expect("utf8"), docs.to_str().expect("utf8"));
    run(&home, &["ingest", d, "--index", ix]);

    let out = stdout(&run(&home, &["ingest", d, "--index", ix]));
    assert!(
        out.contains("0 added") && out.contains("4 unchanged") && out.contains("0 removed"),
        "{out}"
    );

    write(
        &docs,
        "ops/backup.txt",
        "The backup server moved to a host called boreas.\n",
    );
    std::fs::remove_file(docs.join("code/fib.py")).expect("rm");
    let out = stdout(&run(&home, &["ingest", d, "--index", ix]));
    assert!(
        out.contains("1 added") && out.contains("2 unchanged") && out.contains("1 removed"),
        "{out}"
    );
    assert!(out.contains("holds 3 documents"), "{out}");

    let o = run(
        &home,
        &["search", "fibonacci", "--index", ix, "--mode", "bm25"],
    );
    assert!(!stdout(&o).contains("fib.py"), "{}", stdout(&o));
    let o = run(
        &home,
        &["search", "zephyr", "--index", ix, "--mode", "bm25"],
    );
    assert!(
        !stdout(&o).contains("backup.txt"),
        "old content is gone: {}",
        stdout(&o)
    );
    let o = run(
        &home,
        &["search", "boreas", "--index", ix, "--mode", "bm25"],
    );
    assert!(stdout(&o).contains("backup.txt:1-1"), "{}", stdout(&o));
}

/// kill -9 after the first documents are committed, then ingest again: the
/// index is consistent after the kill and complete after the re-ingest.
#[test]
fn kill_mid_ingest_then_reingest_is_consistent_and_complete() {
    let Some(home) = home() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let docs = tmp.path().join("big");
    let n_files = 24;
    for f in 0..n_files {
        let text = format!(
            "File {f}. The quick brown fox number {f} jumps over the lazy dog while the \
             committee reviews budget line {f} and nobody remembers who ordered the pizza.\n"
        );
        write(&docs, &format!("f{f:03}.txt"), &text);
    }
    let ix_path = tmp.path().join("ix.sqlite");
    let (ix, d) = (
        ix_path.to_str().expect("utf8"),
        docs.to_str().expect("utf8"),
    );

    let mut child = llmos()
        .arg("--home")
        .arg(&home)
        .args(["ingest", d, "--index", ix, "--batch", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    let committed = loop {
        let n = llmos_rag::Index::open(&ix_path)
            .ok()
            .and_then(|i| i.check().ok())
            .map_or(0, |s| s.documents);
        if n > 0 {
            break n;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "ingest ended before the kill"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no document committed in 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().expect("kill -9"); // SIGKILL on Unix
    child.wait().expect("reap");

    let stats = llmos_rag::Index::open(&ix_path)
        .expect("open")
        .check()
        .expect("consistent after kill");
    assert!(
        stats.documents >= committed && stats.documents < n_files,
        "{stats:?}"
    );

    let out = stdout(&run(&home, &["ingest", d, "--index", ix]));
    assert!(
        out.contains(&format!("{} unchanged", stats.documents)),
        "{out}"
    );
    let done = llmos_rag::Index::open(&ix_path)
        .expect("open")
        .check()
        .expect("consistent");
    assert_eq!(done.documents, n_files);
    // Same chunks as one uninterrupted ingest.
    let fresh = tmp.path().join("fresh.sqlite");
    run(
        &home,
        &["ingest", d, "--index", fresh.to_str().expect("utf8")],
    );
    let fresh = llmos_rag::Index::open(&fresh)
        .expect("open")
        .check()
        .expect("consistent");
    assert_eq!(done, fresh);
}
