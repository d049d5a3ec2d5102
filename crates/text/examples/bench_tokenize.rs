//! Startup and encode timings for a model's tokenizer.
//!
//! ```text
//! cargo run --release -p llmos-text --example bench_tokenize -- model.gguf [text-file]
//! ```
//! Reports wall time; on a shared machine run it a few times and take the best.

use std::process::ExitCode;
use std::time::{Duration, Instant};

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
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
    let build = best_of(5, || tok = llmos_text::Tokenizer::from_gguf(&gguf).ok());
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
    let enc = best_of(10, || n = tok.encode(&text, true, true).len());
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
