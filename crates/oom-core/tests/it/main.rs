//! Integration tests of the core: one binary, one module per area.

mod calls;
mod concat;
mod corrupt;
mod fixtures;
mod graph;
mod io;
mod pass_state;
mod plan_bytes;
mod scale;
mod sink;
mod zarr;
