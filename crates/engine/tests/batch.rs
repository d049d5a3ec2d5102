//! Continuous batching must not change what a sequence generates: greedy
//! outputs of sequences that share steps (joining and leaving at different
//! times, prefill chunks mixed with decode tokens) equal single-sequence
//! `Engine::generate` outputs, and a slot's cached prefix is reused.

use llmos_engine::batch::{BatchConfig, Batcher, Event, SeqRequest, SeqUsage, Sink, SubmitError};
use llmos_engine::{Engine, Finish, GenParams, LoadOptions};
use llmos_sample::SamplerConfig;
use llmos_text::Message;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

fn model(name: &str) -> Option<PathBuf> {
    let p = std::env::var_os("LLMOS_TEST_MODELS")
        .map(|d| PathBuf::from(d).join(format!("{name}.gguf")));
    match p {
        Some(p) if p.is_file() => Some(p),
        _ => {
            if std::env::var("LLMOS_REQUIRE_MODELS").as_deref() == Ok("1") {
                panic!(
                    "model {name} not found under $LLMOS_TEST_MODELS and LLMOS_REQUIRE_MODELS=1"
                );
            }
            eprintln!("skipping: model {name} not found (set LLMOS_TEST_MODELS)");
            None
        }
    }
}

/// The default chat model on `threads` threads, or `None` (skipped) if absent.
fn smollm2(threads: usize) -> Option<Arc<Engine>> {
    let path = model("smollm2-135m-instruct")?;
    let opts = LoadOptions {
        threads,
        template: None,
    };
    Some(Arc::new(Engine::load(&path, opts).expect("load")))
}

struct ChanSink(mpsc::Sender<Event>);

impl Sink for ChanSink {
    fn send(&mut self, ev: Event) -> bool {
        self.0.send(ev).is_ok()
    }
    fn is_closed(&self) -> bool {
        false
    }
}

/// A sequence's text and its final event.
fn collect(rx: mpsc::Receiver<Event>) -> (String, Finish, SeqUsage) {
    let mut text = String::new();
    for ev in rx {
        match ev {
            Event::Delta { text: t, .. } => text.push_str(&t),
            Event::Done { finish, usage } => return (text, finish, usage),
            Event::Failed(e) => panic!("sequence failed: {e}"),
        }
    }
    panic!("no Done event");
}

fn prompt(engine: &Engine, q: &str) -> Vec<u32> {
    let text = engine
        .render_chat(&[
            Message::new("system", "You are a helpful assistant. Answer briefly."),
            Message::new("user", q),
        ])
        .expect("render");
    engine.encode_prompt(&text, true)
}

fn request(prompt: Vec<u32>, max_tokens: usize) -> (SeqRequest, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let req = SeqRequest {
        prompt,
        max_tokens,
        sampler: SamplerConfig::default(),
        stop: vec![],
        logprobs: None,
        constraint: None,
        sink: Box::new(ChanSink(tx)),
    };
    (req, rx)
}

#[test]
fn batched_greedy_equals_single_sequence_and_reuses_prefixes() {
    let Some(engine) = smollm2(2) else {
        return;
    };
    let questions = [
        "What is the capital of France?",
        "Name three colors.",
        "Count from one to five.",
        "What is 2+2?",
        "Write a haiku about rain.",
    ];
    let max_tokens = [24, 10, 30, 5, 16];
    // Reference: one sequence at a time.
    let want: Vec<String> = questions
        .iter()
        .zip(max_tokens)
        .map(|(q, n)| {
            let mut sess = engine.new_session(1024);
            let params = GenParams {
                max_tokens: Some(n),
                sampler: SamplerConfig::default(),
                stop: vec![],
            };
            let p = prompt(&engine, q);
            engine
                .generate(&mut sess, &p, &params, &AtomicBool::new(false), |_| {})
                .expect("generate")
                .text
        })
        .collect();
    // Three slots for five requests: sequences join as others leave. A small
    // step budget splits prompts into chunks that share steps with decodes.
    let cfg = BatchConfig {
        slots: 3,
        n_ctx: 1024,
        step_tokens: 16,
        queue: 16,
    };
    let b = Batcher::start(Arc::clone(&engine), cfg).expect("start");
    let rxs: Vec<_> = questions
        .iter()
        .zip(max_tokens)
        .map(|(q, n)| {
            let (req, rx) = request(prompt(&engine, q), n);
            b.submit(req).expect("submit");
            rx
        })
        .collect();
    for (i, rx) in rxs.into_iter().enumerate() {
        let (text, _, usage) = collect(rx);
        assert_eq!(text, want[i], "sequence {i} ({})", questions[i]);
        assert!(usage.completion_tokens <= max_tokens[i]);
    }
    let s = b.stats();
    let steps = s.steps.load(Ordering::Relaxed);
    let seqs = s.step_seqs.load(Ordering::Relaxed);
    assert!(
        seqs > steps,
        "no step served more than one sequence ({seqs} over {steps} steps)"
    );

    // The same system prompt again: its tokens come from a slot's cache.
    let p = prompt(&engine, "What is the capital of Italy?");
    let n = p.len();
    let (req, rx) = request(p, 4);
    b.submit(req).expect("submit");
    let (_, _, usage) = collect(rx);
    assert!(usage.cached_tokens >= 10, "{usage:?}");
    assert!(usage.cached_tokens < n);
}

#[test]
fn submit_refuses_what_cannot_fit() {
    let Some(engine) = smollm2(1) else {
        return;
    };
    let cfg = BatchConfig {
        slots: 1,
        n_ctx: 64,
        step_tokens: 16,
        queue: 4,
    };
    let b = Batcher::start(engine, cfg).expect("start");
    let (req, _rx) = request(vec![1; 60], 10);
    let r = b.submit(req);
    assert!(
        matches!(
            r,
            Err(SubmitError::TooLong {
                n_prompt: 60,
                max_tokens: 10,
                n_ctx: 64
            })
        ),
        "{r:?}"
    );
}

/// A request that shares a long system prompt with one still running in
/// another slot starts from a copy of that slot's cache: it reports the
/// prefix as cached and generates exactly what it would alone.
#[test]
fn shared_system_prompt_is_copied_from_a_busy_slot() {
    let Some(engine) = smollm2(2) else {
        return;
    };
    let system = "You are a meticulous assistant for a hardware store. ".repeat(12);
    let chat = |q: &str| {
        let text = engine
            .render_chat(&[Message::new("system", &system), Message::new("user", q)])
            .expect("render");
        engine.encode_prompt(&text, true)
    };
    let (pa, pb) = (
        chat("List ten kinds of screws."),
        chat("Do you sell hammers?"),
    );
    let shared = pa.iter().zip(&pb).take_while(|(a, b)| a == b).count();
    assert!(shared > 100, "the prompts share only {shared} tokens");

    let mut sess = engine.new_session(1024);
    let params = GenParams {
        max_tokens: Some(12),
        sampler: SamplerConfig::default(),
        stop: vec![],
    };
    let want = engine
        .generate(&mut sess, &pb, &params, &AtomicBool::new(false), |_| {})
        .expect("generate")
        .text;

    let cfg = BatchConfig {
        slots: 2,
        n_ctx: 1024,
        step_tokens: 64,
        queue: 4,
    };
    let b = Batcher::start(Arc::clone(&engine), cfg).expect("start");
    let (ra, rxa) = request(pa, 200);
    b.submit(ra).expect("submit a");
    // Once a's first token is out, its prompt is in its slot's cache.
    match rxa.recv().expect("a's first event") {
        Event::Delta { .. } => {}
        Event::Done { .. } => panic!("a finished at once"),
        Event::Failed(e) => panic!("a failed: {e}"),
    }
    let (rb, rxb) = request(pb, 12);
    b.submit(rb).expect("submit b");
    let (text, _, usage) = collect(rxb);
    assert_eq!(text, want, "b with a copied prefix differs from b alone");
    assert!(
        usage.cached_tokens >= shared.min(usage.prompt_tokens - 1) - 1,
        "{usage:?}, shared {shared}"
    );
    assert_eq!(b.stats().prefix_copies.load(Ordering::Relaxed), 1);
    collect(rxa);
}
