//! `concat_matrices`: a lazy row concatenation of several `Matrix` views.

use numpy::PyReadonlyArray1;
use oom_core::block::Dtype;
use oom_core::plan::{Concat, ConcatPart, View};
use pyo3::prelude::*;

use crate::error::to_py;
use crate::matrix::Matrix;

/// Stack `parts` by rows; `colmaps[i][j]` is the output column of column `j`
/// of part `i` (`-1` = dropped). Output: `ncols` columns of `dtype`, CSR if
/// `sparse`, else dense with `fill` where a part has no value.
#[pyfunction]
#[pyo3(signature = (parts, colmaps, ncols, dtype, sparse, fill=0.0, key=None))]
fn concat_matrices(
    parts: Vec<PyRef<'_, Matrix>>,
    colmaps: Vec<PyReadonlyArray1<'_, i64>>,
    ncols: u64,
    dtype: &str,
    sparse: bool,
    fill: f64,
    key: Option<String>,
) -> PyResult<Matrix> {
    if parts.len() != colmaps.len() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{} matrices but {} column maps",
            parts.len(),
            colmaps.len()
        )));
    }
    let dtype = Dtype::from_name(dtype).map_err(to_py)?;
    let path = parts.first().map(|p| p.path.clone()).unwrap_or_default();
    let key = key.unwrap_or_else(|| format!("concat({} matrices)", parts.len()));
    let mut cparts = Vec::with_capacity(parts.len());
    for (p, m) in parts.iter().zip(&colmaps) {
        cparts.push(ConcatPart {
            view: p.view.clone(),
            colmap: m.as_slice()?.to_vec(),
        });
    }
    let stack = Concat::new(cparts, ncols, dtype, sparse, fill).map_err(to_py)?;
    let view = View::new(stack);
    Ok(Matrix { view, path, key })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(concat_matrices, m)?)
}
