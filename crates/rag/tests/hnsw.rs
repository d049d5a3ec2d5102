//! The embedded HNSW store: recall against exact search, reconciliation with
//! the SQLite chunks, and a sidecar that is corrupt, stale or half-written.

use llmos_rag::hnsw::sidecar_path;
use llmos_rag::{
    open_store_as, Chunk, FlatIndex, HnswParams, HnswStore, Index, Mode, Retriever, VectorIndex,
    VectorStore,
};
use std::path::{Path, PathBuf};

struct Rng(u64);
impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
    fn unit(&mut self, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| self.next_f32()).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    }
}

const DIM: usize = 384;

fn chunk(text: &str) -> Chunk {
    Chunk {
        text: text.into(),
        heading: String::new(),
        line_start: 1,
        line_end: 1,
    }
}

/// Puts document `name` with `n` random vectors; returns them.
fn put(ix: &mut Index, name: &str, n: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    let chunks: Vec<Chunk> = (0..n).map(|i| chunk(&format!("{name} {i}"))).collect();
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| rng.unit(DIM)).collect();
    ix.put_document(name, name, "text", 0, &chunks, &vectors)
        .expect("put");
    vectors
}

fn new_index(dir: &Path) -> Index {
    let ix = Index::open(&dir.join("t.sqlite")).expect("open");
    ix.bind_model("test-model", DIM).expect("bind");
    ix
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

fn meta_path(graph: &Path) -> PathBuf {
    PathBuf::from(format!("{}.meta", graph.display()))
}

/// Random unit vectors with the neighbourhoods embeddings have: 200 random
/// directions ("topics"), 20 noisy copies of each (cosine ≈ 0.93 to their
/// centre, like near-duplicate chunks). Uniform random 384-d vectors have no
/// neighbours to speak of (every cosine ≈ 0 ± 0.05), HNSW's worst case, which
/// BENCHMARKS.md measures separately.
fn clustered(rng: &mut Rng, centres: &[Vec<f32>]) -> Vec<f32> {
    let c = &centres[(rng.0 % centres.len() as u64) as usize];
    let mut v: Vec<f32> = c.iter().map(|x| x + 0.05 * rng.next_f32()).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

#[test]
fn hnsw_recall_at_10_is_at_least_095_against_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ix = new_index(dir.path());
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let centres: Vec<Vec<f32>> = (0..200).map(|_| rng.unit(DIM)).collect();
    for d in 0..4 {
        let chunks: Vec<Chunk> = (0..1000).map(|i| chunk(&format!("{d} {i}"))).collect();
        let vectors: Vec<Vec<f32>> = (0..1000).map(|_| clustered(&mut rng, &centres)).collect();
        let name = format!("doc{d}");
        ix.put_document(&name, &name, "text", 0, &chunks, &vectors)
            .expect("put");
    }
    let hnsw = HnswStore::open(&ix, DIM, HnswParams::default()).expect("hnsw");
    let exact: FlatIndex = ix.load_vectors(DIM).expect("exact");
    assert_eq!(hnsw.len().expect("len"), 4000);
    let (mut found, mut total) = (0usize, 0usize);
    for _ in 0..200 {
        let q = clustered(&mut rng, &centres);
        let want: Vec<i64> = exact
            .search(&q, 10)
            .expect("exact")
            .iter()
            .map(|h| h.0)
            .collect();
        let got = hnsw.search(&q, 10).expect("hnsw");
        assert_eq!(got.len(), 10);
        // Scores are cosines (f16 storage: within 1e-2 of the exact ones).
        for (id, s) in &got {
            let v = exact.get(*id).expect("a stored id");
            assert!(
                (llmos_rag::vector::dot(&q, v) - s).abs() < 1e-2,
                "{id}: {s}"
            );
        }
        found += got.iter().filter(|h| want.contains(&h.0)).count();
        total += 10;
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.95, "recall@10 {recall:.3}");
}

#[test]
fn reopening_reconciles_deleted_and_added_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ix = new_index(dir.path());
    let mut rng = Rng(7);
    put(&mut ix, "a", 300, &mut rng);
    put(&mut ix, "b", 300, &mut rng);
    let s = HnswStore::open(&ix, DIM, HnswParams::default()).expect("build");
    assert_eq!(
        sorted(s.ids().expect("ids")),
        sorted(ix.chunk_ids().expect("ids"))
    );
    drop(s);
    // Unchanged: the sidecar is current and mapped, not rebuilt or loaded.
    let s = HnswStore::open(&ix, DIM, HnswParams::default()).expect("reopen");
    assert!(s.is_viewed());
    drop(s);

    let gone = sorted(ix.chunk_ids().expect("ids"))[..300].to_vec();
    assert!(ix.remove_document("a").expect("rm"));
    let added = put(&mut ix, "c", 200, &mut rng);
    // "b" again with new content: its old ids go, new ones come.
    put(&mut ix, "b", 100, &mut rng);
    let s = HnswStore::open(&ix, DIM, HnswParams::default()).expect("reconcile");
    let want = sorted(ix.chunk_ids().expect("ids"));
    assert_eq!(want.len(), 300);
    assert_eq!(sorted(s.ids().expect("ids")), want);
    assert_eq!(s.len().expect("len"), 300);
    // The new vectors are found, the deleted ones never.
    for v in added.iter().take(20) {
        let hits = s.search(v, 10).expect("search");
        assert!(hits[0].1 > 0.99, "{hits:?}");
        assert!(want.contains(&hits[0].0));
        assert!(hits.iter().all(|h| !gone.contains(&h.0)));
    }
    drop(s);
    // What was saved is what SQLite holds.
    let s = HnswStore::open(&ix, DIM, HnswParams::default()).expect("reopen");
    assert!(s.is_viewed());
    assert_eq!(sorted(s.ids().expect("ids")), want);
}

#[test]
fn a_truncated_or_corrupt_sidecar_is_rebuilt_not_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ix = new_index(dir.path());
    let mut rng = Rng(99);
    let vs = put(&mut ix, "a", 500, &mut rng);
    let graph = sidecar_path(ix.path());
    drop(HnswStore::open(&ix, DIM, HnswParams::default()).expect("build"));
    let check = |ix: &Index| {
        let s = HnswStore::open(ix, DIM, HnswParams::default()).expect("rebuilt");
        assert_eq!(
            sorted(s.ids().expect("ids")),
            sorted(ix.chunk_ids().expect("ids"))
        );
        assert!(s.search(&vs[7], 1).expect("search")[0].1 > 0.99);
    };

    // The graph file cut in half.
    let len = std::fs::metadata(&graph).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&graph)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    check(&ix);
    // The graph file replaced by garbage of the same length.
    std::fs::write(&graph, vec![0xA5u8; len as usize]).expect("garbage");
    check(&ix);
    // The meta file truncated, then flipped in one byte.
    let mp = meta_path(&graph);
    let meta = std::fs::read(&mp).expect("meta");
    std::fs::write(&mp, &meta[..meta.len() - 9]).expect("truncate meta");
    check(&ix);
    let mut meta = std::fs::read(&mp).expect("meta");
    meta[20] ^= 1;
    std::fs::write(&mp, &meta).expect("flip");
    check(&ix);
    // Either file missing.
    std::fs::remove_file(&mp).expect("rm meta");
    check(&ix);
    std::fs::remove_file(&graph).expect("rm graph");
    check(&ix);
    // Built for another embedding model: rebuilt, not mixed.
    drop(HnswStore::open(&ix, DIM, HnswParams::default()).expect("build"));
    ix.set_meta("embedding_model", "other-model:384")
        .expect("meta");
    check(&ix);
}

#[test]
fn an_interrupted_write_leaves_the_old_sidecar_or_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ix = new_index(dir.path());
    let mut rng = Rng(5);
    put(&mut ix, "a", 400, &mut rng);
    let graph = sidecar_path(ix.path());
    drop(HnswStore::open(&ix, DIM, HnswParams::default()).expect("build"));
    let before = std::fs::read(&graph).expect("graph");

    // A writer killed mid-write (a process that no longer exists) left half
    // a temp file of each: ignored, the old sidecar is used as it is, and
    // the leftovers are removed.
    let name = graph
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let dead = dir.path().join(format!(".{name}.999999999.1.tmp"));
    let dead_meta = dir.path().join(format!(".{name}.meta.999999999.1.tmp"));
    std::fs::write(&dead, &before[..before.len() / 3]).expect("temp");
    std::fs::write(&dead_meta, b"LLMHNSW").expect("temp");
    // One of a live process (ours) is someone's write in progress: kept.
    let live = dir
        .path()
        .join(format!(".{name}.{}.2.tmp", std::process::id()));
    std::fs::write(&live, b"in progress").expect("temp");
    let s = HnswStore::open(&ix, DIM, HnswParams::default()).expect("open");
    assert!(
        s.is_viewed(),
        "the old sidecar was current and used as it is"
    );
    assert_eq!(std::fs::read(&graph).expect("graph"), before);
    assert!(!dead.exists() && !dead_meta.exists());
    assert!(live.exists());
    drop(s);

    // Killed between the two renames: a new graph file (here: another
    // index's, of the same width) is in place but the meta is the old one.
    // Its identity no longer matches the meta, so it is rebuilt.
    let other = tempfile::tempdir().expect("tempdir");
    let mut ox = new_index(other.path());
    put(&mut ox, "x", 400, &mut rng);
    drop(HnswStore::open(&ox, DIM, HnswParams::default()).expect("build other"));
    std::fs::copy(sidecar_path(ox.path()), dir.path().join("new.tmp")).expect("copy");
    std::fs::rename(dir.path().join("new.tmp"), &graph).expect("rename");
    let s = HnswStore::open(&ix, DIM, HnswParams::default()).expect("rebuilt");
    assert_eq!(
        sorted(s.ids().expect("ids")),
        sorted(ix.chunk_ids().expect("ids"))
    );
    // The other index has ids 1..=400 too, so only the file identity tells
    // the two apart: each of our vectors must find itself.
    assert_eq!(
        sorted(ox.chunk_ids().expect("ids")),
        sorted(ix.chunk_ids().expect("ids"))
    );
    for (id, v) in ix
        .vectors(&ix.chunk_ids().expect("ids")[..20], DIM)
        .expect("vs")
    {
        assert_eq!(s.search(&v, 1).expect("search")[0].0, id);
    }
}

/// A bag-of-words hashing embedder: similar texts, similar vectors.
struct Words;
impl llmos_embed::Embed for Words {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, llmos_embed::EmbedError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; DIM];
                for w in t.split_whitespace() {
                    let h = w.bytes().fold(1469598103934665603u64, |h, b| {
                        (h ^ b as u64).wrapping_mul(1099511628211)
                    });
                    v[(h % DIM as u64) as usize] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter_mut().for_each(|x| *x /= n);
                v
            })
            .collect())
    }
    fn dim(&self) -> usize {
        DIM
    }
    fn model_id(&self) -> &str {
        "test-model"
    }
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
    fn max_tokens(&self) -> usize {
        512
    }
}

#[test]
fn hybrid_search_over_the_hnsw_store_matches_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ix = new_index(dir.path());
    let topics = [
        "rotate the log files every night with logrotate",
        "parse json from the shell with jq filters",
        "postgres vacuum reclaims dead tuples",
        "rust borrow checker lifetimes explained",
        "ssh keys and the authorized_keys file",
    ];
    let emb = Words;
    for (d, t) in topics.iter().enumerate() {
        let texts: Vec<String> = (0..40)
            .map(|i| format!("{t} part {i} note{d}x{i}"))
            .collect();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let vecs = llmos_embed::Embed::embed(&emb, &refs).expect("embed");
        let chunks: Vec<Chunk> = texts.iter().map(|t| chunk(t)).collect();
        ix.put_document(
            &format!("d{d}"),
            &format!("h{d}"),
            "text",
            0,
            &chunks,
            &vecs,
        )
        .expect("put");
    }
    let exact = Retriever::with_store(
        &ix,
        &emb,
        open_store_as(&ix, DIM, None, VectorIndex::Exact).expect("exact"),
    )
    .expect("retriever");
    let approx = Retriever::with_store(
        &ix,
        &emb,
        open_store_as(&ix, DIM, None, VectorIndex::Hnsw).expect("hnsw"),
    )
    .expect("retriever");
    assert!(approx
        .store()
        .describe()
        .starts_with("embedded HNSW (usearch"));
    assert!(exact.store().describe().starts_with("embedded exact"));
    for q in [
        "how do I parse json with jq",
        "vacuum dead tuples",
        "note3x17",
    ] {
        for mode in [Mode::Hybrid, Mode::Vector] {
            // Many chunks tie (same words): compare what was found, not ids.
            let a = exact.search(q, 5, mode).expect("exact");
            let b = approx.search(q, 5, mode).expect("hnsw");
            assert_eq!(a.len(), b.len(), "{q} {mode:?}");
            assert_eq!(a[0].chunk.path, b[0].chunk.path, "{q} {mode:?}");
            // Cosines come from the SQLite vectors, whatever the store; the
            // best vector hit is as close as exact search's (RRF may break
            // ties among equals differently).
            let qv = llmos_embed::Embed::embed(&emb, &[q])
                .expect("embed")
                .remove(0);
            for h in &b {
                let v = ix.vectors(&[h.chunk.id], DIM).expect("vector").remove(0).1;
                let c = llmos_rag::vector::dot(&qv, &v);
                assert!((h.cosine - c).abs() < 1e-6, "{q} {mode:?}");
            }
            if mode == Mode::Vector {
                assert!((a[0].cosine - b[0].cosine).abs() < 1e-6, "{q}");
            }
        }
    }
}

#[test]
fn auto_picks_exact_below_the_crossover_and_env_values_parse() {
    use llmos_rag::HNSW_MIN_VECTORS;
    assert!(!VectorIndex::Auto.uses_hnsw(HNSW_MIN_VECTORS - 1));
    assert!(VectorIndex::Auto.uses_hnsw(HNSW_MIN_VECTORS));
    assert!(VectorIndex::Hnsw.uses_hnsw(0));
    assert!(!VectorIndex::Exact.uses_hnsw(usize::MAX));
    assert_eq!("hnsw".parse::<VectorIndex>(), Ok(VectorIndex::Hnsw));
    assert!("fast".parse::<VectorIndex>().is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ix = new_index(dir.path());
    put(&mut ix, "a", 10, &mut Rng(3));
    let s = open_store_as(&ix, DIM, None, VectorIndex::Auto).expect("auto");
    assert!(
        s.describe().starts_with("embedded exact"),
        "{}",
        s.describe()
    );
    assert!(!sidecar_path(ix.path()).exists());
}
