//! Where matrices live: HDF5 (`.h5ad`) files read by positioned reads with
//! parallel chunk decoding, and our own spill files.

pub mod array;
pub mod concat;
pub mod csr;
pub mod dense;
pub mod filters;
pub mod h5file;
pub mod matrix;
pub mod transpose;

pub use h5file::H5File;
pub use matrix::{open_matrix, StoredMatrix};
