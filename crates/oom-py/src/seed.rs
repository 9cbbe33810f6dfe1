//! Bindings used only by the 0.1.8-compatible `chunked_*` functions:
//! the lazy Pearson-residual transform.

use numpy::PyReadonlyArray1;
use oom_core::block::Dtype;
use oom_core::plan::Pearson;
use pyo3::prelude::*;

use crate::error::to_py;
use crate::matrix::Matrix;

/// `m` as analytic Pearson residuals (lazy, dense, `dtype`): per value
/// `clip((x − μ)/√(μ + μ²/θ), ±clip)` with `μ = row_sum[r]·col_sum[c]/total`.
#[pyfunction]
#[pyo3(signature = (m, row_sum, col_sum, total, theta, clip, dtype="float64"))]
// One argument per keyword of the Python call it backs.
#[allow(clippy::too_many_arguments)]
fn lazy_pearson_residuals(
    m: &Matrix,
    row_sum: PyReadonlyArray1<'_, f64>,
    col_sum: PyReadonlyArray1<'_, f64>,
    total: f64,
    theta: f64,
    clip: f64,
    dtype: &str,
) -> PyResult<Matrix> {
    let out = Dtype::from_name(dtype).map_err(to_py)?;
    let op = Pearson::new(
        row_sum.as_slice()?.to_vec(),
        col_sum.as_slice()?.to_vec(),
        total,
        theta,
        clip,
        out,
        m.view.nrows(),
        m.view.ncols(),
    )
    .map_err(to_py)?;
    Ok(m.with_op(op))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lazy_pearson_residuals, m)?)?;
    Ok(())
}
