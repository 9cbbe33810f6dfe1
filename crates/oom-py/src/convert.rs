//! Blocks and vectors to numpy arrays (moved, not copied).

use numpy::{IntoPyArray, PyArray1, PyArrayMethods};
use oom_core::block::{Block, Values};
use oom_core::with_values;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

pub fn values_to_py(py: Python<'_>, v: Values) -> Bound<'_, PyAny> {
    with_values!(v, x => x.into_pyarray(py).into_any())
}

/// `("csr", data, indices, indptr, (nrows, ncols))` or `("dense", 2-D array)`.
pub fn block_to_py(py: Python<'_>, b: Block) -> PyResult<Bound<'_, PyTuple>> {
    match b {
        Block::Csr(c) => {
            let shape = (c.nrows, c.ncols);
            let data = values_to_py(py, c.data);
            let indices = c.indices.into_pyarray(py);
            let indptr = c.indptr.into_pyarray(py);
            PyTuple::new(
                py,
                [
                    "csr".into_pyobject(py)?.into_any(),
                    data,
                    indices.into_any(),
                    indptr.into_any(),
                    shape.into_pyobject(py)?.into_any(),
                ],
            )
        }
        Block::Dense(d) => {
            let (r, c) = (d.nrows, d.ncols);
            let arr = with_values!(d.data, x => x.into_pyarray(py).reshape([r, c])?.into_any());
            PyTuple::new(py, ["dense".into_pyobject(py)?.into_any(), arr])
        }
    }
}

pub fn f64_vec(py: Python<'_>, v: Vec<f64>) -> Bound<'_, PyArray1<f64>> {
    v.into_pyarray(py)
}

pub fn u64_vec(py: Python<'_>, v: Vec<u64>) -> Bound<'_, PyArray1<u64>> {
    v.into_pyarray(py)
}
