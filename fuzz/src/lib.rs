//! What the fuzz targets check, shared with the stable tests that replay
//! their corpora (`crates/*/tests/fuzz_*.rs` include these files by path).

pub mod corpus;
pub mod exposition;
pub mod histogram;
pub mod listener;
pub mod rules;
