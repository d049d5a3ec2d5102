//! Safe parallel helpers over [`ThreadPool`] for callers outside this crate
//! (the model crate has no `unsafe`): hand out disjoint mutable chunks of one
//! buffer to pool tasks.

use crate::pool::ThreadPool;

/// A raw pointer that may cross threads; only used to rebuild disjoint slices.
struct SendPtr<T>(*mut T);
// Manual impls: the derives would demand `T: Copy`.
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
// SAFETY: the pointer is only used to rebuild slices that no two tasks share
// (see `for_each_chunk_mut`), and `T: Send` lets the elements move threads.
unsafe impl<T: Send> Send for SendPtr<T> {}
unsafe impl<T: Send> Sync for SendPtr<T> {}

/// Calls `f(i, chunk_i)` for every `chunk_len`-sized chunk of `data` (the last
/// may be shorter) across the pool, like `data.chunks_mut(chunk_len)` in
/// parallel. `chunk_len == 0` does nothing.
pub fn for_each_chunk_mut<T, F>(pool: &ThreadPool, data: &mut [T], chunk_len: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    if chunk_len == 0 || data.is_empty() {
        return;
    }
    let len = data.len();
    let n_chunks = len.div_ceil(chunk_len);
    let base = SendPtr(data.as_mut_ptr());
    pool.run(n_chunks, |i| {
        let start = i * chunk_len;
        let end = (start + chunk_len).min(len);
        let p = base;
        // SAFETY: `i` ranges over 0..n_chunks, each exactly once (the pool's
        // contract), so [start, end) ranges are disjoint and inside `data`,
        // which stays mutably borrowed by this function until `run` returns.
        let chunk = unsafe { std::slice::from_raw_parts_mut(p.0.add(start), end - start) };
        f(i, chunk);
    });
}

/// Like [`for_each_chunk_mut`] over two buffers at once: task `i` gets chunk
/// `i` of `a` (length `a_chunk`) and chunk `i` of `b` (length `b_chunk`), e.g.
/// an output slice and its private scratch.
///
/// # Panics
/// If `b` is too short to give every chunk of `a` a `b_chunk` slice.
pub fn for_each_chunk_pair_mut<A, B, F>(
    pool: &ThreadPool,
    a: &mut [A],
    a_chunk: usize,
    b: &mut [B],
    b_chunk: usize,
    f: F,
) where
    A: Send,
    B: Send,
    F: Fn(usize, &mut [A], &mut [B]) + Sync,
{
    if a_chunk == 0 || a.is_empty() {
        return;
    }
    let (a_len, n_chunks) = (a.len(), a.len().div_ceil(a_chunk));
    assert!(
        b.len() >= n_chunks * b_chunk,
        "scratch of {} for {n_chunks} chunks of {b_chunk}",
        b.len()
    );
    let (pa, pb) = (SendPtr(a.as_mut_ptr()), SendPtr(b.as_mut_ptr()));
    pool.run(n_chunks, |i| {
        let start = i * a_chunk;
        let end = (start + a_chunk).min(a_len);
        let (pa, pb) = (pa, pb);
        // SAFETY: as in `for_each_chunk_mut`: each i is visited once, so the
        // a-ranges [start, end) and b-ranges [i*b_chunk, (i+1)*b_chunk) are
        // disjoint and in bounds (checked above), and both buffers stay
        // mutably borrowed until `run` returns.
        let (ca, cb) = unsafe {
            (
                std::slice::from_raw_parts_mut(pa.0.add(start), end - start),
                std::slice::from_raw_parts_mut(pb.0.add(i * b_chunk), b_chunk),
            )
        };
        f(i, ca, cb);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_visited_once() {
        let pool = ThreadPool::new(2);
        let mut v = vec![0u32; 1003];
        for_each_chunk_mut(&pool, &mut v, 10, |i, c| {
            for x in c.iter_mut() {
                *x += i as u32 + 1;
            }
        });
        for (j, x) in v.iter().enumerate() {
            assert_eq!(*x, (j / 10) as u32 + 1);
        }
    }

    #[test]
    fn pairs_get_matching_chunks() {
        let pool = ThreadPool::new(2);
        let mut a = vec![0usize; 25];
        let mut b = vec![0usize; 3 * 4];
        for_each_chunk_pair_mut(&pool, &mut a, 10, &mut b, 4, |i, ca, cb| {
            cb.iter_mut().for_each(|x| *x = i);
            ca.iter_mut().for_each(|x| *x = cb[0] + 1);
        });
        assert_eq!(&a[..10], &[1; 10]);
        assert_eq!(&a[20..], &[3; 5]);
        assert_eq!(b, vec![0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    }
}
