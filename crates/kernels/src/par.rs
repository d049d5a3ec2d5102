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
}
