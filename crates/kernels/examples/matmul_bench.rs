//! Times `matmul` on shapes from the catalog models and prints GFLOP/s and
//! GB/s (weight bytes read per call / time).
//!
//! ```text
//! cargo run --release -p llmos-kernels --example matmul_bench [-- --quick]
//! LLMOS_SIMD=avx2 cargo run ...   # cap the kernel level
//! ```
//!
//! Sections: the pool's dispatch cost; the two headline shapes (576×1536
//! q4_1, 896×4864 q5_0 as rows×cols) at n = 1 and 64 with the pool against
//! one thread, scoped threads spawned per call, and the scalar twin; then
//! every supported type at 896×4864.

use llmos_kernels::matmul::{matmul, matmul_scalar, MatmulScratch, QMatrix};
use llmos_kernels::pool::ThreadPool;
use llmos_kernels::{quant, simd, GgmlType};
use std::hint::black_box;
use std::time::{Duration, Instant};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// A random `rows × cols` matrix of `ty`: quantized from random floats where
/// `quant` can, else random bytes with small f16 scales.
fn random_matrix(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let row_bytes = cols / ty.block_size() * ty.type_size();
    let mut data = vec![0u8; rows * row_bytes];
    let x: Vec<f32> = (0..cols).map(|_| rng.f32() * 0.05).collect();
    for row in data.chunks_exact_mut(row_bytes) {
        if quant::quantize_row(ty, &x, row).is_err() {
            row.iter_mut().for_each(|b| *b = rng.next() as u8);
            let d_at: &[usize] = match ty {
                GgmlType::Q2_K => &[80, 82],
                GgmlType::Q3_K => &[108],
                GgmlType::Q6_K => &[208],
                _ => &[0, 2],
            };
            let d = half::f16::from_f32(0.002).to_bits().to_le_bytes();
            for block in row.chunks_exact_mut(ty.type_size()) {
                for &o in d_at {
                    block[o..o + 2].copy_from_slice(&d);
                }
            }
        }
    }
    data
}

/// Median seconds per call of `f`, run for about `budget`.
fn time(budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || samples.len() < 5 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// CPU time of the calling thread (user + system) from
/// `/proc/thread-self/stat`, in clock ticks of 10 ms; `None` off Linux.
fn thread_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 (1-based) of the whole line.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Seconds of *CPU time* per call of `f` on this thread, over about `wall`
/// of wall-clock time: the kernel's own speed even when other processes
/// share the cores (10 ms tick resolution, so give it a second or more).
fn cpu_time(wall: Duration, mut f: impl FnMut()) -> Option<f64> {
    f();
    let t0 = thread_cpu_ticks()?;
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < wall || calls < 3 {
        f();
        calls += 1;
    }
    let ticks = thread_cpu_ticks()? - t0;
    (ticks > 0).then(|| ticks as f64 / 100.0 / calls as f64)
}

/// CPU time of the whole process (all threads), in 10 ms ticks.
fn process_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// (wall seconds, process CPU seconds) per call of `f` over about `wall`:
/// on a shared machine, CPU per call shows the pool's overhead even when
/// the wall clock cannot show its scaling.
fn wall_and_cpu(wall: Duration, mut f: impl FnMut()) -> Option<(f64, f64)> {
    f();
    let c0 = process_cpu_ticks()?;
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < wall || calls < 3 {
        f();
        calls += 1;
    }
    let w = start.elapsed().as_secs_f64() / calls as f64;
    Some((w, (process_cpu_ticks()? - c0) as f64 / 100.0 / calls as f64))
}

/// `matmul` with threads spawned per call (`std::thread::scope`): the
/// rayon-free alternative the pool replaces. Splits rows evenly.
fn matmul_scoped(threads: usize, w: &QMatrix, x: &[f32], n: usize, y: &mut [f32]) {
    let per = w.rows.div_ceil(threads);
    let rb = w.row_bytes();
    let mut parts: Vec<Vec<f32>> = vec![Vec::new(); threads];
    std::thread::scope(|s| {
        for (i, part) in parts.iter_mut().enumerate() {
            s.spawn(move || {
                let (r0, r1) = (i * per, ((i + 1) * per).min(w.rows));
                if r0 >= r1 {
                    return;
                }
                let sub = QMatrix::new(w.ty, &w.data[r0 * rb..r1 * rb], r1 - r0, w.cols)
                    .expect("sub-matrix");
                part.resize(n * (r1 - r0), 0.0);
                let pool = ThreadPool::new(1);
                matmul(&pool, &sub, x, n, part, &mut MatmulScratch::default());
            });
        }
    });
    for (i, part) in parts.iter().enumerate() {
        let r0 = i * per;
        let len = part.len().checked_div(n).unwrap_or(0);
        for t in 0..n {
            y[t * w.rows + r0..t * w.rows + r0 + len]
                .copy_from_slice(&part[t * len..(t + 1) * len]);
        }
    }
}

fn report(label: &str, w: &QMatrix, n: usize, secs: f64) {
    let flops = 2.0 * (w.rows * w.cols * n) as f64;
    println!(
        "  {label:<28} {:>9.1} us  {:>7.1} GFLOP/s  {:>6.1} GB/s",
        secs * 1e6,
        flops / secs / 1e9,
        w.data.len() as f64 / secs / 1e9
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 150 } else { 600 });
    let cpu_wall = Duration::from_millis(if quick { 1000 } else { 3000 });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = ThreadPool::new(threads);
    let single = ThreadPool::new(1);
    println!("kernels: {}, threads: {threads}", simd::simd_level());

    let t = time(budget, || {
        pool.run(threads, |i| {
            black_box(i);
        })
    });
    println!("pool.run dispatch (empty tasks): {:.2} us\n", t * 1e6);

    let mut rng = Rng(1);
    let mut scratch = MatmulScratch::default();
    for (at, cols) in [
        (GgmlType::Q8_1, 1536),
        (GgmlType::Q8_0, 4864),
        (GgmlType::Q8_K, 4864),
    ] {
        let x: Vec<f32> = (0..cols).map(|_| rng.f32()).collect();
        let mut q = vec![0u8; cols / at.block_size() * at.type_size()];
        let s = time(budget, || {
            let r = quant::quantize_row(at, black_box(&x), &mut q);
            black_box(r.is_ok());
        });
        let f = time(budget, || {
            let r = simd::quantize_row(at, black_box(&x), &mut q);
            black_box(r.is_ok());
        });
        println!(
            "quantize {at} x {cols}: scalar {:.2} us, simd {:.2} us",
            s * 1e6,
            f * 1e6
        );
    }
    println!();
    for (ty, rows, cols) in [(GgmlType::Q4_1, 576, 1536), (GgmlType::Q5_0, 896, 4864)] {
        let data = random_matrix(&mut rng, ty, rows, cols);
        let w = QMatrix::new(ty, &data, rows, cols).expect("matrix");
        for n in [1, 64] {
            let x: Vec<f32> = (0..n * cols).map(|_| rng.f32()).collect();
            let mut y = vec![0f32; n * rows];
            println!(
                "{ty} {rows}x{cols}, n={n} ({:.2} MB of weights)",
                data.len() as f64 / 1e6
            );
            let s = time(budget, || matmul(&pool, &w, &x, n, &mut y, &mut scratch));
            report(&format!("pool, {threads} threads"), &w, n, s);
            let s = time(budget, || matmul(&single, &w, &x, n, &mut y, &mut scratch));
            report("1 thread", &w, n, s);
            if let Some(s) = cpu_time(cpu_wall, || {
                matmul(&single, &w, &x, n, &mut y, &mut scratch)
            }) {
                report("1 thread, per CPU-second", &w, n, s);
            }
            let s = time(budget, || matmul_scoped(threads, &w, &x, n, &mut y));
            report(&format!("scoped spawn, {threads} threads"), &w, n, s);
            for (label, p) in [("1 thread", &single), ("pool", &pool)] {
                let run = || matmul(p, &w, &x, n, &mut y, &mut scratch);
                if let Some((wall, cpu)) = wall_and_cpu(cpu_wall, run) {
                    println!(
                        "  {label:<8} process CPU {:>9.1} us per call ({:.2} cores busy)",
                        cpu * 1e6,
                        cpu / wall
                    );
                }
            }
            if n == 1 || !quick {
                let s = time(budget, || matmul_scalar(&w, &x, n, &mut y));
                report("matmul_scalar", &w, n, s);
            }
        }
    }

    // A matrix far larger than the caches: the output layer of
    // qwen2.5-0.5b (151936 x 896 q8_0, 144 MB), where decode is bound by
    // memory bandwidth.
    let (ty, rows, cols) = (GgmlType::Q8_0, 151_936, 896);
    let data = random_matrix(&mut rng, ty, rows, cols);
    let w = QMatrix::new(ty, &data, rows, cols).expect("matrix");
    let x: Vec<f32> = (0..cols).map(|_| rng.f32()).collect();
    let mut y = vec![0f32; rows];
    println!(
        "\n{ty} {rows}x{cols}, n=1 ({:.0} MB of weights)",
        data.len() as f64 / 1e6
    );
    let s = time(budget, || matmul(&pool, &w, &x, 1, &mut y, &mut scratch));
    report(&format!("pool, {threads} threads"), &w, 1, s);
    let s = time(budget, || matmul(&single, &w, &x, 1, &mut y, &mut scratch));
    report("1 thread", &w, 1, s);
    if let Some(s) = cpu_time(cpu_wall, || {
        matmul(&single, &w, &x, 1, &mut y, &mut scratch)
    }) {
        report("1 thread, per CPU-second", &w, 1, s);
    }
    drop(data);

    let (rows, cols) = (896, 4864);
    println!(
        "\nevery type, {rows}x{cols}: pool with {threads} threads (wall), 1 thread (CPU time):"
    );
    for ty in GgmlType::ALL
        .into_iter()
        .filter(|t| quant::is_supported(*t))
    {
        let data = random_matrix(&mut rng, ty, rows, cols);
        let w = QMatrix::new(ty, &data, rows, cols).expect("matrix");
        for n in [1, 64] {
            let x: Vec<f32> = (0..n * cols).map(|_| rng.f32()).collect();
            let mut y = vec![0f32; n * rows];
            let s = time(budget, || matmul(&pool, &w, &x, n, &mut y, &mut scratch));
            report(&format!("{ty} n={n} pool"), &w, n, s);
            if let Some(s) = cpu_time(cpu_wall, || {
                matmul(&single, &w, &x, n, &mut y, &mut scratch)
            }) {
                report(&format!("{ty} n={n} 1 thread, CPU"), &w, n, s);
            }
        }
    }
}
