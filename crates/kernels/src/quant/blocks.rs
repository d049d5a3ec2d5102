//! Byte layouts of the GGML blocks, as offsets into one block.
//!
//! Every block is little-endian and packed (no padding), exactly as ggml's
//! `block_*` structs in `ggml-common.h`. A SIMD kernel reads a block as a
//! `&[u8; BYTES]` and takes each field at the offset named here; the small
//! decoders at the bottom (`f16_at`, `k4_scale_min`, `q3k_scales`) are the
//! bit-twiddling that is easy to get wrong, shared by every kernel.
//!
//! Notation: `qs[32]` is 32 bytes; "nibble j" of a 32-element block lives in
//! byte `j % 16`, low nibble for `j < 16`, high nibble for `j >= 16`.

use half::{bf16, f16};

/// Elements per block of the legacy formats (q4_0 .. q8_1).
pub const QK: usize = 32;
/// Elements per super-block of the k-quants.
pub const QK_K: usize = llmos_gguf::QK_K;

/// `block_q4_0` (18 bytes, 32 elements): `d f16, qs[16]`.
/// x[j] = d * (nibble j - 8).
pub mod q4_0 {
    pub const BYTES: usize = 18;
    pub const D: usize = 0;
    pub const QS: usize = 2;
}

/// `block_q4_1` (20 bytes, 32 elements): `d f16, m f16, qs[16]`.
/// x[j] = d * nibble j + m.
pub mod q4_1 {
    pub const BYTES: usize = 20;
    pub const D: usize = 0;
    pub const M: usize = 2;
    pub const QS: usize = 4;
}

/// `block_q5_0` (22 bytes, 32 elements): `d f16, qh[4] (u32 LE: bit j is
/// bit 4 of element j), qs[16]`. x[j] = d * ((nibble j | hbit j << 4) - 16).
pub mod q5_0 {
    pub const BYTES: usize = 22;
    pub const D: usize = 0;
    pub const QH: usize = 2;
    pub const QS: usize = 6;
}

/// `block_q5_1` (24 bytes, 32 elements): `d f16, m f16, qh[4], qs[16]`.
/// x[j] = d * (nibble j | hbit j << 4) + m.
pub mod q5_1 {
    pub const BYTES: usize = 24;
    pub const D: usize = 0;
    pub const M: usize = 2;
    pub const QH: usize = 4;
    pub const QS: usize = 8;
}

/// `block_q8_0` (34 bytes, 32 elements): `d f16, qs[32] i8`. x[j] = d * qs[j].
pub mod q8_0 {
    pub const BYTES: usize = 34;
    pub const D: usize = 0;
    pub const QS: usize = 2;
}

/// `block_q8_1` (36 bytes, 32 elements): `d f16, s f16, qs[32] i8`, where
/// `s = d * sum(qs)` lets q4_1/q5_1 dots add the `m` term without a pass
/// over the activations.
pub mod q8_1 {
    pub const BYTES: usize = 36;
    pub const D: usize = 0;
    pub const S: usize = 2;
    pub const QS: usize = 4;
}

/// `block_q2_K` (84 bytes, 256 elements): `scales[16] (low nibble: scale,
/// high nibble: min, per 16 elements), qs[64] (2-bit), d f16, dmin f16`.
///
/// Element order: for half h in 0..2 (128 elements, `qs[32h..32h+32]`), for
/// shift s in 0,2,4,6: 32 elements `(qs[32h + l] >> s) & 3`, l in 0..32.
/// Sub-block i (16 elements) uses `scales[i]`:
/// x = d * (scales[i] & 15) * q - dmin * (scales[i] >> 4).
pub mod q2_k {
    pub const BYTES: usize = 84;
    pub const SCALES: usize = 0;
    pub const QS: usize = 16;
    pub const D: usize = 80;
    pub const DMIN: usize = 82;
}

/// `block_q3_K` (110 bytes, 256 elements): `hmask[32], qs[64] (low 2 bits),
/// scales[12] (sixteen 6-bit scales, see [`super::q3k_scales`]), d f16`.
///
/// Element order as q2_K; element `l` of shift-group `g` (g = 4h + s/2, the
/// g-th run of 32) takes its high bit from `hmask[l] >> g & 1`. A *clear*
/// high bit subtracts 4: q = low2 - (hbit ? 0 : 4), in -4..=3.
/// x = d * (scale - 32) * q.
pub mod q3_k {
    pub const BYTES: usize = 110;
    pub const HMASK: usize = 0;
    pub const QS: usize = 32;
    pub const SCALES: usize = 96;
    pub const D: usize = 108;
}

/// `block_q4_K` (144 bytes, 256 elements): `d f16, dmin f16, scales[12]
/// (eight 6-bit scales and eight 6-bit mins, see [`super::k4_scale_min`]),
/// qs[128]`.
///
/// 64 elements per `qs[32c..32c+32]` chunk c: low nibbles are sub-block 2c,
/// high nibbles sub-block 2c+1 (32 elements each).
/// x = d * sc * q - dmin * m.
pub mod q4_k {
    pub const BYTES: usize = 144;
    pub const D: usize = 0;
    pub const DMIN: usize = 2;
    pub const SCALES: usize = 4;
    pub const QS: usize = 16;
}

/// `block_q5_K` (176 bytes, 256 elements): `d f16, dmin f16, scales[12] (as
/// q4_K), qh[32], qs[128]`.
///
/// As q4_K, plus bit 4 of sub-block i's element l is `qh[l] >> i & 1`.
/// x = d * sc * q - dmin * m.
pub mod q5_k {
    pub const BYTES: usize = 176;
    pub const D: usize = 0;
    pub const DMIN: usize = 2;
    pub const SCALES: usize = 4;
    pub const QH: usize = 16;
    pub const QS: usize = 48;
}

/// `block_q6_K` (210 bytes, 256 elements): `ql[128] (low 4 bits), qh[64]
/// (high 2 bits), scales[16] i8 (per 16 elements), d f16`.
///
/// Per half h (128 elements, `ql[64h..]`, `qh[32h..]`), for l in 0..32:
/// element 128h + 32k + l, k in 0..4, has low nibble from
/// `ql[64h + l + 32 (k & 1)]` (low nibble for k < 2, high for k >= 2) and
/// high bits `qh[32h + l] >> 2k & 3`; q = (low | high << 4) - 32.
/// x = d * scales[8h + 2k + l / 16] * q.
pub mod q6_k {
    pub const BYTES: usize = 210;
    pub const QL: usize = 0;
    pub const QH: usize = 128;
    pub const SCALES: usize = 192;
    pub const D: usize = 208;
}

/// `block_q8_K` (292 bytes, 256 elements): `d f32, qs[256] i8, bsums[16]
/// i16` where `bsums[i]` is the sum of `qs[16i..16i+16]`. The activation
/// format of all k-quant dots; the bsums pay for the `- dmin * m` term.
pub mod q8_k {
    pub const BYTES: usize = 292;
    pub const D: usize = 0;
    pub const QS: usize = 4;
    pub const BSUMS: usize = 260;
}

/// The f16 stored at byte `off` of `b`, widened to f32 (exact).
#[inline]
pub fn f16_at(b: &[u8], off: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[off], b[off + 1]])).to_f32()
}

/// The bf16 stored at byte `off` of `b`, widened to f32 (exact).
#[inline]
pub fn bf16_at(b: &[u8], off: usize) -> f32 {
    bf16::from_bits(u16::from_le_bytes([b[off], b[off + 1]])).to_f32()
}

/// The f32 stored at byte `off` of `b`.
#[inline]
pub fn f32_at(b: &[u8], off: usize) -> f32 {
    f32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The u32 stored at byte `off` of `b` (q5_0 / q5_1 `qh`).
#[inline]
pub fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Scale and min of sub-block `j` (0..8) of a q4_K / q5_K block, from its
/// 12 packed bytes (ggml's `get_scale_min_k4`):
///
/// ```text
///  0..4   EEAAAAAA   A-D: 6-bit scales 0-3, E-H: high 2 bits of scales 4-7
///  4..8   eeaaaaaa   a-d: 6-bit mins 0-3,   e-h: high 2 bits of mins 4-7
///  8..12  eeeeEEEE   low 4 bits of min (high nibble) and scale 4-7
/// ```
#[inline]
pub fn k4_scale_min(q: &[u8; 12], j: usize) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The sixteen 6-bit scales of a q3_K block, *before* the `- 32` offset
/// (0..64). Scale j has low 4 bits from byte `j % 8` (low nibble for
/// j < 8, high for j >= 8) and high 2 bits from byte `8 + j % 4`, bits
/// `2 (j / 4)..`.
#[inline]
pub fn q3k_scales(q: &[u8; 12]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (j, s) in out.iter_mut().enumerate() {
        let low = if j < 8 { q[j] & 0x0F } else { q[j - 8] >> 4 };
        let high = (q[8 + j % 4] >> (2 * (j / 4))) & 3;
        *s = low | (high << 4);
    }
    out
}

/// Iterate `bytes` as fixed-size blocks; a short tail is ignored (callers
/// check sizes first, so there is none).
#[inline]
pub(crate) fn chunks<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = &[u8; N]> {
    bytes.chunks_exact(N).filter_map(|c| c.try_into().ok())
}

/// The i8 at byte `off` of `b`.
#[inline]
pub(crate) fn i8_at(b: &[u8], off: usize) -> i8 {
    b[off] as i8
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmos_gguf::GgmlType;

    #[test]
    fn block_sizes_match_the_type_table() {
        for (ty, bytes) in [
            (GgmlType::Q4_0, q4_0::BYTES),
            (GgmlType::Q4_1, q4_1::BYTES),
            (GgmlType::Q5_0, q5_0::BYTES),
            (GgmlType::Q5_1, q5_1::BYTES),
            (GgmlType::Q8_0, q8_0::BYTES),
            (GgmlType::Q8_1, q8_1::BYTES),
            (GgmlType::Q2_K, q2_k::BYTES),
            (GgmlType::Q3_K, q3_k::BYTES),
            (GgmlType::Q4_K, q4_k::BYTES),
            (GgmlType::Q5_K, q5_k::BYTES),
            (GgmlType::Q6_K, q6_k::BYTES),
            (GgmlType::Q8_K, q8_k::BYTES),
        ] {
            assert_eq!(ty.type_size(), bytes, "{ty}");
        }
        // The last field of each block ends exactly at BYTES.
        assert_eq!(q4_0::QS + 16, q4_0::BYTES);
        assert_eq!(q4_1::QS + 16, q4_1::BYTES);
        assert_eq!(q5_0::QS + 16, q5_0::BYTES);
        assert_eq!(q5_1::QS + 16, q5_1::BYTES);
        assert_eq!(q8_0::QS + 32, q8_0::BYTES);
        assert_eq!(q8_1::QS + 32, q8_1::BYTES);
        assert_eq!(q2_k::DMIN + 2, q2_k::BYTES);
        assert_eq!(q3_k::D + 2, q3_k::BYTES);
        assert_eq!(q4_k::QS + 128, q4_k::BYTES);
        assert_eq!(q5_k::QS + 128, q5_k::BYTES);
        assert_eq!(q6_k::D + 2, q6_k::BYTES);
        assert_eq!(q8_k::BSUMS + 32, q8_k::BYTES);
    }

    #[test]
    fn k4_scale_min_unpacks_each_field() {
        // Scale 5 = 0b10_1001: low 4 bits in byte 9 low nibble, high 2 bits
        // in byte 1's top bits. Min 5 = 0b01_0110: byte 9 high nibble, byte
        // 5's top bits.
        let mut q = [0u8; 12];
        q[9] = 0b0110_1001;
        q[1] = 0b10 << 6 | 7; // low 6 bits are scale 1
        q[5] = 0b01 << 6 | 9; // low 6 bits are min 1
        assert_eq!(k4_scale_min(&q, 5), (0b10_1001, 0b01_0110));
        assert_eq!(k4_scale_min(&q, 1), (7, 9));
    }

    #[test]
    fn q3k_scales_unpack_each_field() {
        let mut q = [0u8; 12];
        q[2] = 0xA5; // scale 2 low = 5, scale 10 low = 10
        q[10] = 0b11_01_10_00; // scale 2 hi = 0, 6 hi = 2, 10 hi = 1, 14 hi = 3
        let s = q3k_scales(&q);
        assert_eq!(s[2], 5);
        assert_eq!(s[10], 10 | 1 << 4);
        assert_eq!(s[6], 2 << 4);
        assert_eq!(s[14], 3 << 4);
    }
}
