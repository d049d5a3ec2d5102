//! llmos-model
