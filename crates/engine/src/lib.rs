//! llmos-engine
