//! `llmos info`: metadata and tensor table of a GGUF.

use anyhow::Result;
use llmos_gguf::{GgufFile, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn print(path: &Path, all: bool) -> Result<ExitCode> {
    let f = GgufFile::open(path)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "file: {}", path.display())?;
    writeln!(
        out,
        "GGUF version {}, {} metadata keys, {} tensors, {} bytes",
        f.version(),
        f.metadata().len(),
        f.tensors().len(),
        f.file_size()
    )?;
    writeln!(out, "\nmetadata:")?;
    for (k, v) in f.metadata() {
        let shown = match v {
            Value::Array(a) if all => {
                format!("{:?}", a.iter().map(|x| x.to_string()).collect::<Vec<_>>())
            }
            Value::String(s) if !all && s.len() > 120 => {
                let cut = s.char_indices().nth(100).map_or(s.len(), |(i, _)| i);
                format!("{:?}... ({} bytes)", &s[..cut], s.len())
            }
            _ => v.to_string(),
        };
        writeln!(out, "  {k:<48} {shown}")?;
    }
    let mut by_type: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    let mut params = 0u64;
    for t in f.tensors() {
        let e = by_type.entry(t.ty.name()).or_default();
        e.0 += 1;
        e.1 += t.n_bytes;
        params += t.n_elements();
    }
    writeln!(out, "\ntensors: {} parameters", params)?;
    for (ty, (n, bytes)) in &by_type {
        writeln!(
            out,
            "  {ty:<8} {n:>5} tensors {:>12}",
            crate::human_bytes(*bytes)
        )?;
    }
    writeln!(out)?;
    let limit = if all { usize::MAX } else { 40 };
    writeln!(
        out,
        "  {:<40} {:<8} {:<20} {:>12}",
        "name", "type", "shape", "bytes"
    )?;
    for t in f.tensors().iter().take(limit) {
        let shape = t
            .dims
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" x ");
        writeln!(
            out,
            "  {:<40} {:<8} {:<20} {:>12}",
            t.name,
            t.ty.name(),
            shape,
            t.n_bytes
        )?;
    }
    if f.tensors().len() > limit {
        writeln!(out, "  ... {} more (use --all)", f.tensors().len() - limit)?;
    }
    Ok(ExitCode::SUCCESS)
}
