//! Times `matmul` on one realistic shape per weight format (896×4864 and
//! 4864×896 as rows×cols, the qwen2.5-0.5b FFN) at a prefill batch, per
//! SIMD level, and prints GOPS (2·rows·cols·n / time).
//!
//! ```text
//! cargo run --release -p llmos-kernels --example gemm_bench [-- N THREADS]
//! ```

use llmos_kernels::matmul::{matmul_at, MatmulScratch, QMatrix};
use llmos_kernels::pool::ThreadPool;
use llmos_kernels::simd::SimdLevel;
use llmos_kernels::{quant, GgmlType};
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(64);
    let threads = args.get(1).copied().unwrap_or(2);
    let pool = ThreadPool::new(threads);
    let mut seed = 1u64;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    use GgmlType::*;
    for ty in [Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K] {
        for (rows, cols) in [(4864usize, 896usize), (896, 4864)] {
            if !cols.is_multiple_of(ty.block_size()) {
                continue;
            }
            let rb = cols / ty.block_size() * ty.type_size();
            let mut data = vec![0u8; rows * rb];
            for row in data.chunks_exact_mut(rb) {
                let x: Vec<f32> = (0..cols).map(|_| rnd()).collect();
                if quant::quantize_row(ty, &x, row).is_err() {
                    // No quantizer (k-quants): random codes, small f16 scales.
                    row.iter_mut()
                        .for_each(|b| *b = (rnd() * 512.0) as i32 as u8);
                    let d_at: &[usize] = if ty == Q6_K { &[208] } else { &[0, 2] };
                    for block in row.chunks_exact_mut(ty.type_size()) {
                        for &o in d_at {
                            block[o..o + 2].copy_from_slice(&[0x1a, 0x10]);
                        }
                    }
                }
            }
            let w = QMatrix::new(ty, &data, rows, cols).expect("matrix");
            let x: Vec<f32> = (0..n * cols).map(|_| rnd()).collect();
            let mut y = vec![0f32; n * rows];
            let mut scratch = MatmulScratch::default();
            let mut line = format!("{ty:>5} {rows:>5}x{cols:<5} n={n:<4}");
            for level in [SimdLevel::Avx2, SimdLevel::Avx512Vnni] {
                if !level.is_available() {
                    continue;
                }
                matmul_at(level, &pool, &w, &x, n, &mut y, &mut scratch);
                let mut best = f64::MAX;
                for _ in 0..5 {
                    let t = Instant::now();
                    matmul_at(level, &pool, &w, &x, n, &mut y, &mut scratch);
                    best = best.min(t.elapsed().as_secs_f64());
                }
                let gops = 2.0 * (rows * cols * n) as f64 / best / 1e9;
                line += &format!("  {}: {gops:7.1} GOPS", level.name());
            }
            println!("{line}");
        }
    }
}
