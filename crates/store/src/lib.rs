//! llmos-store
