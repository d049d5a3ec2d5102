//! llmos-sample
