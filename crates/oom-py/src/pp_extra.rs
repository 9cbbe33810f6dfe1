//! Bindings of the transforms and the kernel behind `oom.pp.sqrt`,
//! `oom.pp.downsample_counts`, `oom.pp.combat` and `oom.get.aggregate`.

use std::sync::Arc;

use numpy::{IntoPyArray, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use oom_core::kernels::aggregate::col_group_sums;
use oom_core::plan::{Combat, Design, Downsample, Sqrt};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::enter::enter;
use crate::error::to_py;
use crate::matrix::Matrix;

/// A (k × p) array as `k` values per column, column after column.
fn by_column(a: &PyReadonlyArray2<'_, f64>) -> Vec<f64> {
    let a = a.as_array();
    let (k, p) = a.dim();
    (0..p)
        .flat_map(|j| (0..k).map(move |t| (t, j)))
        .map(|(t, j)| a[[t, j]])
        .collect()
}

/// `sqrt(m)` (lazy).
#[pyfunction]
fn lazy_sqrt(m: &Matrix) -> Matrix {
    m.with_op(Sqrt)
}

/// `m` with each row downsampled to `target[row]` counts (lazy; rows at or
/// under their target unchanged unless `always`).
#[pyfunction]
#[pyo3(signature = (m, target, seed, replace=false, always=false))]
fn lazy_downsample(
    m: &Matrix,
    target: PyReadonlyArray1<'_, u64>,
    seed: u64,
    replace: bool,
    always: bool,
) -> PyResult<Matrix> {
    let n = m.view.nrows();
    let target = target.as_slice()?.to_vec();
    if target.len() as u64 != n {
        return Err(PyValueError::new_err(format!(
            "target has length {}, expected {n}",
            target.len()
        )));
    }
    let op = Downsample {
        target: Arc::new(target),
        key: Arc::new((0..n).collect()),
        seed,
        replace,
        always,
    };
    Ok(m.with_op(op))
}

/// `m` batch-corrected by ComBat's adjustment (lazy, dense, float64).
/// `design` (n × w) and `coef` (w × p) give the standardising mean,
/// `gamma` and `delta_sqrt` are `n_batches × p`.
#[pyfunction]
// One argument per keyword of the Python call it backs.
#[allow(clippy::too_many_arguments)]
fn lazy_combat(
    m: &Matrix,
    design: PyReadonlyArray2<'_, f64>,
    coef: PyReadonlyArray2<'_, f64>,
    batch: PyReadonlyArray1<'_, u32>,
    sd: PyReadonlyArray1<'_, f64>,
    gamma: PyReadonlyArray2<'_, f64>,
    delta_sqrt: PyReadonlyArray2<'_, f64>,
) -> PyResult<Matrix> {
    let k = design.as_array().ncols();
    let op = Combat {
        design: Design::Dense {
            k,
            values: Arc::new(design.as_array().iter().copied().collect()),
        },
        coef: Arc::new(by_column(&coef)),
        batch: Arc::new(batch.as_slice()?.to_vec()),
        n_batches: gamma.as_array().nrows(),
        sd: Arc::new(sd.as_slice()?.to_vec()),
        gamma: Arc::new(by_column(&gamma)),
        delta_sqrt: Arc::new(by_column(&delta_sqrt)),
    };
    op.validate(m.view.nrows(), m.view.ncols()).map_err(to_py)?;
    Ok(m.with_op(op))
}

/// Per row and column group: `(sum, sumsq, n_nonzero)`, each `nrows × n_groups`
/// (`groups[col] = 2**32 - 1` leaves a column out).
#[pyfunction]
#[pyo3(name = "col_group_sums")]
fn col_group_sums_py<'py>(
    py: Python<'py>,
    m: &Matrix,
    groups: PyReadonlyArray1<'py, u32>,
    n_groups: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let g = groups.as_slice()?.to_vec();
    let out = enter(py, |ctx| col_group_sums(ctx, &m.view, &g, n_groups))?;
    let shape = [usize::try_from(m.view.nrows()).expect("fits"), n_groups];
    PyTuple::new(
        py,
        [
            out.sum.into_pyarray(py).reshape(shape)?.into_any(),
            out.sumsq.into_pyarray(py).reshape(shape)?.into_any(),
            out.n_nonzero.into_pyarray(py).reshape(shape)?.into_any(),
        ],
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lazy_sqrt, m)?)?;
    m.add_function(wrap_pyfunction!(lazy_downsample, m)?)?;
    m.add_function(wrap_pyfunction!(lazy_combat, m)?)?;
    m.add_function(wrap_pyfunction!(col_group_sums_py, m)?)?;
    Ok(())
}
