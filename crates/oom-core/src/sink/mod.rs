//! Writers at the end of a plan: they pull the blocks of a view (its lazy
//! transforms applied) and store them in a file format. Storage only reads;
//! a sink may depend on the plan, storage never does.

pub mod h5ad;
mod h5chunks;
pub mod zarr;

pub use h5ad::{write_matrix as write_h5ad_matrix, H5adWriteOptions};
pub use h5chunks::Compression;
pub use zarr::{write_matrix as write_zarr_matrix, ZarrFormat, ZarrWriteOptions};

/// Numbers as their in-memory bytes: what a chunk of them stores.
pub(crate) fn as_bytes<T: crate::block::Scalar>(v: &[T]) -> &[u8] {
    // SAFETY: plain-old-data numbers viewed as bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}
