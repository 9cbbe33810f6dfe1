//! anndataoom's engine: AnnData matrices streamed from disk in row blocks,
//! lazy transforms over them, and fused multithreaded kernels.
//! No Python here; `oom-py` binds it.

pub mod block;
pub mod cpu;
pub mod ctx;
pub mod error;
pub mod exec;
pub mod frame;
pub mod graph;
pub mod kernels;
pub mod linalg;
pub mod memo;
pub mod plan;
pub mod rng;
pub mod sink;
pub mod storage;

pub use ctx::Ctx;
pub use error::{OomError, Result};
