//! Query latency of an index, in process (what `llmos serve` and the agent
//! pay per search; the CLI adds process start and loading the vectors).
//!
//!     cargo run --release -p llmos-rag --example search_latency -- \
//!         INDEX.sqlite MODEL_DIR QUESTIONS.jsonl [SCALE...]
//!
//! For the index as it is, and then for copies grown to each SCALE chunks,
//! it times every question (a JSON Lines file with a "question" field) in
//! each mode: embedding the query, BM25 and/or vector search, and reading the
//! hit chunks back. The grown copies repeat the index's own chunks (real text,
//! so BM25 posting lists grow as they would) with their vectors perturbed and
//! renormalised, as new documents. Then it times the bare exact vector scan
//! at growing sizes, to find where exact search stops being fast.
//!
//! Prints Markdown rows (the BENCHMARKS.md "Retrieval" section quotes them).
//!
//! Exact against HNSW, without a model:
//!
//!     cargo run --release -p llmos-rag --example search_latency -- \
//!         --hnsw [--from INDEX.sqlite] [--ef 32,64,96,128] N...
//!
//! For each N it writes an index of N vectors to a temp directory: random
//! unit vectors, or with `--from` real embeddings: the index's own vectors
//! while N fits in it, else perturbed copies of them as above (queries are
//! perturbed copies too). Then it times: opening the exact
//! store (every vector read from SQLite), the exact top-10 search, building
//! the HNSW sidecar, opening it again (current, so memory-mapped), and its
//! top-10 search with recall@10 against the exact answers at each `ef`.
//! Waits while /tmp/llmos-quiet exists (someone else is benchmarking).

use llmos_rag::{Chunk, Index, Mode, Retriever, VectorStore};
use std::path::Path;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

struct Rng(u64);
impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

/// Grows `index` to at least `target` chunks with perturbed copies of its
/// own chunks, 32 chunks per synthetic document.
fn grow(index: &mut Index, dim: usize, target: usize, rng: &mut Rng) -> Res<()> {
    let base = index.chunk_ids()?;
    let mut have = index.check()?.chunks;
    let mut doc = 0usize;
    while have < target {
        for ids in base.chunks(32) {
            if have >= target {
                break;
            }
            let stored = index.chunks(ids)?;
            let vecs = index.vectors(ids, dim)?;
            let chunks: Vec<Chunk> = stored
                .iter()
                .map(|c| Chunk {
                    text: c.text.clone(),
                    heading: c.heading.clone(),
                    line_start: c.line_start,
                    line_end: c.line_end,
                })
                .collect();
            let vectors: Vec<Vec<f32>> = vecs
                .into_iter()
                .map(|(_, mut v)| {
                    v.iter_mut().for_each(|x| *x += 0.05 * rng.next_f32());
                    normalise(&mut v);
                    v
                })
                .collect();
            let path = format!("/synthetic/{doc}");
            index.put_document(&path, &path, "text", 0, &chunks, &vectors)?;
            have += chunks.len();
            doc += 1;
        }
    }
    Ok(())
}

fn time_queries(r: &Retriever, questions: &[String], label: &str) -> Res<()> {
    for (name, mode) in [
        ("bm25", Mode::Bm25),
        ("vector", Mode::Vector),
        ("hybrid", Mode::Hybrid),
    ] {
        // One warm-up pass so page cache and allocator state are steady.
        for q in questions.iter().take(5) {
            r.search(q, 10, mode)?;
        }
        let mut ms = Vec::with_capacity(questions.len());
        for q in questions {
            let t = Instant::now();
            let hits = r.search(q, 10, mode)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(hits);
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "| {label} | {name} | {} | {:.1} | {:.1} |",
            questions.len(),
            percentile(&ms, 0.5),
            percentile(&ms, 0.99)
        );
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--hnsw") {
        return hnsw_main(&args[1..]);
    }
    if args.len() < 3 {
        return Err(
            "usage: search_latency INDEX.sqlite MODEL_DIR QUESTIONS.jsonl [SCALE...]".into(),
        );
    }
    let emb = llmos_embed::Embedder::load(Path::new(&args[1]))?;
    let dim = llmos_embed::Embed::dim(&emb);
    let questions: Vec<String> = std::fs::read_to_string(&args[2])?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| -> Res<String> {
            let v: serde_json::Value = serde_json::from_str(l)?;
            Ok(v["question"]
                .as_str()
                .ok_or("a line without \"question\"")?
                .to_string())
        })
        .collect::<Res<_>>()?;
    let scales: Vec<usize> = args[3..]
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;

    // Work on a copy: the grown index must not touch the user's.
    let tmp = std::env::temp_dir().join(format!("llmos-latency-{}.sqlite", std::process::id()));
    std::fs::copy(&args[0], &tmp)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    println!("| chunks | mode | queries | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    let mut sizes = vec![0usize];
    sizes.extend(scales);
    for target in sizes {
        let mut index = Index::open(&tmp)?;
        grow(&mut index, dim, target, &mut rng)?;
        let n = index.check()?.chunks;
        let t = Instant::now();
        let r = Retriever::new(&index, &emb)?;
        let load = t.elapsed().as_secs_f64();
        eprintln!(
            "{n} chunks: vectors loaded in {load:.2}s ({})",
            r.store().describe()
        );
        time_queries(&r, &questions, &n.to_string())?;
    }
    // The copy, and the HNSW sidecar `auto` built for it past the crossover.
    for ext in [
        "sqlite",
        "sqlite-wal",
        "sqlite-shm",
        "sqlite.hnsw",
        "sqlite.hnsw.meta",
    ] {
        let _ = std::fs::remove_file(tmp.with_extension(ext));
    }

    // The bare exact scan (one thread), at sizes beyond the index.
    println!();
    println!("| vectors | exact top-10 scan p50 ms | p99 ms |");
    println!("|---|---|---|");
    for n in [10_000usize, 100_000, 300_000, 1_000_000] {
        let mut flat = llmos_rag::FlatIndex::new(dim);
        let mut v = vec![0f32; dim];
        for id in 0..n {
            v.iter_mut().for_each(|x| *x = rng.next_f32());
            normalise(&mut v);
            flat.upsert(&[(id as i64, &v)])?;
        }
        let mut ms = Vec::new();
        for _ in 0..50 {
            v.iter_mut().for_each(|x| *x = rng.next_f32());
            normalise(&mut v);
            let t = Instant::now();
            std::hint::black_box(flat.search(&v, 10)?);
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "| {n} | {:.1} | {:.1} |",
            percentile(&ms, 0.5),
            percentile(&ms, 0.99)
        );
    }
    Ok(())
}

/// Sleeps while another benchmark holds the machine.
fn wait_quiet() {
    while Path::new("/tmp/llmos-quiet").exists() {
        eprintln!("waiting: /tmp/llmos-quiet exists");
        std::thread::sleep(std::time::Duration::from_secs(20));
    }
}

fn hnsw_main(args: &[String]) -> Res<()> {
    let mut from: Option<String> = None;
    let mut efs: Vec<usize> = vec![32, 64, 96, 128, 256];
    let mut sizes: Vec<usize> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--from" => from = Some(it.next().ok_or("--from needs a file")?.clone()),
            "--ef" => {
                efs = it
                    .next()
                    .ok_or("--ef needs a list")?
                    .split(',')
                    .map(|s| s.parse())
                    .collect::<Result<_, _>>()?
            }
            n => sizes.push(n.parse()?),
        }
    }
    if sizes.is_empty() {
        sizes = vec![100_000, 300_000, 1_000_000];
    }
    let dim = 384;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Base vectors: the given index's, or none (random unit vectors).
    let base: Vec<Vec<f32>> = match &from {
        Some(p) => {
            let ix = Index::open(Path::new(p))?;
            let ids = ix.chunk_ids()?;
            ix.vectors(&ids, dim)?.into_iter().map(|(_, v)| v).collect()
        }
        None => Vec::new(),
    };
    let sample = |rng: &mut Rng| -> Vec<f32> {
        let mut v: Vec<f32> = if base.is_empty() {
            (0..dim).map(|_| rng.next_f32()).collect()
        } else {
            let b = &base[(rng.0 % base.len() as u64) as usize];
            b.iter().map(|x| x + 0.05 * rng.next_f32()).collect()
        };
        normalise(&mut v);
        v
    };
    let data = if from.is_some() {
        "perturbed copies of the index's vectors"
    } else {
        "random unit vectors"
    };
    let params = llmos_rag::HnswParams::default();
    println!(
        "{data}, dim {dim}, top 10, HNSW M={} efConstruction={} (f16)",
        params.connectivity, params.ef_add
    );
    println!();
    println!("| vectors | exact open s | exact p50 ms | exact p99 ms | HNSW build s | HNSW open ms | sidecar MB | ef | HNSW p50 ms | HNSW p99 ms | recall@10 |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &sizes {
        wait_quiet();
        let dir = std::env::temp_dir().join(format!("llmos-hnsw-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("bench.sqlite");
        let t = Instant::now();
        {
            let mut ix = Index::open(&path)?;
            ix.bind_model("bench", dim)?;
            let mut done = 0;
            while done < n {
                let m = (n - done).min(1000);
                let chunks: Vec<Chunk> = (0..m)
                    .map(|i| Chunk {
                        text: format!("chunk {}", done + i),
                        heading: String::new(),
                        line_start: 1,
                        line_end: 1,
                    })
                    .collect();
                // Up to its size, the base index's own vectors as they are.
                let vectors: Vec<Vec<f32>> = (done..done + m)
                    .map(|i| match base.get(i) {
                        Some(v) if n <= base.len() => v.clone(),
                        _ => sample(&mut rng),
                    })
                    .collect();
                let p = format!("/bench/{done}");
                ix.put_document(&p, &p, "text", 0, &chunks, &vectors)?;
                done += m;
            }
        }
        eprintln!("{n}: index written in {:.1}s", t.elapsed().as_secs_f64());
        let queries: Vec<Vec<f32>> = (0..200).map(|_| sample(&mut rng)).collect();
        let ix = Index::open(&path)?;
        // What `auto` and a stale sidecar pay on top of the table's times.
        let t = Instant::now();
        let count = ix.chunk_count()?;
        let count_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        std::hint::black_box(ix.chunk_ids()?);
        eprintln!(
            "{n}: count(*) {count_ms:.0} ms, listing {count} chunk ids {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        );

        wait_quiet();
        let t = Instant::now();
        let exact = ix.load_vectors(dim)?;
        let exact_open = t.elapsed().as_secs_f64();
        let mut truth = Vec::new();
        let mut ms = Vec::new();
        for q in &queries {
            let t = Instant::now();
            let hits = exact.search(q, 10)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            truth.push(hits.into_iter().map(|h| h.0).collect::<Vec<i64>>());
        }
        ms.sort_by(f64::total_cmp);
        let (e50, e99) = (percentile(&ms, 0.5), percentile(&ms, 0.99));
        drop(exact);

        wait_quiet();
        let t = Instant::now();
        drop(llmos_rag::HnswStore::open(&ix, dim, params)?);
        let build = t.elapsed().as_secs_f64();
        // Drop the page cache's copy? No: a searched index is warm; the open
        // time below is what a second search process pays.
        let t = Instant::now();
        let mut hnsw = llmos_rag::HnswStore::open(&ix, dim, params)?;
        let open_ms = t.elapsed().as_secs_f64() * 1e3;
        assert!(hnsw.is_viewed(), "a current sidecar is mapped");
        let mb = std::fs::metadata(hnsw.path())?.len() as f64 / 1e6;
        for &ef in &efs {
            wait_quiet();
            hnsw.set_ef_search(ef);
            for q in queries.iter().take(20) {
                std::hint::black_box(hnsw.search(q, 10)?);
            }
            let mut ms = Vec::new();
            let mut found = 0;
            for (q, want) in queries.iter().zip(&truth) {
                let t = Instant::now();
                let hits = hnsw.search(q, 10)?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                found += hits.iter().filter(|h| want.contains(&h.0)).count();
            }
            ms.sort_by(f64::total_cmp);
            println!(
                "| {n} | {exact_open:.2} | {e50:.1} | {e99:.1} | {build:.1} | {open_ms:.0} | {mb:.0} | {ef} | {:.2} | {:.2} | {:.3} |",
                percentile(&ms, 0.5),
                percentile(&ms, 0.99),
                found as f64 / (10 * queries.len()) as f64
            );
        }
        drop(hnsw);
        drop(ix);
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
