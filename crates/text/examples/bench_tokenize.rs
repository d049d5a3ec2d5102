//! Startup and encode timings for a model's tokenizer.
//!
//! ```text
//! cargo run --release -p llmos-text --example bench_tokenize -- model.gguf [text-file]
//! ```
//! Reports the best of several runs, in CPU time of this thread where Linux
//! tells it (/proc/thread-self/schedstat), so a busy shared machine does not
//! inflate the numbers; wall time elsewhere.

use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Nanoseconds this thread has run on a CPU, if the kernel says.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Best of `n` rounds of the time per call, each round `reps` calls (the
/// kernel's CPU-time counter only moves every few milliseconds).
fn best_of(n: usize, reps: u32, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let (t, c) = (Instant::now(), thread_cpu_ns());
            for _ in 0..reps {
                f();
            }
            let total = match (c, thread_cpu_ns()) {
                (Some(a), Some(b)) if b > a => Duration::from_nanos(b - a),
                _ => t.elapsed(),
            };
            total / reps
        })
        .min()
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: bench_tokenize MODEL.gguf [TEXT_FILE]");
        return ExitCode::from(2);
    };
    let gguf = match llmos_gguf::GgufFile::open(path) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut tok = None;
    let build = best_of(5, 1, || tok = llmos_text::Tokenizer::from_gguf(&gguf).ok());
    let Some(tok) = tok else {
        eprintln!("{path}: tokenizer failed to build");
        return ExitCode::FAILURE;
    };
    let text = match args.get(1) {
        Some(f) => std::fs::read_to_string(f).unwrap_or_default(),
        None => {
            "The quick brown fox jumps over the lazy dog. fn main() { println!(\"{}\", 42); }\n\
                 Grüße aus Zürich — 你好，世界！ 🍕 1234567 <|im_start|>user\n"
                .repeat(40)
        }
    };
    let mut n = 0;
    let enc = best_of(5, 200, || n = tok.encode(&text, true, true).len());
    println!(
        "{path}: build {:.1} ms (vocab {}), encode {} bytes -> {n} tokens in {:.2} ms ({:.1} MB/s)",
        build.as_secs_f64() * 1e3,
        tok.vocab_size(),
        text.len(),
        enc.as_secs_f64() * 1e3,
        text.len() as f64 / enc.as_secs_f64() / 1e6
    );
    ExitCode::SUCCESS
}
