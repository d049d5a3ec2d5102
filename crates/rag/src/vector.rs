//! The `VectorStore` seam and the embedded store for small indexes: exact
//! search over the vectors held in the index's SQLite file.
//!
//! Exact (brute-force) search is one pass of dot products over a contiguous
//! `(n, dim)` f32 matrix; the vectors are unit length, so the dot is the
//! cosine. At 100k MiniLM chunks that is 38M multiply-adds, a few ms, but
//! both the scan and the open (every vector read from SQLite into memory)
//! grow linearly with the index: from [`crate::HNSW_MIN_VECTORS`] on, the
//! embedded store is an approximate HNSW graph instead ([`crate::hnsw`]),
//! where the crossover is measured in BENCHMARKS.md.

use crate::RagError;

/// Where chunk vectors live and how the nearest ones are found. The chunk
/// ids are the index's (SQLite `chunks.id`).
pub trait VectorStore: Send + Sync {
    /// Adds or replaces vectors.
    ///
    /// # Errors
    /// Storage failures; a vector of the wrong width.
    fn upsert(&mut self, items: &[(i64, &[f32])]) -> Result<(), RagError>;
    /// Removes vectors (missing ids are ignored).
    ///
    /// # Errors
    /// Storage failures.
    fn delete(&mut self, ids: &[i64]) -> Result<(), RagError>;
    /// The `k` ids with the highest cosine to `query`, best first.
    ///
    /// # Errors
    /// Storage failures; a query of the wrong width.
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(i64, f32)>, RagError>;
    /// How many vectors are stored.
    ///
    /// # Errors
    /// Storage failures.
    fn len(&self) -> Result<usize, RagError>;
    /// Every stored id (any order), for reconciling with the index.
    ///
    /// # Errors
    /// Storage failures.
    fn ids(&self) -> Result<Vec<i64>, RagError>;
    /// What and where it is, for messages.
    fn describe(&self) -> String;
}

/// Below this many vectors one thread scans (a thread costs more than it saves).
const PARALLEL_SCAN_MIN: usize = 32_768;

/// Vectors in memory as one `(n, dim)` matrix (loaded from the index).
#[derive(Clone, Debug, Default)]
pub struct FlatIndex {
    dim: usize,
    ids: Vec<i64>,
    /// (n, dim)
    data: Vec<f32>,
    /// id → row, for scoring arbitrary chunks (hybrid hits from BM25)
    rows: std::collections::HashMap<i64, usize>,
}

impl FlatIndex {
    pub fn new(dim: usize) -> FlatIndex {
        FlatIndex {
            dim,
            ..Default::default()
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The stored vector of `id`.
    pub fn get(&self, id: i64) -> Option<&[f32]> {
        self.rows
            .get(&id)
            .map(|&r| &self.data[r * self.dim..(r + 1) * self.dim])
    }

    fn check(&self, v: &[f32]) -> Result<(), RagError> {
        if v.len() != self.dim {
            return Err(RagError::Dim {
                expected: self.dim,
                got: v.len(),
            });
        }
        Ok(())
    }
}

/// Dot product in 8 independent lanes (the shape LLVM turns into SIMD FMAs).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Top `k` of `(id, score)` pairs, best first (ties: lower id first).
pub(crate) fn top_k(mut v: Vec<(i64, f32)>, k: usize) -> Vec<(i64, f32)> {
    let cmp = |a: &(i64, f32), b: &(i64, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if v.len() > k && k > 0 {
        v.select_nth_unstable_by(k - 1, cmp);
        v.truncate(k);
    }
    v.sort_by(cmp);
    v.truncate(k);
    v
}

impl VectorStore for FlatIndex {
    fn upsert(&mut self, items: &[(i64, &[f32])]) -> Result<(), RagError> {
        for (id, v) in items {
            self.check(v)?;
            match self.rows.get(id) {
                Some(&r) => self.data[r * self.dim..(r + 1) * self.dim].copy_from_slice(v),
                None => {
                    self.rows.insert(*id, self.ids.len());
                    self.ids.push(*id);
                    self.data.extend_from_slice(v);
                }
            }
        }
        Ok(())
    }

    fn delete(&mut self, ids: &[i64]) -> Result<(), RagError> {
        for id in ids {
            if let Some(r) = self.rows.remove(id) {
                // swap-remove the row
                let last = self.ids.len() - 1;
                if r != last {
                    let (d, l) = (self.dim, self.ids[last]);
                    self.data.copy_within(last * d..(last + 1) * d, r * d);
                    self.ids[r] = l;
                    self.rows.insert(l, r);
                }
                self.ids.pop();
                self.data.truncate(last * self.dim);
            }
        }
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(i64, f32)>, RagError> {
        self.check(query)?;
        let d = self.dim.max(1);
        let scan = |ids: &[i64], data: &[f32]| -> Vec<(i64, f32)> {
            let scores: Vec<(i64, f32)> = ids
                .iter()
                .zip(data.chunks_exact(d))
                .map(|(&id, row)| (id, dot(query, row)))
                .collect();
            top_k(scores, k)
        };
        // Large indexes: one slice per core, each keeping its own top k,
        // merged at the end (same result as one pass: top_k breaks ties by id).
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        if self.ids.len() < PARALLEL_SCAN_MIN || threads < 2 {
            return Ok(scan(&self.ids, &self.data));
        }
        let per = self.ids.len().div_ceil(threads);
        let parts: Vec<Vec<(i64, f32)>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .ids
                .chunks(per)
                .zip(self.data.chunks(per * d))
                .map(|(ids, data)| s.spawn(move || scan(ids, data)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        Ok(top_k(parts.concat(), k))
    }

    fn len(&self) -> Result<usize, RagError> {
        Ok(self.ids.len())
    }

    fn ids(&self) -> Result<Vec<i64>, RagError> {
        Ok(self.ids.clone())
    }

    fn describe(&self) -> String {
        format!("embedded exact search over {} vectors", self.ids.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_index_finds_nearest_and_deletes() {
        let mut ix = FlatIndex::new(3);
        let (a, b, c) = ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0]);
        ix.upsert(&[(1, &a), (2, &b), (3, &c)]).expect("upsert");
        let hits = ix.search(&[1.0, 0.1, 0.0], 2).expect("search");
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 3]);
        ix.delete(&[1]).expect("delete");
        assert_eq!(ix.len().expect("len"), 2);
        assert_eq!(ix.get(3), Some(&c[..]));
        let hits = ix.search(&[1.0, 0.1, 0.0], 5).expect("search");
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [3, 2]);
        assert!(ix.search(&[1.0], 1).is_err());
    }

    #[test]
    fn parallel_scan_equals_one_pass() {
        let dim = 8;
        let n = PARALLEL_SCAN_MIN * 2 + 17;
        let mut ix = FlatIndex::new(dim);
        let mut s = 12345u64;
        let mut v = vec![0f32; dim];
        for id in 0..n as i64 {
            for x in v.iter_mut() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *x = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            ix.upsert(&[(id, &v)]).expect("upsert");
        }
        let q = [0.3, -0.2, 0.5, 0.1, 0.0, 0.7, -0.4, 0.2];
        let got = ix.search(&q, 25).expect("search");
        let all: Vec<(i64, f32)> = (0..n as i64)
            .map(|id| (id, dot(&q, ix.get(id).expect("row"))))
            .collect();
        assert_eq!(got, top_k(all, 25));
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }
}
