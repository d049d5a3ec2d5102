//! `y = x · Wᵀ` for a batch of activation rows against a quantized weight
//! matrix borrowed from the model file.
//!
//! Design, as ggml: the activations are quantized once per call to the
//! weight type's [`quant::vec_dot_type`], then every output element is one
//! dot product of a weight row with an activation row. Work is split into
//! blocks of output rows (features), one pool task each. With AVX-512 VNNI
//! the legacy formats, q4_K, q5_K and q6_K go through a register-tiled GEMM
//! (`simd::x86::gemm`: 16 rows × 8 tokens per inner loop, each 16-row tile
//! unpacked once per call into an L1 buffer); otherwise a task loops over
//! the tokens in tiles of [`TOKEN_TILE`], four tokens per weight-row pass
//! (`dot4`).
//!
//! Determinism: each output element is computed with a fixed operation
//! order that depends only on its weight row and its token (`dot4` lane k
//! equals `dot` on token k bit for bit; a GEMM lane does what a one-row,
//! one-token call does), so the result does not depend on the thread count,
//! the tiling or the batch size (tested at every level).
//!
//! ```
//! use llmos_kernels::matmul::{matmul, matmul_scalar, MatmulScratch, QMatrix};
//! use llmos_kernels::pool::ThreadPool;
//! use llmos_kernels::{quant, GgmlType};
//!
//! let (rows, cols, n) = (8, 64, 3);
//! let wf: Vec<f32> = (0..rows * cols).map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0).collect();
//! let mut data = vec![0u8; rows * 68]; // 2 q8_0 blocks per row
//! for (r, row) in data.chunks_mut(68).enumerate() {
//!     quant::quantize_row(GgmlType::Q8_0, &wf[r * cols..(r + 1) * cols], row)?;
//! }
//! let w = QMatrix::new(GgmlType::Q8_0, &data, rows, cols)?;
//! let x: Vec<f32> = (0..n * cols).map(|i| (i as f32 * 0.1).cos()).collect();
//! let (mut y, mut y_ref) = (vec![0f32; n * rows], vec![0f32; n * rows]);
//! matmul(&ThreadPool::new(2), &w, &x, n, &mut y, &mut MatmulScratch::default());
//! matmul_scalar(&w, &x, n, &mut y_ref);
//! assert!(y.iter().zip(&y_ref).all(|(a, b)| (a - b).abs() < 1e-4));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::pool::ThreadPool;
use crate::quant;
use crate::simd::{self, Kernel, SimdLevel};
use llmos_gguf::GgmlType;

/// Tokens per tile: a tile's quantized activations (16 × a few KiB) stay in
/// L1/L2 while a block of weight rows streams past.
const TOKEN_TILE: usize = 16;
/// Upper bound on the weight bytes of one row block, so that a block stays
/// in L2 while the token tiles loop over it.
const BLOCK_BYTES: usize = 256 * 1024;
/// Tasks per thread: enough slack to balance a busy 2-core machine.
const BLOCKS_PER_THREAD: usize = 4;

/// Errors from describing a weight matrix.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum MatmulError {
    /// No dot product exists for the weight type.
    #[error("matmul: weight type {ty} is not supported")]
    Unsupported { ty: GgmlType },
    /// A row does not split into whole blocks.
    #[error("matmul: {ty} matrix {rows}x{cols}: {cols} columns is not a multiple of the block size {block}")]
    NotBlockMultiple {
        ty: GgmlType,
        rows: usize,
        cols: usize,
        block: usize,
    },
    /// The data is not exactly `rows` rows.
    #[error("matmul: {ty} matrix {rows}x{cols} takes {expected} bytes, got {got}")]
    ByteLen {
        ty: GgmlType,
        rows: usize,
        cols: usize,
        expected: usize,
        got: usize,
    },
    /// The size does not fit in `usize`.
    #[error("matmul: {ty} matrix {rows}x{cols}: size overflows")]
    Overflow {
        ty: GgmlType,
        rows: usize,
        cols: usize,
    },
}

/// A weight matrix borrowed from the model file: `rows` rows (output
/// features) of `cols` elements (input features); row `r` is bytes
/// `[r * row_bytes, (r + 1) * row_bytes)`.
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'a> {
    pub ty: GgmlType,
    pub data: &'a [u8],
    pub rows: usize,
    pub cols: usize,
}

impl<'a> QMatrix<'a> {
    /// Describes `data` as a `rows × cols` matrix of type `ty`.
    ///
    /// # Errors
    /// If the type has no dot product, `cols` is not a whole number of
    /// blocks, or `data` is not exactly `rows` rows; the error names the type
    /// and the sizes.
    pub fn new(
        ty: GgmlType,
        data: &'a [u8],
        rows: usize,
        cols: usize,
    ) -> Result<Self, MatmulError> {
        let m = QMatrix {
            ty,
            data,
            rows,
            cols,
        };
        m.check()?;
        Ok(m)
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.cols / self.ty.block_size() * self.ty.type_size()
    }

    /// The bytes of row `r` (`r < rows`).
    fn row(&self, r: usize) -> &'a [u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }

    /// The checks of [`QMatrix::new`] (the fields are public, so `matmul`
    /// repeats them).
    fn check(&self) -> Result<(), MatmulError> {
        let (ty, rows, cols) = (self.ty, self.rows, self.cols);
        if !quant::is_supported(ty) {
            return Err(MatmulError::Unsupported { ty });
        }
        let block = ty.block_size();
        let at_block = quant::vec_dot_type(ty).block_size();
        if !cols.is_multiple_of(block) || !cols.is_multiple_of(at_block) {
            return Err(MatmulError::NotBlockMultiple {
                ty,
                rows,
                cols,
                block: block.max(at_block),
            });
        }
        let expected = (cols / block)
            .checked_mul(ty.type_size())
            .and_then(|rb| rb.checked_mul(rows))
            .ok_or(MatmulError::Overflow { ty, rows, cols })?;
        if self.data.len() != expected {
            return Err(MatmulError::ByteLen {
                ty,
                rows,
                cols,
                expected,
                got: self.data.len(),
            });
        }
        Ok(())
    }
}

/// Reusable buffers for [`matmul`]: the quantized activations. Grows on first
/// use (to the largest batch seen), then allocates nothing.
#[derive(Default, Debug)]
pub struct MatmulScratch {
    /// (n, activation row bytes)
    q: Vec<u8>,
    /// (n, blocks per row): per activation block the scale and offset
    /// correction the tiled GEMM needs (legacy weight types only).
    #[cfg(target_arch = "x86_64")]
    aux: Vec<simd::Aux>,
}

/// A pointer to `y` that pool tasks may share; each task writes only its own
/// elements.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);

impl OutPtr {
    /// A method (not the field) so closures capture the whole `Sync` wrapper.
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: tasks write disjoint elements (see `matmul`, `sgemm`), and f32 is Send.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

/// Same, for the GEMM's activation side data.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct AuxPtr(*mut simd::Aux);

#[cfg(target_arch = "x86_64")]
impl AuxPtr {
    /// A method (not the field) so closures capture the whole `Sync` wrapper.
    fn get(self) -> *mut simd::Aux {
        self.0
    }
}
// SAFETY: tasks write disjoint rows (see `quantize_activations`).
#[cfg(target_arch = "x86_64")]
unsafe impl Send for AuxPtr {}
// SAFETY: as above.
#[cfg(target_arch = "x86_64")]
unsafe impl Sync for AuxPtr {}

/// Same, for the quantized activation rows.
#[derive(Clone, Copy)]
struct BytesPtr(*mut u8);

impl BytesPtr {
    /// A method (not the field) so closures capture the whole `Sync` wrapper.
    fn get(self) -> *mut u8 {
        self.0
    }
}
// SAFETY: tasks write disjoint rows (see `quantize_activations`).
unsafe impl Send for BytesPtr {}
// SAFETY: as above.
unsafe impl Sync for BytesPtr {}

/// Panics with the check's message if the arguments do not describe a matmul.
fn check_args(w: &QMatrix, x: &[f32], n: usize, y: &[f32]) {
    if let Err(e) = w.check() {
        panic!("{e}");
    }
    let need_x = n.checked_mul(w.cols);
    let need_y = n.checked_mul(w.rows);
    assert!(
        need_x.is_some_and(|k| x.len() >= k),
        "matmul: x has {} floats, need {n} tokens x {} cols",
        x.len(),
        w.cols
    );
    assert!(
        need_y.is_some_and(|k| y.len() >= k),
        "matmul: y has {} floats, need {n} tokens x {} rows",
        y.len(),
        w.rows
    );
}

/// `y (n, rows) = x (n, cols) · Wᵀ`, all row-major f32; only the first
/// `n * cols` / `n * rows` floats of `x` / `y` are used.
///
/// Quantizes `x` once to [`quant::vec_dot_type`]`(w.ty)` into `scratch`, then
/// splits blocks of output rows across the pool. The result is identical for
/// any thread count and equals [`matmul_scalar`] up to float reassociation.
///
/// # Panics
/// If `w` fails [`QMatrix::new`]'s checks or `x` / `y` are too short.
pub fn matmul(
    pool: &ThreadPool,
    w: &QMatrix,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    scratch: &mut MatmulScratch,
) {
    matmul_level(simd::best_level(), pool, w, x, n, y, scratch);
}

/// [`matmul`] with the kernels of a given level (for tests and benchmarks);
/// returns false, computing nothing, if this CPU lacks the level.
///
/// # Panics
/// As [`matmul`].
pub fn matmul_at(
    level: SimdLevel,
    pool: &ThreadPool,
    w: &QMatrix,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    scratch: &mut MatmulScratch,
) -> bool {
    if !level.is_available() {
        return false;
    }
    matmul_level(level, pool, w, x, n, y, scratch);
    true
}

fn matmul_level(
    level: SimdLevel,
    pool: &ThreadPool,
    w: &QMatrix,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    scratch: &mut MatmulScratch,
) {
    check_args(w, x, n, y);
    if n == 0 || w.rows == 0 {
        return;
    }
    // Decode (a token or a few): the GEMM would unpack every 16-row tile
    // for one token, which costs more than the dots; the dots read the
    // packed rows straight from memory. Both give the same bits (tests:
    // matmul_n37_equals_37_single_token_calls_at_every_level).
    #[cfg(target_arch = "x86_64")]
    if n >= GEMM_MIN_TOKENS {
        if let Some(gemm) = simd::gemm_at(level, w.ty) {
            matmul_gemm(gemm, pool, w, x, n, y, scratch);
            return;
        }
    }
    let a_row = quantize_activations(pool, w, x, n, scratch, false);
    let q = &scratch.q[..n * a_row];
    let kernel = Kernel::at(level, w.ty).unwrap_or_else(|| Kernel::best(w.ty));
    let split = Split::new(w.rows, w.row_bytes(), n, pool.n_threads(), 1);
    let out = OutPtr(y.as_mut_ptr());
    pool.run(split.tasks(), |task| {
        // SAFETY: `y` holds n × rows floats (checked above) and stays
        // borrowed until `run` returns; tasks of one split are disjoint.
        unsafe { dot_task(&kernel, w, q, a_row, n, &split, task, out) }
    });
}

/// One task of the per-row dot path: its (row, token) block of `y = x · Wᵀ`.
///
/// # Safety
/// `out` points at `n × w.rows` writable floats that no one else reads or
/// writes during the call, except other tasks of the same `split`.
#[allow(clippy::too_many_arguments)]
unsafe fn dot_task(
    kernel: &Kernel,
    w: &QMatrix,
    q: &[u8],
    a_row: usize,
    n: usize,
    split: &Split,
    task: usize,
    out: OutPtr,
) {
    let (rows, cols) = (w.rows, w.cols);
    let (rs, ts) = split.task(task);
    for t0 in ts.step_by(TOKEN_TILE) {
        let t1 = (t0 + TOKEN_TILE).min(split.token_end(task));
        for r in rs.clone() {
            let wr = w.row(r);
            let mut t = t0;
            while t + 4 <= t1 {
                let v = kernel.dot4(wr, &q[t * a_row..(t + 4) * a_row], a_row, cols);
                for (k, v) in v.into_iter().enumerate() {
                    debug_assert!(t + k < n);
                    // SAFETY: (t + k, r) with t + k < n, r < rows lies in
                    // the caller's n × rows floats; the (row, token) ranges
                    // of the tasks are disjoint, so no other task writes it.
                    unsafe { *out.get().add((t + k) * rows + r) = v };
                }
                t += 4;
            }
            for t in t..t1 {
                let v = kernel.dot(wr, &q[t * a_row..(t + 1) * a_row], cols);
                // SAFETY: as above.
                unsafe { *out.get().add(t * rows + r) = v };
            }
        }
    }
}

/// Several products of the same `x`, `ys[i] (n, ws[i].rows) = x · ws[i]ᵀ`
/// (a layer's q, k and v, or its gate and up). Each `ys[i]` gets exactly the
/// bits [`matmul`] would give it. For decode (a token or a few), when the
/// matrices share their activation format, `x` is quantized once and all
/// the row blocks go to the pool in one dispatch: a 192-row k matrix alone
/// is under a microsecond of work per task, less than a dispatch costs.
///
/// # Panics
/// As [`matmul`], for any pair; if `ws` and `ys` differ in length.
pub fn matmul_many(
    pool: &ThreadPool,
    ws: &[&QMatrix],
    x: &[f32],
    n: usize,
    ys: &mut [&mut [f32]],
    scratch: &mut MatmulScratch,
) {
    assert_eq!(
        ws.len(),
        ys.len(),
        "matmul_many: {} matrices, {} outputs",
        ws.len(),
        ys.len()
    );
    let level = simd::best_level();
    let fusable = ws.first().is_some_and(|w0| {
        ws.iter()
            .all(|w| w.cols == w0.cols && quant::vec_dot_type(w.ty) == quant::vec_dot_type(w0.ty))
    });
    #[cfg(target_arch = "x86_64")]
    let fusable =
        fusable && (n < GEMM_MIN_TOKENS || ws.iter().all(|w| simd::gemm_at(level, w.ty).is_none()));
    if !fusable || n == 0 || ws.len() == 1 {
        for (w, y) in ws.iter().zip(ys.iter_mut()) {
            matmul_level(level, pool, w, x, n, y, scratch);
        }
        return;
    }
    for (w, y) in ws.iter().zip(ys.iter()) {
        check_args(w, x, n, y);
    }
    let a_row = quantize_activations(pool, ws[0], x, n, scratch, false);
    let q = &scratch.q[..n * a_row];
    let parts: Vec<(Kernel, Split, OutPtr, usize)> = {
        let mut first = 0;
        ws.iter()
            .zip(ys.iter_mut())
            .map(|(w, y)| {
                let kernel = Kernel::at(level, w.ty).unwrap_or_else(|| Kernel::best(w.ty));
                let split = Split::new(w.rows, w.row_bytes(), n, pool.n_threads(), 1);
                let part = (kernel, split, OutPtr(y.as_mut_ptr()), first);
                first += split.tasks();
                part
            })
            .collect()
    };
    let total = parts.last().map_or(0, |p| p.3 + p.1.tasks());
    pool.run(total, |task| {
        let j = parts.partition_point(|p| p.3 <= task) - 1;
        let (kernel, split, out, first) = &parts[j];
        // SAFETY: each ys[j] holds n × rows floats (checked above) and stays
        // borrowed until `run` returns; tasks of one split are disjoint and
        // the outputs are distinct slices.
        unsafe { dot_task(kernel, ws[j], q, a_row, n, split, task - first, *out) }
    });
}

/// Fewest tokens for which the tiled GEMM beats the per-row dots.
#[cfg(target_arch = "x86_64")]
const GEMM_MIN_TOKENS: usize = 4;

/// Activation bytes a GEMM token block may span: the block's quantized rows
/// stay in L2 while the row tiles pass over them.
#[cfg(target_arch = "x86_64")]
const GEMM_BLOCK_ACT_BYTES: usize = 768 * 1024;

/// The tiled-GEMM matmul (AVX-512 VNNI): tasks are blocks of whole 16-row
/// tiles; each unpacks a tile once per token block and sweeps the tokens.
#[cfg(target_arch = "x86_64")]
fn matmul_gemm(
    gemm: simd::GemmFn,
    pool: &ThreadPool,
    w: &QMatrix,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    scratch: &mut MatmulScratch,
) {
    let a_row = quantize_activations(pool, w, x, n, scratch, true);
    let nbk = w.cols / w.ty.block_size();
    let q = &scratch.q[..n * a_row];
    let aux: &[simd::Aux] = if scratch.aux.len() >= n * nbk {
        &scratch.aux[..n * nbk]
    } else {
        &[]
    };
    let rows = w.rows;
    let split = Split::new(rows, 0, n, pool.n_threads(), simd::TILE_ROWS);
    let out = OutPtr(y.as_mut_ptr());
    let token_block = (GEMM_BLOCK_ACT_BYTES / a_row.max(1)).max(64);
    pool.run(split.tasks(), |task| {
        let (rs, ts) = split.task(task);
        let mut t0 = ts.start;
        while t0 < ts.end {
            let t1 = (t0 + token_block).min(ts.end);
            let task = simd::Task {
                w: w.data,
                row_bytes: w.row_bytes(),
                nbk,
                q,
                a_row,
                aux,
                rows: rs.clone(),
                tokens: t0..t1,
                y: out.get(),
                y_stride: rows,
            };
            // SAFETY: `gemm_at` returned a kernel only for an available
            // level. The task writes y[t * rows + r] for its (row, token)
            // ranges only, which lie in y[..n * rows] (checked by
            // `check_args`) and are disjoint between tasks; `y` stays
            // borrowed until `run` returns. The kernel checks the slices.
            unsafe { gemm(&task) };
            t0 = t1;
        }
    });
}

/// How `matmul` cuts the output into tasks: blocks of rows, and for batches
/// with too few row blocks to feed the pool, chunks of tokens too. Every
/// (row, token) pair is in exactly one task; the cut does not change any
/// result, only which thread computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Split {
    rows: usize,
    n: usize,
    block_rows: usize,
    n_blocks: usize,
    chunk_tokens: usize,
    n_chunks: usize,
}

impl Split {
    /// `align`: row blocks are a multiple of this many rows (the GEMM's
    /// tile height), except the last.
    fn new(rows: usize, row_bytes: usize, n: usize, threads: usize, align: usize) -> Split {
        let target = if threads > 1 {
            threads * BLOCKS_PER_THREAD
        } else {
            1
        };
        // Enough blocks for the pool, each small enough to stay in L2
        // while the token tiles pass over it.
        let block_rows = rows
            .div_ceil(target)
            .min((BLOCK_BYTES / row_bytes.max(1)).max(4))
            .max(1)
            .next_multiple_of(align.max(1));
        let n_blocks = rows.div_ceil(block_rows).max(1);
        // Few rows but many tokens: split the tokens, in whole tiles.
        let tiles = n.div_ceil(TOKEN_TILE).max(1);
        let splits = target.div_ceil(n_blocks).clamp(1, tiles);
        let chunk_tokens = tiles.div_ceil(splits) * TOKEN_TILE;
        let n_chunks = n.div_ceil(chunk_tokens).max(1);
        Split {
            rows,
            n,
            block_rows,
            n_blocks,
            chunk_tokens,
            n_chunks,
        }
    }

    fn tasks(&self) -> usize {
        self.n_blocks * self.n_chunks
    }

    /// The rows and tokens of task `i` (row-block major).
    fn task(&self, i: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (b, c) = (i / self.n_chunks, i % self.n_chunks);
        let r0 = (b * self.block_rows).min(self.rows);
        let t0 = (c * self.chunk_tokens).min(self.n);
        (
            r0..(r0 + self.block_rows).min(self.rows),
            t0..(t0 + self.chunk_tokens).min(self.n),
        )
    }

    fn token_end(&self, i: usize) -> usize {
        self.task(i).1.end
    }
}

/// Quantizes the `n` rows of `x` into `scratch.q`, in parallel for batches;
/// returns the bytes per quantized row.
fn quantize_activations(
    pool: &ThreadPool,
    w: &QMatrix,
    x: &[f32],
    n: usize,
    scratch: &mut MatmulScratch,
    with_aux: bool,
) -> usize {
    let at = quant::vec_dot_type(w.ty);
    let cols = w.cols;
    let a_row = cols / at.block_size() * at.type_size();
    if scratch.q.len() < n * a_row {
        scratch.q.resize(n * a_row, 0);
    }
    #[cfg(target_arch = "x86_64")]
    let (aux, nbk) = {
        let nbk = cols / at.block_size();
        let legacy = with_aux && at.block_size() == quant::blocks::QK;
        if legacy && scratch.aux.len() < n * nbk {
            scratch.aux.resize(n * nbk, [0; 10]);
        }
        (
            AuxPtr(if legacy {
                scratch.aux.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            }),
            nbk,
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = with_aux;
    let quantize_one = |t: usize, dst: &mut [u8]| {
        // The SIMD quantizer: byte-identical to `quant::quantize_row`.
        let r = simd::quantize_row(at, &x[t * cols..(t + 1) * cols], dst);
        // Unreachable: `check_args` verified that `cols` splits into whole
        // blocks of `at`, and `dst` is exactly one row.
        debug_assert!(r.is_ok(), "quantize {at}: {r:?}");
        #[cfg(target_arch = "x86_64")]
        if !aux.get().is_null() {
            // SAFETY: the aux rows were sized to n * nbk above; row t
            // belongs to this call of `quantize_one` only (as `dst`), and
            // `scratch` stays mutably borrowed until the quantizing ends.
            let row = unsafe { std::slice::from_raw_parts_mut(aux.get().add(t * nbk), nbk) };
            simd::legacy_aux(w.ty, dst, row);
        }
    };
    const TOKENS_PER_TASK: usize = 4;
    if n < 2 * TOKENS_PER_TASK || pool.n_threads() == 1 {
        for (t, dst) in scratch.q[..n * a_row]
            .chunks_exact_mut(a_row.max(1))
            .enumerate()
        {
            quantize_one(t, dst);
        }
        return a_row;
    }
    let base = BytesPtr(scratch.q.as_mut_ptr());
    pool.run(n.div_ceil(TOKENS_PER_TASK), |i| {
        for t in i * TOKENS_PER_TASK..((i + 1) * TOKENS_PER_TASK).min(n) {
            // SAFETY: row t lies in scratch.q[..n * a_row] (resized above);
            // each t belongs to exactly one task, and `scratch` stays
            // mutably borrowed until `run` returns.
            let dst = unsafe { std::slice::from_raw_parts_mut(base.get().add(t * a_row), a_row) };
            quantize_one(t, dst);
        }
    });
    a_row
}

/// The reference `matmul`: quantize each row of `x`, then
/// [`quant::vec_dot_scalar`] for every (token, row), single-threaded.
///
/// # Panics
/// As [`matmul`].
pub fn matmul_scalar(w: &QMatrix, x: &[f32], n: usize, y: &mut [f32]) {
    check_args(w, x, n, y);
    let at = quant::vec_dot_type(w.ty);
    let mut q = vec![0u8; w.cols / at.block_size() * at.type_size()];
    for t in 0..n {
        let r = quant::quantize_row(at, &x[t * w.cols..(t + 1) * w.cols], &mut q);
        debug_assert!(r.is_ok(), "quantize {at}: {r:?}");
        for r in 0..w.rows {
            y[t * w.rows + r] = quant::vec_dot_scalar(w.ty, w.row(r), &q, w.cols);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (row, token) pair lands in exactly one task, for any shape.
    #[test]
    fn split_covers_each_output_once() {
        for rows in [1, 3, 7, 64, 577] {
            for n in [1, 4, 15, 16, 17, 100, 513] {
                for threads in [1, 2, 3, 8] {
                    for (row_bytes, align) in [(18, 1), (952, 1), (300_000, 1), (0, 16)] {
                        let s = Split::new(rows, row_bytes, n, threads, align);
                        let mut hits = vec![0u8; rows * n];
                        for i in 0..s.tasks() {
                            let (rs, ts) = s.task(i);
                            for r in rs {
                                for t in ts.clone() {
                                    hits[t * rows + r] += 1;
                                }
                            }
                        }
                        assert!(hits.iter().all(|&h| h == 1), "{s:?} threads={threads}");
                    }
                }
            }
        }
    }

    #[test]
    fn few_rows_many_tokens_splits_tokens() {
        let s = Split::new(2, 100, 256, 2, 1);
        assert!(s.tasks() >= 8, "{s:?}");
        let s = Split::new(4096, 100, 256, 2, 1);
        assert_eq!(s.n_chunks, 1, "{s:?}");
    }
}
