//! SIMD dots on weight rows that did not come from our own generator: real
//! model rows and gguf-py's random blocks (random payload bits, f16 scales
//! from 1e-8 to 30 of either sign) from `tests/fixtures/quant/` (see the
//! README there for their provenance), against the scalar twin.

mod simd_data;

use llmos_kernels::simd::{self, SimdLevel};
use llmos_kernels::{quant, GgmlType};
use simd_data::{abs_terms, act_row, Rng};
use std::path::Path;

/// (type, name, weight row bytes, elements) of the dequantization records
/// (kind 0) of a `.lqfx` fixture; format as in `quant_fixtures.rs`.
fn weight_rows(file: &str) -> Vec<(GgmlType, String, Vec<u8>, usize)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/quant")
        .join(file);
    let b = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let u32_at = |pos: usize| u32::from_le_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        assert_eq!(&b[pos..pos + 4], b"LQFX", "{file}: bad magic at {pos}");
        let (kind, id) = (u32_at(pos + 8), u32_at(pos + 12));
        let (n, n_bytes, name_len) = (
            u32_at(pos + 16) as usize,
            u32_at(pos + 20) as usize,
            u32_at(pos + 24) as usize,
        );
        pos += 28;
        let name = String::from_utf8_lossy(&b[pos..pos + name_len]).into_owned();
        pos += name_len;
        let bytes = b[pos..pos + n_bytes].to_vec();
        pos += n_bytes + 4 * n;
        let ty = GgmlType::from_id(id).unwrap_or_else(|| panic!("{file}: type id {id}"));
        if kind == 0 && quant::is_supported(ty) {
            out.push((ty, name, bytes, n));
        }
    }
    out
}

fn check_rows(file: &str) -> usize {
    let mut rng = Rng(0xf1c5);
    let mut checked = 0;
    for (ty, name, w, n) in weight_rows(file) {
        for _ in 0..4 {
            let a = act_row(&mut rng, ty, n);
            let want = quant::vec_dot_scalar(ty, &w, &a, n);
            let scale = abs_terms(ty, &w, &a, n);
            if !want.is_finite() || !scale.is_finite() {
                continue; // random f32 bit patterns can overflow any sum
            }
            let tol = 1e-5 * scale + 1e-30;
            for level in SimdLevel::available() {
                let got = simd::vec_dot_at(level, ty, &w, &a, n).expect("level available");
                assert!(
                    (got - want).abs() <= tol,
                    "{name}: {ty} {}: {got} vs scalar {want} (tol {tol})",
                    level.name()
                );
                if ty.block_size() == 256 {
                    assert_eq!(got.to_bits(), want.to_bits(), "{name}: {ty} not bit-exact");
                }
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn simd_dots_on_real_model_rows() {
    assert!(check_rows("models.lqfx") >= 40);
}

#[test]
fn simd_dots_on_gguf_py_random_blocks() {
    assert!(check_rows("random.lqfx") >= 40);
}
