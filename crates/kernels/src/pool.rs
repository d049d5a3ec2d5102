//! A persistent thread pool for the token loop.
//!
//! Why not rayon or `std::thread::scope`: a forward pass dispatches a few
//! hundred parallel ops per token, many of them 10-100 µs long, so a dispatch
//! must cost about a microsecond. Workers are created once; after each job they
//! spin on an epoch counter for [`SPIN`] and then park on a condvar, so
//! back-to-back ops find them awake while an idle engine burns no CPU.
//!
//! Protocol (one job at a time, serialized by `dispatch`):
//! 1. the caller writes `job`, resets the counters and publishes
//!    `state = epoch << 1 | OPEN`;
//! 2. a worker that sees a new epoch registers in `in_flight`, re-reads
//!    `state` and, only if the job is still open, claims tasks from `next`;
//! 3. the caller claims tasks too, waits until `done == n_tasks`, clears the
//!    open bit and waits for `in_flight == 0`. Only then can `f` (borrowed
//!    from the caller's stack) go out of scope.
//!
//! ```
//! use llmos_kernels::pool::ThreadPool;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! let pool = ThreadPool::new(2);
//! let sum = AtomicUsize::new(0);
//! pool.run(100, |i| {
//!     sum.fetch_add(i, Ordering::Relaxed);
//! });
//! assert_eq!(sum.into_inner(), 4950);
//! ```

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long an idle worker spins before parking. Long enough to bridge the
/// serial gaps between ops in the token loop (norms, sampling), short enough
/// that an idle engine sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// Low bit of `state`: the published job still accepts workers.
const OPEN: u64 = 1;

/// The job being run: a type-erased `&F` and the trampoline that calls it.
#[derive(Clone, Copy)]
struct Job {
    data: *const (),
    call: unsafe fn(*const (), usize),
    n_tasks: usize,
}

/// Calls the `F` behind `data` on task `i`.
///
/// # Safety
/// `data` must point to a live `F`, shared with other threads only if `F: Sync`.
unsafe fn call_job<F: Fn(usize) + Sync>(data: *const (), i: usize) {
    // SAFETY: the caller guarantees `data` came from `&F` that is still alive.
    let f = unsafe { &*data.cast::<F>() };
    f(i);
}

fn noop_job(_: *const (), _: usize) {}

struct Shared {
    /// `epoch << 1 | OPEN`; written only by the dispatching caller.
    state: AtomicU64,
    /// Valid while `state` is open; see the module protocol.
    job: UnsafeCell<Job>,
    /// Next task index to claim.
    next: AtomicUsize,
    /// Tasks finished (run, or skipped after a panic).
    done: AtomicUsize,
    /// Workers that may be reading `job` or running its tasks.
    in_flight: AtomicUsize,
    /// A task panicked: skip the rest, re-raise the first payload in the caller.
    panicked: AtomicBool,
    payload: Mutex<Option<Box<dyn Any + Send>>>,
    /// Parking: workers that gave up spinning wait on `wake` under `lock`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
}

// SAFETY: every field but `job` is Sync. `job` is written only by the
// dispatching caller (holding `ThreadPool::dispatch`) while no worker is in
// flight with the job open, and read by workers only after they registered in
// `in_flight` and then observed the open state published after the write
// (SeqCst store/load orders the write before the read). The pointer inside
// refers to an `F: Sync`, so calling it from several threads is allowed.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointer is only dereferenced under the protocol.
unsafe impl Send for Shared {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held, and the data stays valid anyway.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Claims and runs tasks until none are left. Never unwinds: a panic in a
    /// task is stored and re-raised by the caller after all threads are out.
    fn run_tasks(&self, job: Job) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= job.n_tasks {
                return;
            }
            if !self.panicked.load(Ordering::Relaxed) {
                // SAFETY: `job.data` is the caller's `&F`, alive until the
                // caller has seen `done == n_tasks` and `in_flight == 0`.
                let r =
                    panic::catch_unwind(AssertUnwindSafe(|| unsafe { (job.call)(job.data, i) }));
                if let Err(p) = r {
                    let mut slot = lock(&self.payload);
                    if slot.is_none() {
                        *slot = Some(p);
                    }
                    self.panicked.store(true, Ordering::Relaxed);
                }
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }

    /// Blocks until `state` carries an epoch other than `seen`.
    fn wait_new_epoch(&self, seen: u64) {
        let start = Instant::now();
        let mut spins = 0u32;
        while self.state.load(Ordering::Acquire) >> 1 == seen {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(128) && start.elapsed() > SPIN {
                let mut g = lock(&self.lock);
                // SeqCst pairs with the caller's store of `state` followed by
                // its load of `sleepers`: either it sees us, or we see it.
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                while self.state.load(Ordering::SeqCst) >> 1 == seen {
                    g = self.wake.wait(g).unwrap_or_else(PoisonError::into_inner);
                }
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            std::hint::spin_loop();
        }
    }

    fn worker(&self) {
        let mut seen = 0u64;
        loop {
            self.wait_new_epoch(seen);
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let s = self.state.load(Ordering::SeqCst);
            if s & OPEN != 0 {
                // SAFETY: we are registered in `in_flight` and saw the job
                // open, so the caller wrote `job` before publishing and will
                // not touch it again until we leave (see `Sync` above).
                let job = unsafe { *self.job.get() };
                self.run_tasks(job);
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            seen = s >> 1;
        }
    }

    /// Spins, then yields, until `cond` holds.
    fn wait_until(cond: impl Fn() -> bool) {
        let mut spins = 0u32;
        while !cond() {
            if spins < 4096 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
    }
}

/// Persistent worker threads; `run` splits a job across them and the caller.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serializes callers; a nested or concurrent `run` runs inline instead.
    dispatch: Mutex<()>,
}

impl ThreadPool {
    /// Starts `n_threads - 1` workers (`n_threads` counts the calling thread;
    /// 0 and 1 both mean "run inline"). If the OS refuses a thread the pool
    /// runs with fewer; [`ThreadPool::n_threads`] reports the real count.
    pub fn new(n_threads: usize) -> ThreadPool {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: UnsafeCell::new(Job {
                data: std::ptr::null(),
                call: noop_job,
                n_tasks: 0,
            }),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            payload: Mutex::new(None),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
        });
        let mut workers = Vec::new();
        for k in 1..n_threads.max(1) {
            let sh = Arc::clone(&shared);
            let spawned = thread::Builder::new()
                .name(format!("llmos-pool-{k}"))
                .spawn(move || sh.worker());
            match spawned {
                Ok(h) => workers.push(h),
                Err(_) => break,
            }
        }
        ThreadPool {
            shared,
            workers,
            dispatch: Mutex::new(()),
        }
    }

    /// Threads that run tasks, the caller included.
    pub fn n_threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(i)` for every `i` in `0..n_tasks` across the pool (the caller
    /// participates) and returns when all are done. Tasks are claimed in
    /// increasing order but may run on any thread.
    ///
    /// A `run` nested inside `f`, or concurrent with another `run` on the same
    /// pool, executes its tasks inline on the calling thread.
    ///
    /// # Panics
    /// If `f` panics, the remaining tasks are skipped and the first panic is
    /// re-raised here after every thread has let go of `f`.
    pub fn run<F: Fn(usize) + Sync>(&self, n_tasks: usize, f: F) {
        if n_tasks == 0 {
            return;
        }
        if self.workers.is_empty() || n_tasks == 1 {
            (0..n_tasks).for_each(&f);
            return;
        }
        let _guard = match self.dispatch.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                (0..n_tasks).for_each(&f);
                return;
            }
        };
        let sh = &*self.shared;
        let job = Job {
            data: (&f as *const F).cast::<()>(),
            call: call_job::<F>,
            n_tasks,
        };
        sh.next.store(0, Ordering::Relaxed);
        sh.done.store(0, Ordering::Relaxed);
        sh.panicked.store(false, Ordering::Relaxed);
        // SAFETY: we hold `dispatch`, the previous job is closed and
        // `in_flight` was 0 when it ended, so no worker reads `job` now; a
        // worker that registers from here on reads it only after the store
        // of `state` below.
        unsafe { *sh.job.get() = job };
        let epoch = (sh.state.load(Ordering::Relaxed) >> 1).wrapping_add(1);
        sh.state.store(epoch << 1 | OPEN, Ordering::SeqCst);
        if sh.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = lock(&sh.lock);
            sh.wake.notify_all();
        }

        sh.run_tasks(job);
        Shared::wait_until(|| sh.done.load(Ordering::Acquire) >= n_tasks);
        sh.state.store(epoch << 1, Ordering::SeqCst);
        Shared::wait_until(|| sh.in_flight.load(Ordering::SeqCst) == 0);

        if sh.panicked.load(Ordering::Relaxed) {
            if let Some(p) = lock(&sh.payload).take() {
                panic::resume_unwind(p);
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        let sh = &*self.shared;
        sh.shutdown.store(true, Ordering::SeqCst);
        let epoch = (sh.state.load(Ordering::Relaxed) >> 1).wrapping_add(1);
        sh.state.store(epoch << 1, Ordering::SeqCst);
        {
            let _g = lock(&sh.lock);
            sh.wake.notify_all();
        }
        for h in self.workers.drain(..) {
            // A worker never unwinds (tasks run under catch_unwind).
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("n_threads", &self.n_threads())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_task_runs_exactly_once() {
        for threads in [1, 2, 3, 5] {
            let pool = ThreadPool::new(threads);
            assert_eq!(pool.n_threads(), threads);
            for n in [0, 1, 2, 7, 64, 1000] {
                let hits: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
                pool.run(n, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn many_back_to_back_jobs() {
        let pool = ThreadPool::new(3);
        let total = AtomicUsize::new(0);
        for _ in 0..20_000 {
            pool.run(4, |i| {
                total.fetch_add(i + 1, Ordering::Relaxed);
            });
        }
        assert_eq!(total.into_inner(), 20_000 * 10);
    }

    #[test]
    fn jobs_after_workers_parked() {
        let pool = ThreadPool::new(2);
        for _ in 0..3 {
            thread::sleep(SPIN * 5);
            let total = AtomicUsize::new(0);
            pool.run(16, |i| {
                total.fetch_add(i, Ordering::Relaxed);
            });
            assert_eq!(total.into_inner(), 120);
        }
    }

    #[test]
    fn panic_propagates_and_pool_survives() {
        let pool = ThreadPool::new(3);
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.run(50, |i| {
                if i == 17 {
                    panic!("task 17 failed");
                }
            })
        }));
        let msg = r
            .err()
            .and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()));
        assert_eq!(msg.as_deref(), Some("task 17 failed"));
        let total = AtomicUsize::new(0);
        pool.run(10, |_| {
            total.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(total.into_inner(), 10);
    }

    #[test]
    fn nested_run_executes_inline() {
        let pool = ThreadPool::new(2);
        let total = AtomicUsize::new(0);
        pool.run(4, |_| {
            pool.run(3, |_| {
                total.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(total.into_inner(), 12);
    }

    #[test]
    fn shared_between_threads() {
        let pool = Arc::new(ThreadPool::new(2));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let pool = Arc::clone(&pool);
                thread::spawn(move || {
                    let total = AtomicUsize::new(0);
                    for _ in 0..500 {
                        pool.run(8, |_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                    total.into_inner()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().ok(), Some(4000));
        }
    }
}
