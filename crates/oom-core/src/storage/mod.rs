//! Where matrices live: HDF5 (`.h5ad`) files read by positioned reads with
//! parallel chunk decoding, Zarr v2/v3 stores, and our own spill files.

pub mod array;
pub mod cellranger;
pub mod container;
pub mod convert;
pub mod csr;
pub mod dense;
pub mod filters;
pub mod h5file;
pub mod matrix;
pub mod mtx;
pub mod origin;
pub mod remote;
pub mod transpose;
pub mod zarr;

pub use container::{open_store, Container};
pub use h5file::H5File;
pub use matrix::{open_matrix, StoredMatrix};
