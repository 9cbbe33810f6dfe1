//! Writing lazy matrices into `.h5ad` (HDF5) files.

use std::path::PathBuf;

use oom_core::sink::{write_h5ad_matrix as write, Compression, H5adWriteOptions};
use pyo3::prelude::*;

use crate::enter::enter;
use crate::matrix::Matrix;

/// Stream `matrix` (its lazy chain applied) into element `key` of the HDF5
/// file at `path` (created if missing), compressed like h5py's
/// `compression`/`compression_opts` (None, "gzip", "lzf"). `chunk` is the
/// values per chunk; `index32_limit` where int32 index arrays give way to
/// int64 (2^31; smaller only for tests).
#[pyfunction]
#[pyo3(signature = (matrix, path, key, compression=None, compression_opts=None,
                    chunk=65536, index32_limit=2147483648))]
#[allow(clippy::too_many_arguments)]
fn write_h5ad_matrix(
    py: Python<'_>,
    matrix: &Matrix,
    path: PathBuf,
    key: String,
    compression: Option<String>,
    compression_opts: Option<i64>,
    chunk: u64,
    index32_limit: u64,
) -> PyResult<()> {
    enter(py, |ctx| {
        let opts = H5adWriteOptions {
            compression: Compression::from_h5py(compression.as_deref(), compression_opts)?,
            chunk,
            index32_limit,
        };
        write(ctx, &matrix.view, &path, &key, &opts)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(write_h5ad_matrix, m)?)
}
