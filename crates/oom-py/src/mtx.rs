//! MatrixMarket parsing, as a lazy matrix over unnamed spill files.

use std::path::PathBuf;
use std::sync::Arc;

use oom_core::plan::View;
use pyo3::prelude::*;

use crate::enter::enter;
use crate::matrix::Matrix;

/// Parse the (gzipped) MatrixMarket file at `path` into a float32 CSR held
/// in temp files that vanish with the matrix; `transpose` reads the file's
/// columns as rows.
#[pyfunction]
#[pyo3(signature = (path, transpose=false))]
fn read_mtx(py: Python<'_>, path: PathBuf, transpose: bool) -> PyResult<Matrix> {
    let view = enter(py, |ctx| {
        Ok(View::new(Arc::new(oom_core::storage::mtx::read_mtx(
            ctx, &path, transpose,
        )?)))
    })?;
    Ok(Matrix {
        view,
        path: path.display().to_string(),
        key: String::new(),
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_mtx, m)?)
}
