//! Streaming statistics: each is a mergeable state filled block by block.

pub mod gram;
pub mod moments;
pub mod qc;
pub mod sums;
