//! x86-64 dot kernels: AVX2 (+FMA, F16C) and AVX-512 VNNI.

use super::{Dot4Fn, DotFn, SimdLevel};
use llmos_gguf::GgmlType;

/// AVX2 level: AVX2, FMA and F16C (every x86-64 CPU since Haswell).
pub(super) fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

/// AVX-512 VNNI level: the AVX2 level plus AVX-512 F/BW/VL and VNNI.
pub(super) fn has_avx512vnni() -> bool {
    has_avx2()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

/// The kernels for `ty` at `level` (`None`: use the scalar reference).
pub(super) fn kernels(level: SimdLevel, ty: GgmlType) -> (Option<DotFn>, Option<Dot4Fn>) {
    let _ = (level, ty);
    (None, None)
}
