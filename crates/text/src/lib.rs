//! llmos-text
