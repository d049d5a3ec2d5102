//! simd (in progress)
