//! Time `GgufFile::open` on each file given: best of 10 runs with a warm
//! page cache, as wall time and as on-CPU time of this thread (from
//! /proc/thread-self/schedstat, so a busy machine does not inflate it).
//! Dropping the file is not counted.
//!
//! `cargo run --release -p llmos-gguf --example gguf_open_time -- FILE.gguf...`

use std::time::{Duration, Instant};

use llmos_gguf::GgufFile;

/// Nanoseconds this thread has spent on a CPU, if the kernel reports it.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: gguf_open_time FILE.gguf...");
        std::process::exit(2);
    }
    for path in &paths {
        let mut best_wall = Duration::MAX;
        let mut best_cpu = u64::MAX;
        for _ in 0..10 {
            let c0 = cpu_ns();
            let t0 = Instant::now();
            let file = GgufFile::open(path);
            let wall = t0.elapsed();
            let cpu = c0.zip(cpu_ns()).map(|(a, b)| b - a);
            if let Err(e) = &file {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
            best_wall = best_wall.min(wall);
            best_cpu = best_cpu.min(cpu.unwrap_or(u64::MAX));
            drop(file);
        }
        let cpu = if best_cpu == u64::MAX {
            "n/a".to_string()
        } else {
            format!("{:?}", Duration::from_nanos(best_cpu))
        };
        println!("{path}: open best of 10: wall {best_wall:?}, cpu {cpu}");
    }
}
