//! What a matrix reader needs from a file format: attributes, 1-D arrays
//! read by ranges and 2-D arrays read by rows. `.h5ad` (HDF5) and `.zarr`
//! (v2/v3) stores both provide it, so every matrix encoding is decoded once.

use std::path::Path;

use super::array::Array1;
use crate::block::{Dtype, Values};
use crate::error::{OomError, Result};

/// A dense 2-D array read by row ranges.
pub trait DenseRows: Send + Sync {
    fn nrows(&self) -> u64;
    fn ncols(&self) -> u64;
    fn dtype(&self) -> Dtype;
    /// Rows `r0..r1` as row-major values.
    fn read_rows(&self, r0: u64, r1: u64) -> Result<Values>;
}

/// An AnnData store: a tree of groups and arrays with attributes.
pub trait Container: Send + Sync {
    fn path(&self) -> &Path;
    fn exists(&self, key: &str) -> bool;
    fn is_group(&self, key: &str) -> bool;
    /// A string attribute of the element at `key`, if present.
    fn str_attr(&self, key: &str, name: &str) -> Option<String>;
    /// An integer-array attribute (e.g. `shape`).
    fn int_attr(&self, key: &str, name: &str) -> Option<Vec<i64>>;
    fn array1(&self, key: &str) -> Result<Box<dyn Array1>>;
    fn dense(&self, key: &str) -> Result<Box<dyn DenseRows>>;

    /// Fail unless the store holds AnnData (an `X`, or `obs` and `var`).
    fn ensure_anndata(&self) -> Result<()> {
        if self.exists("X") || (self.exists("obs") && self.exists("var")) {
            Ok(())
        } else {
            Err(OomError::format(
                self.path(),
                "/",
                "store is not AnnData: it has no 'X' and no 'obs'/'var'",
            ))
        }
    }
}

impl dyn Container + '_ {
    pub fn err(&self, key: &str, msg: impl Into<String>) -> OomError {
        OomError::format(self.path(), key, msg)
    }
}

/// Open `path` as an `.h5ad` file or, for a directory or a URL, a Zarr store.
pub fn open_store(path: &Path) -> Result<Box<dyn Container>> {
    if let Some(url) = path.to_str().filter(|p| super::remote::is_url(p)) {
        Ok(Box::new(super::zarr::ZarrStore::open_url(url)?))
    } else if path.is_dir() {
        Ok(Box::new(super::zarr::ZarrStore::open(path)?))
    } else {
        Ok(Box::new(super::h5file::H5File::open(path)?))
    }
}
