//! AVX-512 VNNI register-tiled GEMM: 16 weight rows × up to 8 tokens per
//! inner loop, for q4_0, q4_1, q5_0, q5_1, q8_0 (× q8_0 / q8_1) and q4_K,
//! q5_K, q6_K (× q8_K).
//!
//! Design: the `dot4` kernels spend most of their instructions per 32-element
//! block on work that does not scale with the block (sign moves, an int→float
//! conversion and a scale FMA on an 8-lane vector whose lanes are summed only
//! at the end). Here a zmm lane is an output *row* instead: 16 rows of a
//! weight tile are decoded once into an L1-sized buffer, transposed so that
//! 64 bytes hold the same four columns of all 16 rows, and each `vpdpbusd`
//! multiplies them by four activation bytes broadcast from memory. One
//! 32-element block of 16 rows × one token is then 8 `vpdpbusd` plus one
//! convert, one multiply and one FMA, all full-width. The buffer is a
//! per-thread scratch (no weight copy outlives the call; memory-neutral).
//!
//! Unsigned weights: `vpdpbusd` takes u8 × i8, so weights are stored as their
//! unsigned codes (q4_0 nibble, q5_0 5-bit code, q8_0 `w + 128`, k-quant
//! codes) and the offset comes back through the activation block sum:
//! `Σ (u - o)·a = Σ u·a - o·Σa`, exactly (the accumulator starts at `-o·Σa`,
//! precomputed per token and block, see [`legacy_aux`]).
//!
//! Numerics (what makes the result independent of batching): every lane
//! computes, for its (row, token), the same operations in the same order as
//! a one-row, one-token call; tiles, chunks and token groups only change
//! which lanes run together. The legacy tiles reproduce the float order of
//! the `dot` kernels exactly (their 8-lane partial sums are 8 zmm here, one
//! per column group; see [`legacy_tokens`]), so matmul results are the same
//! bits as before the GEMM and as `simd::vec_dot`. The k-quant tiles keep
//! the scalar reference's expression (`sum += dy·d·S1 − dy·dmin·S2` resp.
//! `sum += d·dy·total`) and so equal `vec_dot_scalar` bit for bit, like the
//! `dot` kernels.
//!
//! Safety contract of the helpers: callers run with AVX-512 F/BW/VL/VNNI
//! (plus AVX2/FMA/F16C) and pass pointers to enough readable (writable for
//! outputs) memory; [`run`] checks the slice lengths once on entry.

use super::{bits32, f16_at, load256, nibbles32};
use crate::quant::blocks::{
    k4_scale_min, q4_0, q4_1, q4_k, q5_0, q5_1, q5_k, q6_k, q8_0, q8_1, q8_k, QK, QK_K,
};
use core::arch::x86_64::*;
use std::cell::RefCell;
use std::ptr::read_unaligned;

/// Weight rows per tile: one zmm of i32 / f32 lanes.
pub(crate) const TILE_ROWS: usize = 16;
/// Bytes of one 32-element run of a 16-row tile: 8 column groups × 16 rows
/// × 4 bytes, group-major.
const RUN_BYTES: usize = 8 * 64;
/// Target bytes of one chunk of unpacked blocks (runs + per-row metadata):
/// stays in L1 while the token groups pass over it.
const CHUNK_BYTES: usize = 32 * 1024;
/// Tokens per inner-loop group: 8 independent accumulator chains hide the
/// `vpdpbusd` latency.
const GROUP: usize = 8;

/// The activation side data of a legacy format, per token and block:
/// `[da, sa, c0..c8]`: the scale, the q8_1 `s` (formats with a min), and
/// per column group g (elements 4g..4g+4) the offset term `-o·Σa` as i32.
pub(crate) type Aux = [u32; 10];

/// How a weight format unpacks into tiles.
trait Format {
    /// Bytes per weight block.
    const BYTES: usize;
    /// Elements per weight block.
    const ELEMS: usize;
    /// 32-element runs per block.
    const RUNS: usize = Self::ELEMS / 32;
    /// 16-lane (64-byte) metadata fields per block.
    const META: usize;
    /// Run `k` of the block at `b` as 32 unsigned codes.
    unsafe fn run(b: *const u8, k: usize) -> __m256i;
    /// Writes lane `lane` of every metadata field of the block at `b`
    /// (field f at `meta + 64 f`).
    unsafe fn meta(b: *const u8, meta: *mut u8, lane: usize);
}

#[inline(always)]
unsafe fn put_f32(meta: *mut u8, field: usize, lane: usize, v: f32) {
    meta.add(64 * field + 4 * lane).cast::<f32>().write(v);
}

#[inline(always)]
unsafe fn put_u32(meta: *mut u8, field: usize, lane: usize, v: u32) {
    meta.add(64 * field + 4 * lane).cast::<u32>().write(v);
}

/// Legacy formats: the offset `o` subtracted from the unsigned code (0 for
/// the formats with a min).
trait Legacy: Format {
    const OFFSET: i32;
    const MIN: bool;
}

macro_rules! legacy_format {
    ($name:ident, $m:ident, $offset:expr, $min:expr, |$b:ident| $run:expr) => {
        pub(super) struct $name;
        impl Format for $name {
            const BYTES: usize = $m::BYTES;
            const ELEMS: usize = QK;
            const META: usize = if $min { 2 } else { 1 };
            #[inline(always)]
            unsafe fn run($b: *const u8, _k: usize) -> __m256i {
                $run
            }
            #[inline(always)]
            unsafe fn meta(b: *const u8, meta: *mut u8, lane: usize) {
                put_f32(meta, 0, lane, f16_at(b));
                if $min {
                    put_f32(meta, 1, lane, f16_at(b.add(2)));
                }
            }
        }
        impl Legacy for $name {
            const OFFSET: i32 = $offset;
            const MIN: bool = $min;
        }
    };
}

legacy_format!(Q4_0, q4_0, 8, false, |b| nibbles32(b.add(q4_0::QS)));
legacy_format!(Q4_1, q4_1, 0, true, |b| nibbles32(b.add(q4_1::QS)));
legacy_format!(Q5_0, q5_0, 16, false, |b| _mm256_or_si256(
    nibbles32(b.add(q5_0::QS)),
    _mm256_and_si256(bits32(b.add(q5_0::QH)), _mm256_set1_epi8(0x10))
));
legacy_format!(Q5_1, q5_1, 0, true, |b| _mm256_or_si256(
    nibbles32(b.add(q5_1::QS)),
    _mm256_and_si256(bits32(b.add(q5_1::QH)), _mm256_set1_epi8(0x10))
));
legacy_format!(Q8_0, q8_0, 128, false, |b| _mm256_xor_si256(
    load256(b.add(q8_0::QS)),
    _mm256_set1_epi8(0x80u8 as i8)
));

/// q4_K / q5_K metadata fields: d, dmin, sc[8] (i32), [m, m][8] (i16 pairs).
const K4_D: usize = 0;
const K4_DMIN: usize = 1;
const K4_SC: usize = 2;
const K4_MP: usize = 10;

#[inline(always)]
unsafe fn k4_meta(b: *const u8, scales: usize, meta: *mut u8, lane: usize) {
    put_f32(meta, K4_D, lane, f16_at(b));
    put_f32(meta, K4_DMIN, lane, f16_at(b.add(2)));
    let packed = read_unaligned(b.add(scales).cast::<[u8; 12]>());
    for j in 0..8 {
        let (sc, m) = k4_scale_min(&packed, j);
        put_u32(meta, K4_SC + j, lane, u32::from(sc));
        put_u32(meta, K4_MP + j, lane, u32::from(m) * 0x1_0001);
    }
}

pub(super) struct Q4K;
impl Format for Q4K {
    const BYTES: usize = q4_k::BYTES;
    const ELEMS: usize = QK_K;
    const META: usize = 18;
    #[inline(always)]
    unsafe fn run(b: *const u8, k: usize) -> __m256i {
        let raw = load256(b.add(q4_k::QS + 32 * (k / 2)));
        let raw = if k % 2 == 0 {
            raw
        } else {
            _mm256_srli_epi16(raw, 4)
        };
        _mm256_and_si256(raw, _mm256_set1_epi8(0x0f))
    }
    #[inline(always)]
    unsafe fn meta(b: *const u8, meta: *mut u8, lane: usize) {
        k4_meta(b, q4_k::SCALES, meta, lane);
    }
}

pub(super) struct Q5K;
impl Format for Q5K {
    const BYTES: usize = q5_k::BYTES;
    const ELEMS: usize = QK_K;
    const META: usize = 18;
    #[inline(always)]
    unsafe fn run(b: *const u8, k: usize) -> __m256i {
        let raw = load256(b.add(q5_k::QS + 32 * (k / 2)));
        let raw = if k % 2 == 0 {
            raw
        } else {
            _mm256_srli_epi16(raw, 4)
        };
        let lo = _mm256_and_si256(raw, _mm256_set1_epi8(0x0f));
        let qh = _mm256_srl_epi16(load256(b.add(q5_k::QH)), _mm_cvtsi32_si128(k as i32));
        let hi = _mm256_and_si256(_mm256_slli_epi16(qh, 4), _mm256_set1_epi8(0x10));
        _mm256_or_si256(lo, hi)
    }
    #[inline(always)]
    unsafe fn meta(b: *const u8, meta: *mut u8, lane: usize) {
        k4_meta(b, q5_k::SCALES, meta, lane);
    }
}

/// q6_K metadata fields: d, sc[16] (i32), [sc, sc'][8] (i16 pairs).
const K6_D: usize = 0;
const K6_SC: usize = 1;
const K6_SP: usize = 17;

pub(super) struct Q6K;
impl Format for Q6K {
    const BYTES: usize = q6_k::BYTES;
    const ELEMS: usize = QK_K;
    const META: usize = 25;
    #[inline(always)]
    unsafe fn run(b: *const u8, k: usize) -> __m256i {
        // Run 4h + j holds elements 128h + 32j + l: low nibble of
        // ql[64h + l + 32 (j & 1)] (high nibble for j >= 2), high bits
        // (qh[32h + l] >> 2j) & 3; the code q + 32 is in 0..64.
        let (h, j) = (k / 4, k % 4);
        let ql = load256(b.add(q6_k::QL + 64 * h + 32 * (j % 2)));
        let ql = if j < 2 { ql } else { _mm256_srli_epi16(ql, 4) };
        let qh = load256(b.add(q6_k::QH + 32 * h));
        let qh = match j {
            0 => _mm256_slli_epi16(qh, 4),
            1 => _mm256_slli_epi16(qh, 2),
            2 => qh,
            _ => _mm256_srli_epi16(qh, 2),
        };
        _mm256_or_si256(
            _mm256_and_si256(ql, _mm256_set1_epi8(0x0f)),
            _mm256_and_si256(qh, _mm256_set1_epi8(0x30)),
        )
    }
    #[inline(always)]
    unsafe fn meta(b: *const u8, meta: *mut u8, lane: usize) {
        put_f32(meta, K6_D, lane, f16_at(b.add(q6_k::D)));
        let sc = read_unaligned(b.add(q6_k::SCALES).cast::<[i8; 16]>());
        for (s, &v) in sc.iter().enumerate() {
            put_u32(meta, K6_SC + s, lane, i32::from(v) as u32);
        }
        for i in 0..8 {
            // Each i8 sign-extended into its i16 half.
            let (lo, hi) = (i16::from(sc[2 * i]) as u16, i16::from(sc[2 * i + 1]) as u16);
            put_u32(meta, K6_SP + i, lane, u32::from(lo) | u32::from(hi) << 16);
        }
    }
}

// ---- unpacking -----------------------------------------------------------------

/// Bytes of one unpacked block of a tile (runs, then metadata).
const fn block_buf_bytes(runs: usize, meta: usize) -> usize {
    runs * RUN_BYTES + meta * 64
}

/// Unpacks blocks `b0..b0 + nb` of the `nr <= 16` rows at `w` (row stride
/// `row_bytes`) into `buf`: per block, its runs (group-major, see
/// [`RUN_BYTES`]) then its metadata. Rows `nr..16` are zero.
#[inline(always)]
unsafe fn unpack<F: Format>(
    w: *const u8,
    row_bytes: usize,
    nr: usize,
    b0: usize,
    nb: usize,
    buf: *mut u8,
) {
    let bb = block_buf_bytes(F::RUNS, F::META);
    for b in 0..nb {
        let dst = buf.add(b * bb);
        let meta = dst.add(F::RUNS * RUN_BYTES);
        for k in 0..F::RUNS {
            let run = dst.add(k * RUN_BYTES);
            for rg in 0..4 {
                let mut v = [_mm256_setzero_si256(); 4];
                for (i, v) in v.iter_mut().enumerate() {
                    let r = 4 * rg + i;
                    if r < nr {
                        *v = F::run(w.add(r * row_bytes + (b0 + b) * F::BYTES), k);
                    }
                }
                // 4 rows × 8 dwords → per column group g, the 4 rows' dwords.
                let t0 = _mm256_unpacklo_epi32(v[0], v[1]);
                let t1 = _mm256_unpackhi_epi32(v[0], v[1]);
                let t2 = _mm256_unpacklo_epi32(v[2], v[3]);
                let t3 = _mm256_unpackhi_epi32(v[2], v[3]);
                let u = [
                    _mm256_unpacklo_epi64(t0, t2), // groups 0 | 4
                    _mm256_unpackhi_epi64(t0, t2), // groups 1 | 5
                    _mm256_unpacklo_epi64(t1, t3), // groups 2 | 6
                    _mm256_unpackhi_epi64(t1, t3), // groups 3 | 7
                ];
                for (g, u) in u.into_iter().enumerate() {
                    let lo = run.add(64 * g + 16 * rg);
                    _mm_storeu_si128(lo.cast(), _mm256_castsi256_si128(u));
                    _mm_storeu_si128(lo.add(4 * 64).cast(), _mm256_extracti128_si256(u, 1));
                }
            }
        }
        for lane in 0..TILE_ROWS {
            if lane < nr {
                F::meta(w.add(lane * row_bytes + (b0 + b) * F::BYTES), meta, lane);
            } else {
                for f in 0..F::META {
                    put_u32(meta, f, lane, 0);
                }
            }
        }
    }
}

// ---- compute tiles -------------------------------------------------------------

#[inline(always)]
unsafe fn bcast(p: *const u8) -> __m512i {
    _mm512_set1_epi32(read_unaligned(p.cast::<i32>()))
}

#[inline(always)]
unsafe fn load_i(p: *const u8) -> __m512i {
    _mm512_load_si512(p.cast())
}

#[inline(always)]
unsafe fn load_f(p: *const u8) -> __m512 {
    _mm512_load_ps(p.cast())
}

/// `T` tokens × 16 rows over all `nb` unpacked legacy blocks at `buf`
/// (activation blocks at `act`, aux at `aux`), stored to `out` (lanes in
/// `mask`). The float order is exactly that of the `dot` kernels in
/// `x86.rs` (`legacy_group`), lane g of their 8-lane vectors being column
/// group g here: blocks in groups of four, `t_g = d0·p0_g`, `t_g = fma(dj,
/// pj_g, t_g)`, `acc_g += t_g`; mins into four lanes `summ_j = fma(mw, sa,
/// summ_j)`; result `hsum8(acc) + hsum4(summ)` in their shuffle order.
#[inline(always)]
unsafe fn legacy_tokens<W: Legacy, const T: usize>(
    buf: *const u8,
    nb: usize,
    act: [*const u8; T],
    aux: [*const Aux; T],
    out: [*mut f32; T],
    mask: __mmask16,
) {
    let (ab, qs) = if W::MIN {
        (q8_1::BYTES, q8_1::QS)
    } else {
        (q8_0::BYTES, q8_0::QS)
    };
    let bb = block_buf_bytes(1, W::META);
    let mut acc = [[_mm512_setzero_ps(); 8]; T];
    let mut summ = [[_mm512_setzero_ps(); 4]; T];
    let mut i = 0;
    while i < nb {
        let g_len = (nb - i).min(4);
        let mut tt = [[_mm512_setzero_ps(); 8]; T];
        for j in 0..g_len {
            let b = i + j;
            let run = buf.add(b * bb);
            let meta = run.add(RUN_BYTES);
            let dw = load_f(meta);
            let x: [&Aux; T] = core::array::from_fn(|k| &*aux[k].add(b));
            let d: [__m512; T] = core::array::from_fn(|k| {
                _mm512_mul_ps(dw, _mm512_set1_ps(f32::from_bits(x[k][0])))
            });
            for g in 0..8 {
                let wv = load_i(run.add(64 * g));
                for k in 0..T {
                    let init = if W::MIN {
                        _mm512_setzero_si512()
                    } else {
                        _mm512_set1_epi32(x[k][2 + g] as i32)
                    };
                    let a = act[k].add(b * ab + qs + 4 * g);
                    let p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(init, wv, bcast(a)));
                    tt[k][g] = if j == 0 {
                        _mm512_mul_ps(d[k], p)
                    } else {
                        _mm512_fmadd_ps(d[k], p, tt[k][g])
                    };
                }
            }
            if W::MIN {
                let mw = load_f(meta.add(64));
                for k in 0..T {
                    summ[k][j] =
                        _mm512_fmadd_ps(mw, _mm512_set1_ps(f32::from_bits(x[k][1])), summ[k][j]);
                }
            }
        }
        for k in 0..T {
            for g in 0..8 {
                acc[k][g] = _mm512_add_ps(acc[k][g], tt[k][g]);
            }
        }
        i += g_len;
    }
    for k in 0..T {
        let (a, s) = (&acc[k], &summ[k]);
        // hsum of 8 lanes: (lo + hi), then + movehl, then + movehdup.
        let h = _mm512_add_ps(
            _mm512_add_ps(_mm512_add_ps(a[0], a[4]), _mm512_add_ps(a[2], a[6])),
            _mm512_add_ps(_mm512_add_ps(a[1], a[5]), _mm512_add_ps(a[3], a[7])),
        );
        let h4 = _mm512_add_ps(_mm512_add_ps(s[0], s[2]), _mm512_add_ps(s[1], s[3]));
        _mm512_mask_storeu_ps(out[k], mask, _mm512_add_ps(h, h4));
    }
}

/// q4_K / q5_K: `T` tokens × 16 rows over `nb` unpacked super-blocks.
#[inline(always)]
unsafe fn k4_tile<const T: usize>(
    buf: *const u8,
    nb: usize,
    act: [*const u8; T],
    acc: &mut [__m512; T],
) {
    let bb = block_buf_bytes(8, 18);
    for b in 0..nb {
        let blk = buf.add(b * bb);
        let meta = blk.add(8 * RUN_BYTES);
        let y: [*const u8; T] = core::array::from_fn(|t| act[t].add(b * q8_k::BYTES));
        let mut s1 = [_mm512_setzero_si512(); T];
        for j in 0..8 {
            let run = blk.add(j * RUN_BYTES);
            let mut is = [_mm512_setzero_si512(); T];
            for g in 0..8 {
                let wv = load_i(run.add(64 * g));
                for t in 0..T {
                    is[t] =
                        _mm512_dpbusd_epi32(is[t], wv, bcast(y[t].add(q8_k::QS + 32 * j + 4 * g)));
                }
            }
            let sc = load_i(meta.add(64 * (K4_SC + j)));
            for t in 0..T {
                s1[t] = _mm512_add_epi32(s1[t], _mm512_mullo_epi32(is[t], sc));
            }
        }
        let mut s2 = [_mm512_setzero_si512(); T];
        for j in 0..8 {
            let mp = load_i(meta.add(64 * (K4_MP + j)));
            for t in 0..T {
                s2[t] = _mm512_dpwssd_epi32(s2[t], mp, bcast(y[t].add(q8_k::BSUMS + 4 * j)));
            }
        }
        let (d, dmin) = (load_f(meta.add(64 * K4_D)), load_f(meta.add(64 * K4_DMIN)));
        for t in 0..T {
            let dy = _mm512_set1_ps(read_unaligned(y[t].add(q8_k::D).cast::<f32>()));
            let t1 = _mm512_mul_ps(_mm512_mul_ps(dy, d), _mm512_cvtepi32_ps(s1[t]));
            let t2 = _mm512_mul_ps(_mm512_mul_ps(dy, dmin), _mm512_cvtepi32_ps(s2[t]));
            acc[t] = _mm512_add_ps(acc[t], _mm512_sub_ps(t1, t2));
        }
    }
}

/// q6_K: `T` tokens × 16 rows over `nb` unpacked super-blocks.
#[inline(always)]
unsafe fn q6k_tile<const T: usize>(
    buf: *const u8,
    nb: usize,
    act: [*const u8; T],
    acc: &mut [__m512; T],
) {
    let bb = block_buf_bytes(8, 25);
    for b in 0..nb {
        let blk = buf.add(b * bb);
        let meta = blk.add(8 * RUN_BYTES);
        let y: [*const u8; T] = core::array::from_fn(|t| act[t].add(b * q8_k::BYTES));
        let mut s = [_mm512_setzero_si512(); T];
        for sb in 0..16 {
            let run = blk.add((sb / 2) * RUN_BYTES + 256 * (sb % 2));
            let mut is = [_mm512_setzero_si512(); T];
            for g in 0..4 {
                let wv = load_i(run.add(64 * g));
                for t in 0..T {
                    is[t] =
                        _mm512_dpbusd_epi32(is[t], wv, bcast(y[t].add(q8_k::QS + 16 * sb + 4 * g)));
                }
            }
            let sc = load_i(meta.add(64 * (K6_SC + sb)));
            for t in 0..T {
                s[t] = _mm512_add_epi32(s[t], _mm512_mullo_epi32(is[t], sc));
            }
        }
        let mut o = [_mm512_setzero_si512(); T];
        for i in 0..8 {
            let sp = load_i(meta.add(64 * (K6_SP + i)));
            for t in 0..T {
                o[t] = _mm512_dpwssd_epi32(o[t], sp, bcast(y[t].add(q8_k::BSUMS + 4 * i)));
            }
        }
        let d = load_f(meta.add(64 * K6_D));
        for t in 0..T {
            let dy = _mm512_set1_ps(read_unaligned(y[t].add(q8_k::D).cast::<f32>()));
            let total = _mm512_sub_epi32(s[t], _mm512_slli_epi32(o[t], 5));
            acc[t] = _mm512_add_ps(
                acc[t],
                _mm512_mul_ps(_mm512_mul_ps(d, dy), _mm512_cvtepi32_ps(total)),
            );
        }
    }
}

// ---- drivers -----------------------------------------------------------------

/// One task of a matmul: rows `r0..r1` of the weight matrix `w` (row stride
/// `row_bytes`, `nbk` blocks per row) against tokens `t0..t1` of the
/// activations `q` (row stride `a_row`) with their `aux` (`nbk` per token,
/// legacy formats only), writing `y[t * y_stride + r]`.
pub(crate) struct Task<'a> {
    pub w: &'a [u8],
    pub row_bytes: usize,
    pub nbk: usize,
    pub q: &'a [u8],
    pub a_row: usize,
    pub aux: &'a [Aux],
    pub rows: core::ops::Range<usize>,
    pub tokens: core::ops::Range<usize>,
    pub y: *mut f32,
    pub y_stride: usize,
}

/// 64-byte aligned scratch.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

thread_local! {
    /// The unpacked chunk of the current tile (per pool thread, grown once).
    static BUF: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// Which compute tile a format uses.
trait Tile: Format {
    /// Bytes per activation block.
    const ACT_BYTES: usize;
    /// Whether the tile's state fits in `y` between chunks (k-quants: one
    /// float per output); legacy tiles take all blocks in one chunk.
    const CHUNKED: bool;
    /// `T` tokens: activation rows `act` and aux rows `aux` (pointing at
    /// block `b0`), outputs `out` (lanes in `mask`); `first`: no partial
    /// sums in `out` yet.
    unsafe fn tile<const T: usize>(
        buf: *const u8,
        nb: usize,
        act: [*const u8; T],
        aux: [*const Aux; T],
        out: [*mut f32; T],
        mask: __mmask16,
        first: bool,
    );
}

macro_rules! legacy_tile_impl {
    ($($w:ident),*) => {$(
        impl Tile for $w {
            const ACT_BYTES: usize = if <$w as Legacy>::MIN { q8_1::BYTES } else { q8_0::BYTES };
            const CHUNKED: bool = false;
            #[inline(always)]
            unsafe fn tile<const T: usize>(buf: *const u8, nb: usize, act: [*const u8; T], aux: [*const Aux; T], out: [*mut f32; T], mask: __mmask16, _: bool) {
                // One token at a time: its 16 accumulators (8 column groups,
                // 8 block-group partials) fill the registers; two tokens
                // sharing the weight loads spilled and cost ~1.7x the CPU
                // time (qwen0.5b pp128, user time 1.52-1.69 s vs 0.88-0.91 s).
                for k in 0..T {
                    legacy_tokens::<$w, 1>(buf, nb, [act[k]], [aux[k]], [out[k]], mask);
                }
            }
        }
    )*};
}
legacy_tile_impl!(Q4_0, Q4_1, Q5_0, Q5_1, Q8_0);

macro_rules! kquant_tile_impl {
    ($($w:ident => $f:ident),*) => {$(
        impl Tile for $w {
            const ACT_BYTES: usize = q8_k::BYTES;
            const CHUNKED: bool = true;
            #[inline(always)]
            unsafe fn tile<const T: usize>(buf: *const u8, nb: usize, act: [*const u8; T], _: [*const Aux; T], out: [*mut f32; T], mask: __mmask16, first: bool) {
                let mut acc = [_mm512_setzero_ps(); T];
                if !first {
                    for k in 0..T {
                        acc[k] = _mm512_maskz_loadu_ps(mask, out[k]);
                    }
                }
                $f::<T>(buf, nb, act, &mut acc);
                for k in 0..T {
                    _mm512_mask_storeu_ps(out[k], mask, acc[k]);
                }
            }
        }
    )*};
}
kquant_tile_impl!(Q4K => k4_tile, Q5K => k4_tile, Q6K => q6k_tile);

/// `T` tokens from `t` over blocks `b0..b0 + nb` of the tile at `r0`.
#[inline(always)]
unsafe fn group<F: Tile, const T: usize>(
    task: &Task,
    buf: *const u8,
    r0: usize,
    mask: __mmask16,
    b0: usize,
    nb: usize,
    t: usize,
) {
    let act: [*const u8; T] = core::array::from_fn(|k| {
        task.q
            .as_ptr()
            .add((t + k) * task.a_row + b0 * F::ACT_BYTES)
    });
    let aux: [*const Aux; T] = core::array::from_fn(|k| {
        if F::CHUNKED {
            core::ptr::null()
        } else {
            task.aux.as_ptr().add((t + k) * task.nbk + b0)
        }
    });
    let out: [*mut f32; T] = core::array::from_fn(|k| task.y.add((t + k) * task.y_stride + r0));
    F::tile::<T>(buf, nb, act, aux, out, mask, b0 == 0);
}

/// Runs one matmul task (see [`Task`]).
#[inline(always)]
unsafe fn run<F: Tile>(task: &Task) {
    let nbk = task.nbk;
    let (rs, ts) = (task.rows.clone(), task.tokens.clone());
    // Checked once: every pointer below stays inside these slices.
    if ts.is_empty() || rs.is_empty() {
        return;
    }
    assert!(
        rs.end * task.row_bytes <= task.w.len()
            && task.row_bytes >= nbk * F::BYTES
            && (ts.end - 1) * task.a_row + nbk * F::ACT_BYTES <= task.q.len()
            && (F::CHUNKED || task.aux.len() >= ts.end * nbk),
        "gemm: short buffers"
    );
    let bb = block_buf_bytes(F::RUNS, F::META);
    let cb = if F::CHUNKED {
        (CHUNK_BYTES / bb).clamp(1, nbk.max(1))
    } else {
        nbk.max(1)
    };
    // The buffer leaves the thread-local for the loop: work inside a
    // `with` closure would lose this function's target features (the
    // intrinsics would become calls).
    let mut v = BUF.with(|cell| cell.take());
    let lines = cb * bb / 64;
    if v.len() < lines {
        v.resize(lines, Line([0; 64]));
    }
    let buf = v.as_mut_ptr().cast::<u8>();
    let mut r0 = rs.start;
    while r0 < rs.end {
        let nr = (rs.end - r0).min(TILE_ROWS);
        let mask: __mmask16 = if nr == 16 { 0xffff } else { (1u16 << nr) - 1 };
        let wt = task.w.as_ptr().add(r0 * task.row_bytes);
        let mut b0 = 0;
        while b0 < nbk {
            let nb = cb.min(nbk - b0);
            unpack::<F>(wt, task.row_bytes, nr, b0, nb, buf);
            let mut t = ts.start;
            while t + GROUP <= ts.end {
                group::<F, GROUP>(task, buf, r0, mask, b0, nb, t);
                t += GROUP;
            }
            if t + 4 <= ts.end {
                group::<F, 4>(task, buf, r0, mask, b0, nb, t);
                t += 4;
            }
            if t + 2 <= ts.end {
                group::<F, 2>(task, buf, r0, mask, b0, nb, t);
                t += 2;
            }
            if t < ts.end {
                group::<F, 1>(task, buf, r0, mask, b0, nb, t);
            }
            b0 += nb;
        }
        r0 += nr;
    }
    BUF.with(|cell| cell.replace(v));
}

/// The aux row of one legacy activation row `a` (q8_0 for the signed
/// formats, q8_1 for those with a min) for weight format `W`.
fn aux_row<W: Legacy>(a: &[u8], aux: &mut [Aux]) {
    use crate::quant::blocks::f16_at;
    if W::MIN {
        for (blk, x) in a.chunks_exact(q8_1::BYTES).zip(aux.iter_mut()) {
            *x = [0; 10];
            x[0] = f16_at(blk, q8_1::D).to_bits();
            x[1] = f16_at(blk, q8_1::S).to_bits();
        }
    } else {
        for (blk, x) in a.chunks_exact(q8_0::BYTES).zip(aux.iter_mut()) {
            x[0] = f16_at(blk, q8_0::D).to_bits();
            x[1] = 0;
            for (g, q) in blk[q8_0::QS..].chunks_exact(4).enumerate() {
                let sum: i32 = q.iter().map(|&v| i32::from(v as i8)).sum();
                x[2 + g] = (-W::OFFSET * sum) as u32;
            }
        }
    }
}

/// Fills the aux of activation row `a` for weight type `ty` (legacy types
/// only; k-quants need none). Returns false for other types.
pub(crate) fn legacy_aux(ty: llmos_gguf::GgmlType, a: &[u8], aux: &mut [Aux]) -> bool {
    use llmos_gguf::GgmlType as G;
    match ty {
        G::Q4_0 => aux_row::<Q4_0>(a, aux),
        G::Q4_1 => aux_row::<Q4_1>(a, aux),
        G::Q5_0 => aux_row::<Q5_0>(a, aux),
        G::Q5_1 => aux_row::<Q5_1>(a, aux),
        G::Q8_0 => aux_row::<Q8_0>(a, aux),
        _ => return false,
    }
    true
}

macro_rules! entries {
    ($feat:literal, $( $name:ident, $w:ty; )*) => {
        $(
            /// # Safety
            /// Requires the CPU features in `target_feature`; `task.y` must
            /// be valid for the writes the task describes.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn $name(task: &Task) {
                run::<$w>(task)
            }
        )*
    };
}

entries!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    gemm_q4_0, Q4_0;
    gemm_q4_1, Q4_1;
    gemm_q5_0, Q5_0;
    gemm_q5_1, Q5_1;
    gemm_q8_0, Q8_0;
    gemm_q4_k, Q4K;
    gemm_q5_k, Q5K;
    gemm_q6_k, Q6K;
);
