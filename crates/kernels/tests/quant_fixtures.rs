//! Dequantization and quantization against gguf-py, bit for bit.
//!
//! The fixtures under `tests/fixtures/quant/` come from
//! `tools/fixtures/quant/make_quant_fixtures.py` (see the README there for
//! the gguf-py version, seed and command). gguf-py's numpy code is an
//! implementation of ggml's formats independent of ours.

use std::path::{Path, PathBuf};

use llmos_kernels::quant::{self, QuantError};
use llmos_kernels::GgmlType;

/// One record of a `.lqfx` fixture file.
struct Record {
    kind: u32,
    ty: GgmlType,
    name: String,
    bytes: Vec<u8>,
    values: Vec<f32>,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quant")
}

fn read_u32(b: &[u8], pos: &mut usize) -> u32 {
    let v = u32::from_le_bytes([b[*pos], b[*pos + 1], b[*pos + 2], b[*pos + 3]]);
    *pos += 4;
    v
}

fn read_records(file: &str) -> Vec<Record> {
    let path = fixture_dir().join(file);
    let b = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < b.len() {
        assert_eq!(&b[pos..pos + 4], b"LQFX", "{file}: bad magic at {pos}");
        pos += 4;
        assert_eq!(read_u32(&b, &mut pos), 1, "{file}: version");
        let kind = read_u32(&b, &mut pos);
        let id = read_u32(&b, &mut pos);
        let ty = GgmlType::from_id(id).unwrap_or_else(|| panic!("{file}: type id {id}"));
        let n = read_u32(&b, &mut pos) as usize;
        let n_bytes = read_u32(&b, &mut pos) as usize;
        let name_len = read_u32(&b, &mut pos) as usize;
        let name = String::from_utf8_lossy(&b[pos..pos + name_len]).into_owned();
        pos += name_len;
        let bytes = b[pos..pos + n_bytes].to_vec();
        pos += n_bytes;
        let values = b[pos..pos + 4 * n]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        pos += 4 * n;
        out.push(Record {
            kind,
            ty,
            name,
            bytes,
            values,
        });
    }
    out
}

/// Bit-exact comparison; NaN matches NaN only where the reference has one.
fn assert_bits_eq(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same = g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan());
        assert!(
            same,
            "{name}: element {i}: got {g:e} ({:#010x}), gguf-py {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

fn check_dequant_records(file: &str) -> Vec<GgmlType> {
    let mut seen = Vec::new();
    for r in read_records(file) {
        assert_eq!(r.kind, 0, "{}", r.name);
        let mut y = vec![f32::NAN; r.values.len()];
        quant::dequantize_row(r.ty, &r.bytes, &mut y).unwrap_or_else(|e| panic!("{}: {e}", r.name));
        assert_bits_eq(&r.name, &y, &r.values);
        seen.push(r.ty);
    }
    seen
}

#[test]
fn random_blocks_of_every_format_dequantize_like_gguf_py() {
    let seen = check_dequant_records("random.lqfx");
    // The fixture covers every supported weight type.
    for ty in quant::supported_types() {
        assert!(seen.contains(ty), "random.lqfx has no {ty} record");
    }
}

#[test]
fn real_model_rows_dequantize_like_gguf_py() {
    let seen = check_dequant_records("models.lqfx");
    for ty in [
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q5_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        assert!(seen.contains(&ty), "models.lqfx has no {ty} row");
    }
}

#[test]
fn reference_quantizers_match_gguf_py() {
    let records = read_records("quantize.lqfx");
    assert!(records.len() >= 7);
    for r in records {
        assert_eq!(r.kind, 1, "{}", r.name);
        let mut q = vec![0u8; r.bytes.len()];
        quant::quantize_row(r.ty, &r.values, &mut q).unwrap_or_else(|e| panic!("{}: {e}", r.name));
        if let Some(i) = q.iter().zip(&r.bytes).position(|(a, b)| a != b) {
            let bs = r.ty.type_size();
            panic!(
                "{}: byte {i} (block {}, offset {}): got {:#04x}, gguf-py {:#04x}",
                r.name,
                i / bs,
                i % bs,
                q[i],
                r.bytes[i]
            );
        }
    }
}

#[test]
fn dequantize_checks_sizes() {
    let mut y = vec![0f32; 256];
    assert_eq!(
        quant::dequantize_row(GgmlType::Q4_K, &[0; 143], &mut y),
        Err(QuantError::ByteLen {
            ty: GgmlType::Q4_K,
            n: 256,
            expected: 144,
            got: 143
        })
    );
    let mut y = vec![0f32; 100];
    let e = quant::dequantize_row(GgmlType::Q4_K, &[0; 144], &mut y).unwrap_err();
    assert_eq!(
        e.to_string(),
        "q4_K row of 100 elements: not a multiple of the block size 256"
    );
    let e = quant::dequantize_row(GgmlType::IQ4_NL, &[0; 18], &mut [0f32; 32]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dequantize_row: type iq4_nl is not supported"
    );
}

/// `sum_i bits(y[i]) * (2 i + 1) mod 2^64`, the hash in `tensors.txt`.
fn bits_hash(y: &[f32]) -> u64 {
    y.iter().enumerate().fold(0u64, |h, (i, v)| {
        h.wrapping_add(u64::from(v.to_bits()).wrapping_mul(2 * i as u64 + 1))
    })
}

/// Whole tensors of the test models, when `LLMOS_TEST_MODELS` names their
/// directory: dequantized row by row, hashed, compared with gguf-py.
#[test]
fn whole_model_tensors_dequantize_like_gguf_py() {
    let Some(dir) = std::env::var_os("LLMOS_TEST_MODELS") else {
        eprintln!("LLMOS_TEST_MODELS not set: skipping whole-tensor check");
        return;
    };
    let list = std::fs::read_to_string(fixture_dir().join("tensors.txt")).unwrap();
    let mut checked = 0;
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (model, name, n, want) = (f[0], f[1], f[3].parse::<usize>().unwrap(), f[4]);
        let path = Path::new(&dir).join(model);
        if !path.exists() {
            eprintln!("{}: missing, skipped", path.display());
            continue;
        }
        let file = llmos_gguf::GgufFile::open(&path).unwrap();
        let t = file
            .tensor(name)
            .unwrap_or_else(|| panic!("{model}: no {name}"));
        assert_eq!(
            t.ty.name().to_lowercase(),
            f[2].to_lowercase(),
            "{model} {name}"
        );
        let row = t.dims[0] as usize;
        let data = file.tensor_data(t);
        let row_bytes = t.ty.bytes_for(row as u64).unwrap() as usize;
        let mut y = vec![0f32; n];
        for (src, dst) in data.chunks_exact(row_bytes).zip(y.chunks_exact_mut(row)) {
            quant::dequantize_row(t.ty, src, dst).unwrap();
        }
        assert_eq!(format!("{:016x}", bits_hash(&y)), want, "{model} {name}");
        checked += 1;
    }
    assert!(
        checked > 0,
        "no model tensors found under {}",
        Path::new(&dir).display()
    );
}
