//! bf16 GEMM on Intel AMX tiles (Sapphire Rapids and later), for encoder
//! models: `y (n, rows) = x (n, cols) · Wᵀ` with W packed once at load and
//! x rounded to bf16 per call, products accumulated in f32.
//!
//! Why: an AVX-512 core does 32 f32 multiply-adds a cycle; one `tdpbf16ps`
//! does 16×16×32 in about 16 cycles, 512 a cycle. bf16 keeps 8 bits of
//! mantissa; for all-MiniLM-L6-v2 that moves embeddings by a cosine of
//! 0.99996 at worst from f32 on the parity texts (measured with PyTorch:
//! both GEMM inputs rounded to bf16; the bar is 0.999), so the encoder uses
//! it when the CPU has it. `LLMOS_AMX=0`, or `LLMOS_SIMD` below
//! `avx512vnni`, keeps the f32 path.
//!
//! Layout. Tile B of `tdpbf16ps` holds 16 rows of k pairs × 16 outputs:
//! `B[kp][2 n + j] = W[n][2 kp + j]`. [`PackedBf16`] stores W as such 1 KiB
//! tiles, (32-row block, 32-column block) by (32-row block, …), rows and
//! columns padded with zeros to multiples of 32. x is converted per call to
//! bf16 A tiles (16 tokens × 32 columns, contiguous), so every tile load
//! reads 1 KiB in a row on both sides.
//!
//! Kernel: each task is 32 tokens × 32 outputs, four C tiles (tmm0–3) fed
//! by two A tiles (tmm4–5) and two B tiles (tmm6–7) per 32 columns. The
//! instructions are written with `asm!`: Rust's AMX intrinsics and target
//! features are not stable.
//!
//! [`gemm_ref`] is the plain reference (the same bf16 rounding, f32 sums);
//! the tests compare the two.

use crate::matmul::OutPtr;
use crate::pool::ThreadPool;
use std::sync::OnceLock;

/// Rows and columns are padded to multiples of this (two tiles).
const BLOCK: usize = 32;

/// f32 → bf16, round to nearest even (NaN stays NaN).
#[inline(always)]
pub fn to_bf16(v: f32) -> u16 {
    let b = v.to_bits();
    if v.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// bf16 → f32 (exact).
#[inline(always)]
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// Whether the AMX kernel runs here: the CPU has AMX-TILE and AMX-BF16,
/// Linux grants this process the tile state, and neither `LLMOS_AMX=0` nor
/// a `LLMOS_SIMD` cap below `avx512vnni` turns it off. Decided once.
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        if std::env::var("LLMOS_AMX").is_ok_and(|v| v.trim() == "0") {
            return false;
        }
        if crate::simd::best_level() < crate::simd::SimdLevel::Avx512Vnni {
            return false;
        }
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            x86::detect()
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        {
            false
        }
    })
}

/// A row-major `(rows, cols)` f32 matrix rounded to bf16 and packed in
/// tiles for [`gemm`].
#[derive(Clone, Debug)]
pub struct PackedBf16 {
    rows: usize,
    cols: usize,
    /// rows and cols rounded up to [`BLOCK`]
    rows_p: usize,
    cols_p: usize,
    /// `(rows_p / 16) × (cols_p / 32)` tiles of 16 × 32 bf16, ordered by row
    /// block of 16, then column block of 32.
    data: Vec<u16>,
    /// Per row block of 16, a 16 × 16 f32 tile whose every row is the bias
    /// of those 16 outputs (zeros without a bias): the C tiles start from
    /// it, so the bias costs nothing.
    bias: Vec<f32>,
}

impl PackedBf16 {
    /// Packs `w` (`rows × cols`, row-major) and the bias `b` (`rows`, or
    /// empty for none) added to every output.
    ///
    /// # Panics
    /// If `w` is shorter than `rows × cols`, or `b` neither empty nor `rows`.
    pub fn pack(w: &[f32], b: &[f32], rows: usize, cols: usize) -> PackedBf16 {
        assert!(
            b.is_empty() || b.len() == rows,
            "pack: bias of {} for {rows} rows",
            b.len()
        );
        assert!(
            w.len() >= rows * cols,
            "pack: {} floats < {rows} x {cols}",
            w.len()
        );
        let (rows_p, cols_p) = (rows.next_multiple_of(BLOCK), cols.next_multiple_of(BLOCK));
        let kbs = cols_p / 32;
        let mut data = vec![0u16; rows_p * cols_p];
        for r in 0..rows {
            let (nb, n) = (r / 16, r % 16);
            for (k, &v) in w[r * cols..(r + 1) * cols].iter().enumerate() {
                let (kb, kk) = (k / 32, k % 32);
                let tile = (nb * kbs + kb) * 512;
                data[tile + (kk / 2) * 32 + n * 2 + kk % 2] = to_bf16(v);
            }
        }
        let mut bias = vec![0f32; rows_p * 16];
        for (r, &v) in b.iter().enumerate() {
            let (nb, n) = (r / 16, r % 16);
            for row in 0..16 {
                bias[nb * 256 + row * 16 + n] = v;
            }
        }
        PackedBf16 {
            rows,
            cols,
            rows_p,
            cols_p,
            data,
            bias,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The bias of output `r` (0 without one).
    pub fn bias(&self, r: usize) -> f32 {
        self.bias[(r / 16) * 256 + r % 16]
    }

    /// Element (r, k) as stored (bf16).
    pub fn get(&self, r: usize, k: usize) -> u16 {
        let (nb, n, kb, kk) = (r / 16, r % 16, k / 32, k % 32);
        self.data[(nb * (self.cols_p / 32) + kb) * 512 + (kk / 2) * 32 + n * 2 + kk % 2]
    }
}

/// The plain reference: x rounded to bf16, each output the bias plus one
/// f32 sum of the exact bf16 products, in k order.
pub fn gemm_ref(w: &PackedBf16, x: &[f32], n: usize, y: &mut [f32]) {
    let (rows, cols) = (w.rows, w.cols);
    for t in 0..n {
        for r in 0..rows {
            let mut s = w.bias(r);
            for k in 0..cols {
                s += from_bf16(to_bf16(x[t * cols + k])) * from_bf16(w.get(r, k));
            }
            y[t * rows + r] = s;
        }
    }
}

/// `y (n, rows) = x (n, cols) · Wᵀ + b` on AMX tiles, split over the pool.
/// Equals [`gemm_ref`] up to the order of the f32 additions.
///
/// # Panics
/// If [`available`] is false, or `x` or `y` is too short.
pub fn gemm(pool: &ThreadPool, w: &PackedBf16, x: &[f32], n: usize, y: &mut [f32]) {
    assert!(available(), "amx::gemm without AMX (check amx::available)");
    let (rows, cols) = (w.rows, w.cols);
    assert!(
        x.len() >= n * cols,
        "amx gemm: x has {} floats, need {n} x {cols}",
        x.len()
    );
    assert!(
        y.len() >= n * rows,
        "amx gemm: y has {} floats, need {n} x {rows}",
        y.len()
    );
    if n == 0 || rows == 0 {
        return;
    }
    let n_p = n.next_multiple_of(BLOCK);
    let cols_p = w.cols_p;
    // x as bf16 in A-tile order: per group of 16 tokens, per 32 columns, a
    // 16 × 32 tile, so every tile load reads 1 KiB in a row.
    let kbs = cols_p / 32;
    let mut a = vec![0u16; n_p * cols_p];
    crate::par::for_each_chunk_mut(
        pool,
        &mut a[..n.div_ceil(16) * 16 * cols_p],
        16 * cols_p,
        |g, tiles| {
            let rows = (n - g * 16).min(16);
            round_group(&x[g * 16 * cols..(g * 16 + rows) * cols], cols, kbs, tiles);
        },
    );
    let t_blocks = n_p / BLOCK;
    let r_blocks = w.rows_p / BLOCK;
    let out = OutPtr(y.as_mut_ptr());
    let a = &a;
    pool.run(t_blocks * r_blocks.div_ceil(R_GROUP), |task| {
        let (tb, rg) = (
            task / r_blocks.div_ceil(R_GROUP),
            task % r_blocks.div_ceil(R_GROUP),
        );
        let r_end = ((rg + 1) * R_GROUP).min(r_blocks);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AMX was detected and granted (`available`); the tile
        // reads stay inside `a` (n_p × cols_p) and `w.data`; this task alone
        // writes tokens tb·32.. × rows rg·R_GROUP·32.. of y (n × rows).
        unsafe {
            x86::task(w, a, tb * BLOCK, n, rg * R_GROUP, r_end, out.get());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (tb, r_end, &out);
    });
}

/// Row blocks (of 32) per task: 4 → 128 outputs, so one A block of 32
/// tokens is reused across them while it sits in L1.
const R_GROUP: usize = 4;

/// Rounds `x` (up to 16 rows of `cols`) to bf16 into `tiles` (`kbs` A
/// tiles of 16 × 32, zero padded).
#[inline(always)]
fn round_group_ref(x: &[f32], cols: usize, kbs: usize, tiles: &mut [u16]) {
    for (tt, row) in x.chunks_exact(cols).enumerate() {
        for kb in 0..kbs {
            let src = &row[(kb * 32).min(cols)..((kb + 1) * 32).min(cols)];
            let dst = &mut tiles[kb * 512 + tt * 32..][..src.len()];
            for (o, &v) in dst.iter_mut().zip(src) {
                *o = to_bf16(v);
            }
        }
    }
}

fn round_group(x: &[f32], cols: usize, kbs: usize, tiles: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
        unsafe fn v512(x: &[f32], cols: usize, kbs: usize, tiles: &mut [u16]) {
            round_group_ref(x, cols, kbs, tiles)
        }
        if crate::simd::best_level() == crate::simd::SimdLevel::Avx512Vnni {
            // SAFETY: best_level only reports what the CPU has.
            return unsafe { v512(x, cols, kbs, tiles) };
        }
    }
    round_group_ref(x, cols, kbs, tiles)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::PackedBf16;
    use std::arch::asm;

    /// cpuid leaf 7: AMX-BF16 (edx bit 22) and AMX-TILE (bit 24), then
    /// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, which Linux
    /// requires before the first tile instruction (else SIGILL).
    #[cfg(target_os = "linux")]
    pub(super) fn detect() -> bool {
        let max = std::arch::x86_64::__cpuid(0).eax;
        if max < 7 {
            return false;
        }
        let l7 = std::arch::x86_64::__cpuid_count(7, 0);
        if l7.edx & (1 << 22) == 0 || l7.edx & (1 << 24) == 0 {
            return false;
        }
        const ARCH_REQ_XCOMP_PERM: u64 = 0x1023;
        const XFEATURE_XTILEDATA: u64 = 18;
        const SYS_ARCH_PRCTL: u64 = 158;
        let ret: i64;
        // SAFETY: the arch_prctl system call with two integer arguments; it
        // reads and writes no user memory for this request.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL as i64 => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack)
            );
        }
        ret == 0
    }

    /// Palette 1, all eight tiles 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig([u8; 64]);

    const CONFIG: TileConfig = {
        let mut c = [0u8; 64];
        c[0] = 1;
        let mut i = 0;
        while i < 8 {
            c[16 + 2 * i] = 64;
            c[48 + i] = 16;
            i += 1;
        }
        TileConfig(c)
    };

    /// Tokens `t0..t0+32` (of `n` real ones) × row blocks `rb0..rb1` of 32.
    ///
    /// # Safety
    /// AMX usable; `a` holds ≥ t0 + 32 padded rows of `w.cols_p`; `y` points
    /// at n × w.rows floats of which this call alone writes its block.
    pub(super) unsafe fn task(
        w: &PackedBf16,
        a: &[u16],
        t0: usize,
        n: usize,
        rb0: usize,
        rb1: usize,
        y: *mut f32,
    ) {
        let cols_p = w.cols_p;
        let kbs = cols_p / 32;
        let a0 = a[t0 * cols_p..].as_ptr();
        let a1 = a[(t0 + 16) * cols_p..].as_ptr();
        let mut c = [0f32; 4 * 256];
        // whole 32 × 32 blocks go straight to y; the ragged edges via `c`
        let direct_t = t0 + 32 <= n;
        // SAFETY: the config is a valid palette-1 layout.
        unsafe { asm!("ldtilecfg [{0}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly)) };
        for rb in rb0..rb1 {
            let b0 = w.data[(2 * rb) * kbs * 512..].as_ptr();
            let b1 = w.data[(2 * rb + 1) * kbs * 512..].as_ptr();
            let bias0 = w.bias[(2 * rb) * 256..].as_ptr();
            let bias1 = w.bias[(2 * rb + 1) * 256..].as_ptr();
            let direct = direct_t && (rb + 1) * 32 <= w.rows;
            // C tile (token half i, row half j) goes to `dst + i·16 rows +
            // j·16 floats` with row stride `ds` bytes.
            let (dst, ds) = if direct {
                // SAFETY: t0 + 32 ≤ n and rb·32 + 32 ≤ rows: inside y.
                (unsafe { y.add(t0 * w.rows + rb * 32) }, w.rows * 4)
            } else {
                (c.as_mut_ptr(), 32 * 4)
            };
            // SAFETY: the loads read one 1 KiB tile of `a` (token groups
            // t0/16 and t0/16 + 1, column block kb < cols_p / 32), of
            // `w.data`, or one bias tile; the stores write 16 rows of 64
            // bytes at dst (this task's block of y, or `c`, 32 × 32 floats).
            unsafe {
                asm!(
                    "tileloadd tmm0, [{bias0} + {s64}*1]",
                    "tileloadd tmm1, [{bias1} + {s64}*1]",
                    "tileloadd tmm2, [{bias0} + {s64}*1]",
                    "tileloadd tmm3, [{bias1} + {s64}*1]",
                    "2:",
                    "tileloadd tmm4, [{a0} + {s64}*1]",
                    "tileloadd tmm5, [{a1} + {s64}*1]",
                    "tileloadd tmm6, [{b0} + {s64}*1]",
                    "tileloadd tmm7, [{b1} + {s64}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    "add {a0}, 1024",
                    "add {a1}, 1024",
                    "add {b0}, 1024",
                    "add {b1}, 1024",
                    "dec {k}",
                    "jnz 2b",
                    "tilestored [{d0} + {ds}*1], tmm0",
                    "tilestored [{d0} + {ds}*1 + 64], tmm1",
                    "tilestored [{d1} + {ds}*1], tmm2",
                    "tilestored [{d1} + {ds}*1 + 64], tmm3",
                    a0 = inout(reg) a0 => _,
                    a1 = inout(reg) a1 => _,
                    b0 = inout(reg) b0 => _,
                    b1 = inout(reg) b1 => _,
                    k = inout(reg) kbs => _,
                    s64 = in(reg) 64usize,
                    bias0 = in(reg) bias0,
                    bias1 = in(reg) bias1,
                    d0 = in(reg) dst,
                    d1 = in(reg) dst.byte_add(16 * ds),
                    ds = in(reg) ds,
                    options(nostack)
                );
            }
            if direct {
                continue;
            }
            for tt in 0..32 {
                let t = t0 + tt;
                if t >= n {
                    break;
                }
                let r = rb * 32;
                let valid = w.rows.saturating_sub(r).min(32);
                // SAFETY: t < n and r + valid ≤ rows: inside y, in this
                // task's block; `c` row tt holds 32 floats.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        c.as_ptr().add(tt * 32),
                        y.add(t * w.rows + r),
                        valid,
                    )
                };
            }
        }
        // SAFETY: releases this thread's tile state.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn bf16_rounding_is_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to even
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        for v in data(1000, 9) {
            let r = from_bf16(to_bf16(v));
            assert!((r - v).abs() <= v.abs() / 256.0, "{v} → {r}");
        }
    }

    #[test]
    fn pack_keeps_every_element() {
        let (rows, cols) = (37, 70);
        let w = data(rows * cols, 1);
        let b = data(rows, 2);
        let p = PackedBf16::pack(&w, &b, rows, cols);
        for r in 0..rows {
            assert_eq!(p.bias(r), b[r]);
            for k in 0..cols {
                assert_eq!(p.get(r, k), to_bf16(w[r * cols + k]), "({r}, {k})");
            }
        }
        assert_eq!(PackedBf16::pack(&w, &[], rows, cols).bias(5), 0.0);
    }

    #[test]
    fn amx_gemm_matches_reference_on_ragged_shapes() {
        if !available() {
            eprintln!("amx_gemm_matches_reference: no AMX on this CPU, nothing to compare");
            return;
        }
        let pool = ThreadPool::new(2);
        for (n, rows, cols) in [
            (1, 16, 32),
            (5, 40, 70),
            (33, 96, 384),
            (70, 384, 384),
            (64, 1536, 384),
        ] {
            let w = data(rows * cols, 2);
            let x = data(n * cols, 3);
            let b = data(rows, 4);
            let p = PackedBf16::pack(&w, &b, rows, cols);
            let mut fast = vec![f32::NAN; n * rows];
            let mut slow = vec![0f32; n * rows];
            gemm(&pool, &p, &x, n, &mut fast);
            gemm_ref(&p, &x, n, &mut slow);
            for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                // sums of `cols` products of magnitude ≤ 1/4, f32 rounding
                assert!(
                    (a - b).abs() <= 1e-5 * cols as f32,
                    "({n},{rows},{cols}) #{i}: {a} vs {b}"
                );
            }
        }
    }
}
