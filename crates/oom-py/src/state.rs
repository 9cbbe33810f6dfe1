//! `_oom.PassState`: what a pass kernel (`qc_metrics`, `positive_counts`,
//! `count_above`, `moments`, `gram_state`, `pca_project`, `regress_stats`) returns — the core's
//! mergeable state of the rows it read. States of consecutive row ranges
//! combine in row order (`PassState.combine`), pickle as checked bytes, and
//! `finalize()` turns one into the pass's numpy results.

use numpy::{IntoPyArray, PyArrayMethods};
use oom_core::kernels::moments::Moments;
use oom_core::kernels::qc::{QcState, RARE_KEEP};
use oom_core::kernels::state::PassState as State;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::convert::values_to_py;
use crate::enter::enter;
use crate::error::to_py;

#[pyclass(module = "anndataoom._oom", frozen)]
pub struct PassState {
    pub state: State,
}

impl From<State> for PassState {
    fn from(state: State) -> Self {
        PassState { state }
    }
}

#[pymethods]
impl PassState {
    /// The state of `states`' rows one after the other (pass them in row order).
    #[staticmethod]
    fn combine(py: Python<'_>, states: Vec<PyRef<'_, PassState>>) -> PyResult<PassState> {
        let parts: Vec<State> = states.iter().map(|s| s.state.clone()).collect();
        Ok(enter(py, |_| State::combine(parts))?.into())
    }

    /// The kernel that made it.
    #[getter]
    fn kind(&self) -> &'static str {
        self.state.name()
    }

    /// Rows it covers (0 for `count_above`, which keeps no per-row result).
    #[getter]
    fn nrows(&self) -> u64 {
        self.state.nrows()
    }

    /// The pass's results, as its kernel documents them.
    fn finalize<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        finalize(py, self.state.clone())
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.state.to_bytes().map_err(to_py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let rebuild = py
            .import("anndataoom._oom")?
            .getattr("pass_state_from_bytes")?;
        PyTuple::new(
            py,
            [rebuild, PyTuple::new(py, [self.to_bytes(py)?])?.into_any()],
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "PassState({}, {} rows)",
            self.state.name(),
            self.state.nrows()
        )
    }
}

/// The state `PassState.to_bytes` wrote (`ValueError` for other bytes).
#[pyfunction]
fn pass_state_from_bytes(bytes: &[u8]) -> PyResult<PassState> {
    Ok(State::from_bytes(bytes).map_err(to_py)?.into())
}

fn finalize(py: Python<'_>, state: State) -> PyResult<Bound<'_, PyAny>> {
    Ok(match state {
        State::Qc {
            rows,
            top,
            masks,
            state: QcState { cols, rare },
        } => {
            let (n, p) = (rows.total.len(), cols.sum.len());
            PyTuple::new(
                py,
                [
                    rows.total.into_pyarray(py).into_any(),
                    rows.n_nonzero.into_pyarray(py).into_any(),
                    rows.top_cum.into_pyarray(py).reshape([n, top])?.into_any(),
                    rows.mask_sum
                        .into_pyarray(py)
                        .reshape([n, masks])?
                        .into_any(),
                    cols.sum.into_pyarray(py).into_any(),
                    cols.n_nonzero.into_pyarray(py).into_any(),
                    cols.non_counts.into_pyobject(py)?.into_any(),
                    rare.rows
                        .into_pyarray(py)
                        .reshape([p, RARE_KEEP])?
                        .into_any(),
                    rare.vals
                        .into_pyarray(py)
                        .reshape([p, RARE_KEEP])?
                        .into_any(),
                ],
            )?
            .into_any()
        }
        State::Positive(s) => PyTuple::new(
            py,
            [
                s.row_sum.into_pyarray(py).into_any(),
                s.row_pos.into_pyarray(py).into_any(),
                s.col_sum.into_pyarray(py).into_any(),
                s.col_pos.into_pyarray(py).into_any(),
            ],
        )?
        .into_any(),
        State::CountAbove(v) => v.into_pyarray(py).into_any(),
        State::Moments { moments, row_sum } => moments_to_py(py, moments, row_sum)?.into_any(),
        State::Gram(g) => {
            let p = g.ncols();
            let a = g.matrix(true, 1.0);
            let flat: Vec<f64> = (0..p * p).map(|i| a[(i / p, i % p)]).collect();
            PyTuple::new(
                py,
                [
                    g.n().into_pyobject(py)?.into_any(),
                    g.mean().to_vec().into_pyarray(py).into_any(),
                    flat.into_pyarray(py).reshape([p, p])?.into_any(),
                ],
            )?
            .into_any()
        }
        State::Regress(r) => {
            let width = r.width;
            let st = r.finish();
            let p = st.min.len();
            PyTuple::new(
                py,
                [
                    st.dtx.into_pyarray(py).reshape([width, p])?.into_any(),
                    st.min.into_pyarray(py).into_any(),
                    st.max.into_pyarray(py).into_any(),
                ],
            )?
            .into_any()
        }
        State::Rows { ncols, values } => {
            let n = values.len().checked_div(ncols).unwrap_or(0);
            values_to_py(py, values).call_method1("reshape", ((n, ncols),))?
        }
    })
}

/// The dict of `_oom.moments` (means and variances finalised here).
fn moments_to_py(py: Python<'_>, mo: Moments, row_sum: Vec<f64>) -> PyResult<Bound<'_, PyDict>> {
    let (mean, var) = mo.finalize();
    let d = PyDict::new(py);
    let shape = [mo.n.len(), mo.ncols];
    d.set_item("n", mo.n.into_pyarray(py))?;
    d.set_item("sum", mo.sum.into_pyarray(py).reshape(shape)?)?;
    d.set_item("sumsq", mo.sumsq.into_pyarray(py).reshape(shape)?)?;
    d.set_item("mean", mean.into_pyarray(py).reshape(shape)?)?;
    d.set_item("var", var.into_pyarray(py).reshape(shape)?)?;
    d.set_item("n_pos", mo.n_pos.into_pyarray(py).reshape(shape)?)?;
    d.set_item("n_nonzero", mo.n_nonzero.into_pyarray(py).reshape(shape)?)?;
    d.set_item("row_sum", row_sum.into_pyarray(py))?;
    d.set_item("non_integer", mo.non_integer)?;
    if let Some(u) = &mo.unmapped {
        let (mean, var) = u.finalize();
        d.set_item("unmapped_mean", mean.into_pyarray(py))?;
        d.set_item("unmapped_var", var.into_pyarray(py))?;
    }
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PassState>()?;
    m.add_function(wrap_pyfunction!(pass_state_from_bytes, m)?)?;
    Ok(())
}
