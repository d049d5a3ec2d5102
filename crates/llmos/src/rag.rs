//! `llmos ingest`, `llmos search`, `llmos ask`: the CLI side of llmos-rag.

use crate::cli::{GenArgs, ModelArgs};
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use llmos_embed::Embedder;
use llmos_engine::Finish;
use llmos_rag::{ask, Index, IngestOptions, Mode, Retriever, VectorIndex};
use llmos_store::Store;
use llmos_text::Message;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

/// The embedding model every index uses (pulled on first use).
pub const EMBED_MODEL: &str = "all-minilm-l6-v2";

#[derive(Args, Debug, Clone)]
pub struct IndexArgs {
    /// Index name (a file under $LLMOS_HOME/indexes/), or a path to a .sqlite file.
    #[arg(long, default_value = "default", env = "LLMOS_INDEX")]
    pub index: String,
    /// The embedded vector index: auto (exact search below 100,000 vectors,
    /// an HNSW graph in INDEX.sqlite.hnsw from there on), exact, or hnsw.
    #[arg(
        long,
        default_value = "auto",
        env = "LLMOS_VECTOR_INDEX",
        value_name = "KIND"
    )]
    pub vector_index: VectorIndex,
}

#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    #[command(flatten)]
    pub index: IndexArgs,
    /// Chunks per embedding call (files are written after each call).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Where the vectors live: `embedded` (exact search in the index file),
    /// or a PostgreSQL server with pgvector, postgres://USER@HOST:PORT/DB
    /// (password from PGPASSWORD). Remembered by the index; search and ask
    /// use it from then on.
    #[arg(long, value_name = "URL")]
    pub vector_store: Option<String>,
    /// Files or folders (hidden entries are skipped).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    #[command(flatten)]
    pub index: IndexArgs,
    /// How many hits.
    #[arg(short, default_value_t = 5)]
    pub k: usize,
    /// hybrid (reciprocal rank fusion), bm25 or vector.
    #[arg(long, default_value = "hybrid")]
    pub mode: Mode,
    /// Print the hits as JSON Lines.
    #[arg(long)]
    pub json: bool,
    pub query: String,
}

#[derive(Args, Debug, Clone)]
pub struct AskArgs {
    #[command(flatten)]
    pub index: IndexArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Chunks retrieved for the answer.
    #[arg(short, default_value_t = 4)]
    pub k: usize,
    /// Cosine below which a chunk is not relevant.
    #[arg(long, default_value_t = ask::MIN_COSINE)]
    pub min_score: f32,
    /// Most tokens in the answer.
    #[arg(short = 'n', long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Sampling temperature (0: greedy, the default for grounded answers).
    #[arg(long, default_value_t = 0.0)]
    pub temp: f32,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads (default: all cores).
    #[arg(short, long, default_value_t = 0)]
    pub threads: usize,
    pub question: String,
}

#[derive(Args, Debug, Clone)]
pub struct EmbedArgs {
    /// Read texts from this file, one per line (`-`: standard input).
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Texts per embedding call.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Threads (default: all cores).
    #[arg(short, long, default_value_t = 0)]
    pub threads: usize,
    /// Print the texts/s and tokens/s of the embedding calls (not loading
    /// or printing) to standard error.
    #[arg(long)]
    pub stats: bool,
    /// Texts to embed (after those of --file).
    pub texts: Vec<String>,
}

pub(crate) fn index_path(store: &Store, name: &str) -> Result<PathBuf> {
    if name.contains('/') || name.ends_with(".sqlite") {
        return Ok(PathBuf::from(name));
    }
    anyhow::ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_.".contains(c))
            && !name.starts_with('.'),
        "index name {name:?}: use letters, digits, '-', '_' and '.'"
    );
    Ok(store.root().join("indexes").join(format!("{name}.sqlite")))
}

pub(crate) fn load_embedder(store: &Store) -> Result<Embedder> {
    let dir = crate::resolve(store, EMBED_MODEL)?;
    Embedder::load(&dir).with_context(|| format!("loading {}", dir.display()))
}

pub fn ingest(store: &Store, a: &IngestArgs) -> Result<ExitCode> {
    let path = index_path(store, &a.index.index)?;
    let emb = load_embedder(store)?;
    let mut index = Index::open(&path)?;
    // Connect (and catch up) before spending minutes on embeddings.
    let mut external = llmos_rag::external_store(&index, emb.dim(), a.vector_store.as_deref())?;
    let cancel = crate::cancel_flag()?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg} [{elapsed}<{eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t0 = std::time::Instant::now();
    let res = llmos_rag::ingest_cancellable(
        &mut index,
        &emb,
        &a.paths,
        &IngestOptions {
            batch: a.batch.max(1),
            ..IngestOptions::default()
        },
        &cancel,
        &mut |p| {
            bar.set_length(p.bytes_total);
            bar.set_position(p.bytes_done);
            bar.set_message(format!("{}/{} files", p.files_done, p.files_total));
        },
    );
    bar.finish_and_clear();
    let r = match res {
        Err(llmos_rag::RagError::Interrupted) => {
            eprintln!(
                "interrupted; every file written so far is complete, run ingest again to finish"
            );
            return Ok(ExitCode::from(130));
        }
        r => r?,
    };
    // The embedded exact store reads the index file; an external one, or
    // the HNSW sidecar of a large index, is brought in step with it now
    // rather than on the next search (what an interrupted run left is
    // caught up next time).
    let mut vectors = None;
    if let Some(store) = external.as_mut() {
        llmos_rag::sync_store(&index, store.as_mut(), emb.dim())?;
        vectors = Some(store.describe());
    } else if a.index.vector_index.uses_hnsw(index.chunk_count()?) {
        let hnsw = llmos_rag::HnswStore::open(&index, emb.dim(), llmos_rag::HnswParams::default())?;
        vectors = Some(llmos_rag::VectorStore::describe(&hnsw));
    }
    for (p, why) in &r.skipped {
        eprintln!("skipped {}: {why}", p.display());
    }
    let stats = index.check()?;
    println!(
        "{} added ({} chunks, {:.1} MB), {} unchanged, {} removed in {:.1}s; index {} holds {} documents, {} chunks",
        r.added,
        r.chunks,
        r.bytes as f64 / 1e6,
        r.unchanged,
        r.removed,
        t0.elapsed().as_secs_f64(),
        path.display(),
        stats.documents,
        stats.chunks
    );
    if let Some(v) = vectors {
        println!("vectors: {v}");
    }
    Ok(ExitCode::SUCCESS)
}

fn open_existing(store: &Store, name: &str) -> Result<Index> {
    let path = index_path(store, name)?;
    anyhow::ensure!(
        path.is_file(),
        "no index {name:?} ({}); run `llmos ingest PATH --index {name}` first",
        path.display()
    );
    Ok(Index::open(&path)?)
}

pub fn search(store: &Store, a: &SearchArgs) -> Result<ExitCode> {
    let index = open_existing(store, &a.index.index)?;
    let emb = load_embedder(store)?;
    let r = Retriever::new_with(&index, &emb, a.index.vector_index)?;
    let hits = r.search(&a.query, a.k, a.mode)?;
    let mut out = std::io::stdout().lock();
    if hits.is_empty() {
        eprintln!("no hits");
    }
    for (i, h) in hits.iter().enumerate() {
        let c = &h.chunk;
        if a.json {
            let v = serde_json::json!({
                "rank": i + 1, "score": h.score, "cosine": h.cosine, "path": c.path,
                "line_start": c.line_start, "line_end": c.line_end, "heading": c.heading, "text": c.text,
            });
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{}. {:.4}  {}:{}-{}",
                i + 1,
                h.score,
                c.path,
                c.line_start,
                c.line_end
            )?;
            if !c.heading.is_empty() {
                writeln!(out, "   § {}", c.heading)?;
            }
            let preview: String = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
            let preview: String = preview.chars().take(160).collect();
            writeln!(out, "   {preview}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ask(store: &Store, a: &AskArgs) -> Result<ExitCode> {
    let index = open_existing(store, &a.index.index)?;
    let emb = load_embedder(store)?;
    let r = Retriever::new_with(&index, &emb, a.index.vector_index)?;
    let hits = r.search(&a.question, a.k, Mode::Hybrid)?;
    let rel = ask::relevant(&hits, a.min_score);
    if rel.is_empty() {
        println!(
            "I found nothing about that in index {:?} (best match cosine {:.2} < {:.2}), so I will not guess.",
            a.index.index,
            hits.iter().map(|h| h.cosine).fold(0.0f32, f32::max),
            a.min_score
        );
        return Ok(ExitCode::SUCCESS);
    }
    let gen = GenArgs {
        max_tokens: Some(a.max_tokens),
        temp: a.temp,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.05,
        repeat_penalty: 1.0,
        repeat_last_n: 64,
        presence_penalty: 0.0,
        frequency_penalty: 0.0,
        seed: a.seed,
        // Small models tend to echo the prompt's next section; cut there.
        stop: vec!["\nQuestion:".into(), "\nSources:".into()],
        ctx: 0,
        threads: a.threads,
        template: None,
    };
    let engine = crate::load_engine(store, &a.model, &gen)?;
    // Room for the answer inside the context: ~3.5 characters per token.
    let n_ctx = engine.model.cfg.n_ctx_train.min(4096);
    let budget_chars = (n_ctx.saturating_sub(a.max_tokens + 200) * 7 / 2).min(6000);
    let prompt = ask::build_prompt(&a.question, &rel, budget_chars);
    let msgs = [
        Message::new("system", &prompt.system),
        Message::new("user", &prompt.user),
    ];
    let text = engine.render_chat(&msgs)?;
    let ids = engine.encode_prompt(&text, true);
    let mut sess = engine.new_session(0);
    let cancel = crate::cancel_flag()?;
    let params = crate::gen_params(&gen);
    let mut answer = String::new();
    let mut stdout = std::io::stdout().lock();
    let out = engine.generate(&mut sess, &ids, &params, &cancel, |piece| {
        answer.push_str(piece);
        if stdout
            .write_all(piece.as_bytes())
            .and_then(|_| stdout.flush())
            .is_err()
        {
            cancel.store(true, Ordering::Relaxed);
        }
    })?;
    writeln!(stdout)?;
    crate::report(&out, false);
    // Sources: the ones the answer cites; all of them if it cites none.
    let cited = ask::cited(&answer, prompt.sources.len());
    writeln!(stdout)?;
    let support = if cited.is_empty() {
        ask::attribute(&answer, &prompt.sources)
    } else {
        Vec::new()
    };
    if cited.is_empty() && support.iter().any(|s| s.source.is_some()) {
        // The model wrote no [n]: cite for it, sentence by sentence, and
        // say which sentences no source holds.
        writeln!(
            stdout,
            "Sources (the model wrote no [n]; each sentence is matched to the source holding its words):"
        )?;
        write_support(&mut stdout, &prompt.sources, &support)?;
    } else if cited.is_empty() {
        writeln!(
            stdout,
            "Sources (the answer cites none and matches none word for word; these were retrieved):"
        )?;
        for (i, s) in prompt.sources.iter().enumerate() {
            writeln!(stdout, "[{}] {s}", i + 1)?;
        }
    } else {
        writeln!(stdout, "Sources:")?;
        for n in cited {
            writeln!(stdout, "[{n}] {}", prompt.sources[n - 1])?;
        }
    }
    Ok(match out.finish {
        Finish::Cancelled => ExitCode::from(130),
        _ => ExitCode::SUCCESS,
    })
}

pub fn embed(store: &Store, a: &EmbedArgs) -> Result<ExitCode> {
    let mut texts: Vec<String> = Vec::new();
    if let Some(f) = &a.file {
        let body = if f.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading standard input")?
        } else {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        };
        texts.extend(body.lines().map(str::to_string));
    }
    texts.extend(a.texts.iter().cloned());
    anyhow::ensure!(
        !texts.is_empty(),
        "nothing to embed: give texts as arguments or --file FILE (one per line)"
    );
    let dir = crate::resolve(store, EMBED_MODEL)?;
    let emb = Embedder::load_with(
        &dir,
        &llmos_embed::LoadOptions {
            threads: a.threads,
            ..Default::default()
        },
    )
    .with_context(|| format!("loading {}", dir.display()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut secs, mut tokens) = (0f64, 0usize);
    for (b, group) in texts.chunks(a.batch.max(1)).enumerate() {
        let refs: Vec<&str> = group.iter().map(String::as_str).collect();
        let t = std::time::Instant::now();
        let (vs, n) = emb.embed_counted(&refs)?;
        secs += t.elapsed().as_secs_f64();
        tokens += n;
        for (i, v) in vs.iter().enumerate() {
            let line = serde_json::json!({"index": b * a.batch.max(1) + i, "embedding": v});
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    if a.stats {
        eprintln!(
            "embedded {} texts ({tokens} tokens) in {secs:.3}s: {:.1} texts/s, {:.0} tokens/s",
            texts.len(),
            texts.len() as f64 / secs.max(1e-9),
            tokens as f64 / secs.max(1e-9)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Each source that holds sentences of the answer, with them (`[n] source`,
/// then the sentences), then the sentences no source holds: the citations
/// `ask` and `agent` write for a model that wrote none ([`ask::attribute`]).
pub(crate) fn write_support(
    out: &mut impl Write,
    sources: &[ask::Source],
    support: &[ask::Support],
) -> std::io::Result<()> {
    for (i, src) in sources.iter().enumerate() {
        let backs: Vec<&str> = support
            .iter()
            .filter(|s| s.source == Some(i + 1))
            .map(|s| s.sentence.as_str())
            .collect();
        if backs.is_empty() {
            continue;
        }
        writeln!(out, "[{}] {src}", i + 1)?;
        for b in backs {
            writeln!(out, "    \"{b}\"")?;
        }
    }
    let loose: Vec<&str> = support
        .iter()
        .filter(|s| s.source.is_none())
        .map(|s| s.sentence.as_str())
        .collect();
    if !loose.is_empty() {
        writeln!(out, "Not in the sources (check these):")?;
        for l in loose {
            writeln!(out, "    \"{l}\"")?;
        }
    }
    Ok(())
}
