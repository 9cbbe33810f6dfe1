//! Bindings for Leiden clustering: the graph comes in as scipy CSR arrays
//! (borrowed, not copied, while the core builds its own graph from them).

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use oom_core::graph::leiden::{leiden, Leiden, LeidenParams, Objective};
use oom_core::graph::weighted::{Graph, Weight};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::enter::enter;

fn run<W: Weight>(
    py: Python<'_>,
    n: usize,
    indptr: &[i64],
    indices: &[i32],
    data: &[W],
    p: &LeidenParams,
) -> PyResult<Leiden> {
    enter(py, |ctx| {
        let g = Graph::from_csr(n, indptr, indices, data)?;
        leiden(ctx, &g, p)
    })
}

/// Leiden communities of the `n × n` CSR graph (`indptr` int64, `indices`
/// int32, `data` float32 or float64), taken as undirected (A + Aᵀ) like
/// scanpy's igraph route. Returns `(membership, n_clusters, quality)`,
/// communities numbered by decreasing size.
#[pyfunction]
#[pyo3(name = "leiden", signature = (n, indptr, indices, data, resolution, objective, n_iterations, seed, beta=0.01))]
// One argument per keyword of the Python call it backs.
#[allow(clippy::too_many_arguments)]
fn leiden_py<'py>(
    py: Python<'py>,
    n: usize,
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i32>,
    data: &Bound<'py, PyAny>,
    resolution: f64,
    objective: &str,
    n_iterations: i64,
    seed: u64,
    beta: f64,
) -> PyResult<(Bound<'py, PyArray1<u32>>, usize, f64)> {
    let objective = match objective {
        "modularity" => Objective::Modularity,
        "cpm" | "CPM" => Objective::Cpm,
        other => {
            return Err(PyValueError::new_err(format!(
                "objective must be 'modularity' or 'CPM', got {other:?}"
            )))
        }
    };
    let p = LeidenParams {
        resolution,
        objective,
        beta,
        n_iterations,
        seed,
    };
    let (indptr, indices) = (indptr.as_slice()?, indices.as_slice()?);
    let r = if let Ok(d) = data.extract::<PyReadonlyArray1<'py, f32>>() {
        run(py, n, indptr, indices, d.as_slice()?, &p)?
    } else {
        let d = data.extract::<PyReadonlyArray1<'py, f64>>()?;
        run(py, n, indptr, indices, d.as_slice()?, &p)?
    };
    Ok((r.membership.into_pyarray(py), r.n_clusters, r.quality))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(leiden_py, m)?)?;
    Ok(())
}
