//! Writing lazy matrices into Zarr stores.

use std::path::PathBuf;

use oom_core::error::OomError;
use oom_core::sink::zarr::{write_matrix, ZarrFormat, ZarrWriteOptions};
use pyo3::prelude::*;

use crate::enter::enter;
use crate::matrix::Matrix;

/// Stream `matrix` (its lazy chain applied) into element `key` of the Zarr
/// store at `root` (format 2 or 3; `shard` = chunks per shard, format 3 only).
#[pyfunction]
#[pyo3(signature = (matrix, root, key, zarr_format, chunk, shard=None))]
fn write_zarr_matrix(
    py: Python<'_>,
    matrix: &Matrix,
    root: PathBuf,
    key: String,
    zarr_format: u8,
    chunk: u64,
    shard: Option<u64>,
) -> PyResult<()> {
    enter(py, |ctx| {
        let format = match zarr_format {
            2 => ZarrFormat::V2,
            3 => ZarrFormat::V3,
            f => {
                return Err(OomError::Value(format!(
                    "zarr_format must be 2 or 3, got {f}"
                )))
            }
        };
        write_matrix(
            ctx,
            &matrix.view,
            &root,
            &key,
            &ZarrWriteOptions {
                format,
                chunk,
                shard,
            },
        )
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(write_zarr_matrix, m)?)
}
