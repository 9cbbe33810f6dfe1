//! Bindings for the tools (`tl`): the Wilcoxon rank-sum pass of
//! `rank_genes_groups` (its group moments come from `pp.moments_py`).

use std::sync::Arc;

use numpy::{IntoPyArray, PyArrayMethods, PyReadonlyArray1};
use oom_core::kernels::ranks::{rank_sums, RankParams};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::enter::enter;
use crate::matrix::Matrix;

/// Per group × column rank sums and tie terms Σ(t³ − t), `(rank_sum, ties)`
/// (both `n_groups × ncols`). `groups[row]` = group id or `u32::MAX` (left
/// out); `reference` = a group id, or `None` for each group vs all rows.
/// `col_nnz` cuts the columns into bands of at most `budget` entries.
#[pyfunction]
#[pyo3(signature = (m, groups, n_groups, col_nnz, budget, reference=None))]
#[pyo3(name = "rank_sums")]
fn rank_sums_py<'py>(
    py: Python<'py>,
    m: &Matrix,
    groups: PyReadonlyArray1<'py, u32>,
    n_groups: usize,
    col_nnz: PyReadonlyArray1<'py, u64>,
    budget: u64,
    reference: Option<u32>,
) -> PyResult<Bound<'py, PyTuple>> {
    let p = RankParams {
        labels: Arc::new(groups.as_slice()?.to_vec()),
        n_labels: n_groups,
        reference,
        col_nnz: col_nnz.as_slice()?.to_vec(),
        budget,
    };
    let r = enter(py, |ctx| rank_sums(ctx, &m.view, &p))?;
    let shape = [n_groups, usize::try_from(m.view.ncols()).expect("fits")];
    PyTuple::new(
        py,
        [
            r.rank_sum.into_pyarray(py).reshape(shape)?,
            r.ties.into_pyarray(py).reshape(shape)?,
        ],
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rank_sums_py, m)?)?;
    Ok(())
}
