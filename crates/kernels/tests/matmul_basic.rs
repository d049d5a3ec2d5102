//! matmul against its scalar twin, across types, batch sizes and thread
//! counts; QMatrix validation.

mod simd_data;

use llmos_kernels::matmul::{
    matmul, matmul_at, matmul_many, matmul_scalar, MatmulError, MatmulScratch, QMatrix,
};
use llmos_kernels::pool::ThreadPool;
use llmos_kernels::{quant, simd, GgmlType};
use simd_data::{row_bytes, weight_row, Rng};

fn random_matrix(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    (0..rows).flat_map(|_| weight_row(rng, ty, cols)).collect()
}

/// Shapes that exercise row blocks, token tiles and the 4-token remainder.
const SHAPES: [(usize, usize); 3] = [(1, 256), (37, 512), (130, 768)];
const BATCHES: [usize; 8] = [0, 1, 2, 3, 4, 5, 17, 40];

#[test]
fn matmul_matches_scalar_twin_for_every_type() {
    let pools = [ThreadPool::new(1), ThreadPool::new(2), ThreadPool::new(3)];
    let mut rng = Rng(42);
    let mut scratch = MatmulScratch::default();
    for ty in simd_data::types() {
        for (rows, cols) in SHAPES {
            let data = random_matrix(&mut rng, ty, rows, cols);
            let w = QMatrix::new(ty, &data, rows, cols).expect("valid matrix");
            for n in BATCHES {
                let x = rng.floats(n * cols, 1.0);
                let mut y_ref = vec![0f32; n * rows];
                matmul_scalar(&w, &x, n, &mut y_ref);
                // Tolerance: float reassociation only. Every term |w*a| is
                // below max|w| * max|a|, so cols * that bounds sum |terms|.
                let wmax = simd_data::decode(ty, &data, rows * cols)
                    .iter()
                    .fold(0f32, |m, v| m.max(v.abs()));
                let xmax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
                let tol = 1e-5 * cols as f32 * wmax * xmax + 1e-30;
                let mut first: Option<Vec<f32>> = None;
                for pool in &pools {
                    let mut y = vec![f32::NAN; n * rows];
                    matmul(pool, &w, &x, n, &mut y, &mut scratch);
                    for (i, (a, b)) in y.iter().zip(&y_ref).enumerate() {
                        assert!(
                            (a - b).abs() <= tol,
                            "{ty} {rows}x{cols} n={n} threads={} y[{i}] = {a}, scalar {b}",
                            pool.n_threads()
                        );
                    }
                    match &first {
                        None => first = Some(y),
                        Some(f) => assert!(
                            f.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{ty} {rows}x{cols} n={n}: result depends on the thread count"
                        ),
                    }
                }
            }
        }
    }
}

/// Each output equals `simd::vec_dot` of its weight row and its quantized
/// token, bit for bit, whatever the batch size (the 4-token kernels and the
/// tiling must not change the arithmetic).
#[test]
fn matmul_is_batch_invariant() {
    let pool = ThreadPool::new(2);
    let mut rng = Rng(7);
    let mut scratch = MatmulScratch::default();
    for ty in simd_data::types() {
        let (rows, cols) = (19, 512);
        let data = random_matrix(&mut rng, ty, rows, cols);
        let w = QMatrix::new(ty, &data, rows, cols).expect("valid matrix");
        let n = 23;
        let x = rng.floats(n * cols, 1.0);
        let mut y = vec![0f32; n * rows];
        matmul(&pool, &w, &x, n, &mut y, &mut scratch);
        let at = quant::vec_dot_type(ty);
        let mut q = vec![0u8; row_bytes(at, cols)];
        for t in 0..n {
            quant::quantize_row(at, &x[t * cols..(t + 1) * cols], &mut q).expect("quantize");
            let mut y1 = vec![0f32; rows];
            matmul(
                &pool,
                &w,
                &x[t * cols..(t + 1) * cols],
                1,
                &mut y1,
                &mut scratch,
            );
            for r in 0..rows {
                let wr = &data[r * w.row_bytes()..(r + 1) * w.row_bytes()];
                let d = simd::vec_dot(ty, wr, &q, cols);
                assert_eq!(
                    y[t * rows + r].to_bits(),
                    d.to_bits(),
                    "{ty} token {t} row {r}"
                );
                assert_eq!(y1[r].to_bits(), d.to_bits(), "{ty} token {t} row {r} (n=1)");
            }
        }
    }
}

#[test]
fn matmul_uses_only_the_first_n_rows_of_oversized_buffers() {
    let pool = ThreadPool::new(2);
    let mut rng = Rng(3);
    let (rows, cols) = (8, 64);
    let data = random_matrix(&mut rng, GgmlType::Q8_0, rows, cols);
    let w = QMatrix::new(GgmlType::Q8_0, &data, rows, cols).expect("valid matrix");
    let x = rng.floats(4 * cols, 1.0);
    let mut y = vec![-7.0f32; 4 * rows];
    matmul(&pool, &w, &x, 2, &mut y, &mut MatmulScratch::default());
    assert!(y[2 * rows..].iter().all(|v| *v == -7.0));
    assert!(y[..2 * rows].iter().all(|v| *v != -7.0));
}

#[test]
fn qmatrix_errors_name_type_and_sizes() {
    let data = vec![0u8; 34 * 4];
    assert!(QMatrix::new(GgmlType::Q8_0, &data, 2, 64).is_ok());
    let e = QMatrix::new(GgmlType::Q8_0, &data, 3, 64).unwrap_err();
    assert_eq!(
        e,
        MatmulError::ByteLen {
            ty: GgmlType::Q8_0,
            rows: 3,
            cols: 64,
            expected: 204,
            got: 136
        }
    );
    assert_eq!(
        e.to_string(),
        "matmul: q8_0 matrix 3x64 takes 204 bytes, got 136"
    );
    let e = QMatrix::new(GgmlType::Q8_0, &data, 2, 48).unwrap_err();
    assert_eq!(
        e.to_string(),
        "matmul: q8_0 matrix 2x48: 48 columns is not a multiple of the block size 32"
    );
    let e = QMatrix::new(GgmlType::IQ2_XXS, &data, 1, 256).unwrap_err();
    assert_eq!(
        e.to_string(),
        "matmul: weight type iq2_xxs is not supported"
    );
    let e = QMatrix::new(GgmlType::Q8_0, &data, usize::MAX, 1 << 40).unwrap_err();
    assert!(matches!(e, MatmulError::Overflow { .. }), "{e}");
}

#[test]
#[should_panic(expected = "matmul: y has 3 floats, need 1 tokens x 4 rows")]
fn matmul_rejects_short_output() {
    let data = vec![0u8; 34 * 4];
    let w = QMatrix::new(GgmlType::Q8_0, &data, 4, 32).expect("valid matrix");
    let mut y = vec![0f32; 3];
    matmul(
        &ThreadPool::new(1),
        &w,
        &[0.0; 32],
        1,
        &mut y,
        &mut MatmulScratch::default(),
    );
}

/// Rule for batching users together: an output must not depend on how many
/// tokens share the call. matmul with n = 37 equals 37 calls with n = 1, bit
/// for bit, for every type at every level this CPU has (row counts that
/// leave partial 16-row GEMM tiles, thread counts 1 and 2).
#[test]
fn matmul_n37_equals_37_single_token_calls_at_every_level() {
    let pools = [ThreadPool::new(1), ThreadPool::new(2)];
    let mut rng = Rng(37);
    let mut scratch = MatmulScratch::default();
    for level in simd::SimdLevel::available() {
        for ty in simd_data::types() {
            for (rows, cols) in [(37, 512), (16, 768), (5, 256)] {
                let data = random_matrix(&mut rng, ty, rows, cols);
                let w = QMatrix::new(ty, &data, rows, cols).expect("valid matrix");
                let n = 37;
                let x = rng.floats(n * cols, 1.0);
                for pool in &pools {
                    let mut y = vec![f32::NAN; n * rows];
                    assert!(matmul_at(level, pool, &w, &x, n, &mut y, &mut scratch));
                    for t in 0..n {
                        let mut y1 = vec![f32::NAN; rows];
                        let xt = &x[t * cols..(t + 1) * cols];
                        assert!(matmul_at(level, pool, &w, xt, 1, &mut y1, &mut scratch));
                        for r in 0..rows {
                            assert_eq!(
                                y[t * rows + r].to_bits(),
                                y1[r].to_bits(),
                                "{level:?} {ty} {rows}x{cols} token {t} row {r} threads={}",
                                pool.n_threads()
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Every level's matmul against the scalar twin (the default-level test
/// above covers only the best level).
#[test]
fn matmul_at_every_level_matches_scalar_twin() {
    let pool = ThreadPool::new(2);
    let mut rng = Rng(11);
    let mut scratch = MatmulScratch::default();
    for level in simd::SimdLevel::available() {
        for ty in simd_data::types() {
            for (rows, cols, n) in [(37, 512, 21), (130, 768, 9), (3, 256, 1)] {
                let data = random_matrix(&mut rng, ty, rows, cols);
                let w = QMatrix::new(ty, &data, rows, cols).expect("valid matrix");
                let x = rng.floats(n * cols, 1.0);
                let mut y_ref = vec![0f32; n * rows];
                matmul_scalar(&w, &x, n, &mut y_ref);
                let wmax = simd_data::decode(ty, &data, rows * cols)
                    .iter()
                    .fold(0f32, |m, v| m.max(v.abs()));
                let xmax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
                let tol = 1e-5 * cols as f32 * wmax * xmax + 1e-30;
                let mut y = vec![f32::NAN; n * rows];
                assert!(matmul_at(level, &pool, &w, &x, n, &mut y, &mut scratch));
                for (i, (a, b)) in y.iter().zip(&y_ref).enumerate() {
                    assert!(
                        (a - b).abs() <= tol,
                        "{level:?} {ty} {rows}x{cols} n={n} y[{i}] = {a}, scalar {b}"
                    );
                }
            }
        }
    }
}

/// The k-quant GEMM tiles keep the scalar reference's float expression, so
/// at every level they equal `matmul_scalar` bit for bit.
#[test]
fn kquant_matmul_is_bit_exact_at_every_level() {
    let pool = ThreadPool::new(2);
    let mut rng = Rng(19);
    let mut scratch = MatmulScratch::default();
    for level in simd::SimdLevel::available() {
        for ty in [GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K] {
            let (rows, cols, n) = (21, 768, 11);
            let data = random_matrix(&mut rng, ty, rows, cols);
            let w = QMatrix::new(ty, &data, rows, cols).expect("valid matrix");
            let x = rng.floats(n * cols, 1.0);
            let mut y_ref = vec![0f32; n * rows];
            matmul_scalar(&w, &x, n, &mut y_ref);
            let mut y = vec![f32::NAN; n * rows];
            assert!(matmul_at(level, &pool, &w, &x, n, &mut y, &mut scratch));
            for (i, (a, b)) in y.iter().zip(&y_ref).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{level:?} {ty} y[{i}] = {a}, scalar {b}"
                );
            }
        }
    }
}

#[test]
fn matmul_many_gives_each_output_the_bits_of_its_own_matmul() {
    // Same-format triples (fused in one dispatch for decode), a mixed pair
    // (one activation format each: falls back), and batches on both sides
    // of the GEMM threshold.
    let pool = ThreadPool::new(2);
    let mut rng = Rng(11);
    let mut scratch = MatmulScratch::default();
    let cols = 512;
    let mut sets: Vec<Vec<(GgmlType, usize)>> = simd_data::types()
        .into_iter()
        .map(|ty| vec![(ty, 64), (ty, 19), (ty, 130)])
        .collect();
    sets.push(vec![(GgmlType::Q4_1, 40), (GgmlType::Q6_K, 33)]);
    for set in sets {
        let data: Vec<Vec<u8>> = set
            .iter()
            .map(|&(ty, rows)| random_matrix(&mut rng, ty, rows, cols))
            .collect();
        let ws: Vec<QMatrix> = set
            .iter()
            .zip(&data)
            .map(|(&(ty, rows), d)| QMatrix::new(ty, d, rows, cols).expect("valid matrix"))
            .collect();
        for n in [1, 2, 3, 4, 9] {
            let x = rng.floats(n * cols, 1.0);
            let mut fused: Vec<Vec<f32>> = ws.iter().map(|w| vec![0f32; n * w.rows]).collect();
            {
                let wr: Vec<&QMatrix> = ws.iter().collect();
                let mut ys: Vec<&mut [f32]> = fused.iter_mut().map(Vec::as_mut_slice).collect();
                matmul_many(&pool, &wr, &x, n, &mut ys, &mut scratch);
            }
            for (w, got) in ws.iter().zip(&fused) {
                let mut want = vec![0f32; n * w.rows];
                matmul(&pool, w, &x, n, &mut want, &mut scratch);
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{} {}x{} n={n}", w.ty, w.rows, w.cols);
            }
        }
    }
}
