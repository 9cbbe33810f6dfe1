//! Integration tests of the core: one binary, one module per area.

mod fixtures;
mod corrupt;
mod io;
mod scale;
mod graph;
mod zarr;
