//! The `search` tool over a real index and the real all-MiniLM-L6-v2 from
//! `$LLMOS_TEST_MODELS` (skipped when absent, failed when
//! `LLMOS_REQUIRE_MODELS=1`): passages come back with `path:line`
//! citations relative to the knowledge folder's parent, as untrusted data,
//! and a question the files do not answer gets no passages.

use std::path::PathBuf;
use std::sync::Arc;

use llmos_rag::{ingest, Index, IngestOptions};
use llmos_tools::search::Search;
use llmos_tools::Tool;
use serde_json::json;

fn embedder() -> Option<llmos_embed::Embedder> {
    let dir =
        std::env::var_os("LLMOS_TEST_MODELS").map(|d| PathBuf::from(d).join("all-minilm-l6-v2"));
    match dir {
        Some(d) if d.join("model.safetensors").is_file() => {
            Some(llmos_embed::Embedder::load(&d).unwrap_or_else(|e| panic!("{e}")))
        }
        _ => {
            assert!(
                std::env::var("LLMOS_REQUIRE_MODELS").as_deref() != Ok("1"),
                "all-minilm-l6-v2 not under $LLMOS_TEST_MODELS and LLMOS_REQUIRE_MODELS=1"
            );
            eprintln!("skipping: all-minilm-l6-v2 not under $LLMOS_TEST_MODELS");
            None
        }
    }
}

#[test]
fn search_returns_cited_untrusted_passages() {
    let Some(emb) = embedder() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = dir.path().join("kb");
    std::fs::create_dir_all(kb.join("ops")).expect("mkdir");
    std::fs::write(
        kb.join("ops/backup.md"),
        "# Backups\n\nInfrastructure notes.\n\nThe backup server is called zephyr.\nNightly backups start at 02:30.\n",
    )
    .expect("write");
    std::fs::write(
        kb.join("garden.md"),
        "# Garden\n\nPlant tomatoes in late May.\n",
    )
    .expect("write");
    let mut ix = Index::open(&dir.path().join("kb.sqlite")).expect("index");
    ingest(
        &mut ix,
        &emb,
        std::slice::from_ref(&kb),
        &IngestOptions::default(),
        &mut |_| {},
    )
    .expect("ingest");
    let tool = Search::new(ix, Arc::new(emb), "the notes", &[kb]);

    let p = tool.parameters();
    assert_eq!(p["required"], json!(["query"]));
    assert_eq!(p["additionalProperties"], false);

    let out = tool.call(json!({"query": "what is the backup server called?"}));
    assert!(!out.is_error, "{}", out.content);
    assert!(out.untrusted, "retrieved text is outside data");
    assert!(
        out.content.starts_with("[1] kb/ops/backup.md:"),
        "{}",
        out.content
    );
    assert!(out.content.contains("zephyr"), "{}", out.content);
    // The same passages, structured: each excerpt is in the text, headed
    // and closed by its source.
    assert!(!out.sources.is_empty());
    assert_eq!(out.sources[0].path, "kb/ops/backup.md");
    for s in &out.sources {
        assert!(out.content.contains(&s.excerpt), "{s:?}");
        assert!(
            s.excerpt.ends_with(&format!("(source: {s})")),
            "{}",
            s.excerpt
        );
    }

    let none = tool.call(json!({"query": "quantum chromodynamics lattice gauge theory"}));
    assert!(!none.is_error);
    assert!(none.content.starts_with("No passage"), "{}", none.content);
    assert!(none.sources.is_empty());

    let bad = tool.call(json!({"query": "x", "k": 3}));
    assert!(
        bad.is_error && bad.content.contains("unknown argument 'k'"),
        "{}",
        bad.content
    );
}
