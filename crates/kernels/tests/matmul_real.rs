//! matmul on real model tensors against its scalar twin. Needs the catalog
//! models: set LLMOS_TEST_MODELS to the directory holding the `.gguf` files
//! (as for the gguf and text tests); without it the test only notes the skip.

mod simd_data;

use llmos_gguf::GgufFile;
use llmos_kernels::matmul::{matmul, matmul_scalar, MatmulScratch, QMatrix};
use llmos_kernels::pool::ThreadPool;
use llmos_kernels::{quant, GgmlType};
use simd_data::{decode, row_bytes, Rng};

/// Rows of each tensor to check (the scalar twin is slow).
const MAX_ROWS: usize = 256;
const TOKENS: usize = 6;

#[test]
fn matmul_matches_scalar_on_real_tensors() {
    let Some(dir) = std::env::var_os("LLMOS_TEST_MODELS") else {
        eprintln!("note: LLMOS_TEST_MODELS is not set; skipping real-tensor matmul tests");
        return;
    };
    let mut models: Vec<_> = std::fs::read_dir(&dir)
        .expect("LLMOS_TEST_MODELS is a readable directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    models.sort();
    let pool = ThreadPool::new(2);
    let mut scratch = MatmulScratch::default();
    let mut rng = Rng(2024);
    let mut checked = 0;
    for path in models {
        let file = GgufFile::open(&path).expect("model opens");
        let mut seen: Vec<GgmlType> = Vec::new();
        for t in file.tensors() {
            // The first 2-D tensor of each supported type in the file.
            if t.dims.len() != 2 || !quant::is_supported(t.ty) || seen.contains(&t.ty) {
                continue;
            }
            seen.push(t.ty);
            let (cols, rows) = (t.dims[0] as usize, (t.dims[1] as usize).min(MAX_ROWS));
            let data = &file.tensor_data(t)[..rows * row_bytes(t.ty, cols)];
            let w = QMatrix::new(t.ty, data, rows, cols).expect("valid matrix");
            let x = rng.floats(TOKENS * cols, 1.0);
            let (mut y, mut y_ref) = (vec![0f32; TOKENS * rows], vec![0f32; TOKENS * rows]);
            matmul(&pool, &w, &x, TOKENS, &mut y, &mut scratch);
            matmul_scalar(&w, &x, TOKENS, &mut y_ref);

            // Tolerance per output: 1e-5 of Σ|w_i·a_i| over its dot.
            let wf = decode(t.ty, data, rows * cols);
            let at = quant::vec_dot_type(t.ty);
            for tok in 0..TOKENS {
                let mut q = vec![0u8; row_bytes(at, cols)];
                quant::quantize_row(at, &x[tok * cols..(tok + 1) * cols], &mut q)
                    .expect("quantize");
                let af = decode(at, &q, cols);
                for r in 0..rows {
                    let scale: f32 = wf[r * cols..(r + 1) * cols]
                        .iter()
                        .zip(&af)
                        .map(|(a, b)| (a * b).abs())
                        .sum();
                    let (got, want) = (y[tok * rows + r], y_ref[tok * rows + r]);
                    assert!(
                        (got - want).abs() <= 1e-5 * scale + 1e-30,
                        "{} {} ({}): token {tok} row {r}: {got} vs scalar {want}",
                        path.display(),
                        t.name,
                        t.ty
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no supported 2-D tensors found");
    eprintln!("checked {checked} real tensors");
}
