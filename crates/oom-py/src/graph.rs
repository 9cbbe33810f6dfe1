//! Bindings for the neighbourhood graph: kNN search and UMAP connectivities.

use numpy::{IntoPyArray, PyArrayMethods, PyReadonlyArray2};
use oom_core::graph::fuzzy::fuzzy_graph;
use oom_core::graph::knn::{knn, KnnOptions};
use pyo3::prelude::*;

use crate::enter::enter;

/// kNN of the rows of `x` (n × d, C-contiguous f32): `(indices int32
/// n × k, distances float64 n × k)`, each row itself first then by distance.
#[pyfunction]
#[pyo3(signature = (x, k, exact_max=20_000, nlist=0, coarse_dims=0, nprobe=8, qprobe=8, refine=0, kmeans_iters=6, seed=0))]
// One argument per keyword of the Python call it backs.
#[allow(clippy::too_many_arguments)]
fn knn_graph<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    k: usize,
    exact_max: usize,
    nlist: usize,
    coarse_dims: usize,
    nprobe: usize,
    qprobe: usize,
    refine: usize,
    kmeans_iters: usize,
    seed: u64,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let d = x.as_array().ncols();
    let xs = x.as_slice()?;
    let o = KnnOptions {
        k,
        exact_max,
        nlist,
        coarse_dims,
        nprobe,
        qprobe,
        refine,
        kmeans_iters,
        seed,
    };
    let g = enter(py, |ctx| knn(ctx, xs, d, &o))?;
    let n = g.indices.len() / k;
    let ind: Vec<i32> = g.indices.iter().map(|&v| v as i32).collect();
    let dist = g.distances();
    Ok((
        ind.into_pyarray(py).reshape([n, k])?.into_any(),
        dist.into_pyarray(py).reshape([n, k])?.into_any(),
    ))
}

/// UMAP connectivities of a kNN graph (`indices` int32 and `distances`
/// float32, n × k, itself first): CSR parts `(indptr int64, indices int32,
/// data float32)`.
#[pyfunction]
fn umap_connectivities<'py>(
    py: Python<'py>,
    indices: PyReadonlyArray2<'py, i32>,
    distances: PyReadonlyArray2<'py, f32>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let k = indices.as_array().ncols();
    let ind: Vec<u32> = indices
        .as_slice()?
        .iter()
        .map(|&v| if v < 0 { u32::MAX } else { v as u32 })
        .collect();
    let dist = distances.as_slice()?;
    let g = enter(py, |ctx| fuzzy_graph(ctx, &ind, dist, k))?;
    Ok((
        g.indptr.into_pyarray(py).into_any(),
        g.indices.into_pyarray(py).into_any(),
        g.data.into_pyarray(py).into_any(),
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(knn_graph, m)?)?;
    m.add_function(wrap_pyfunction!(umap_connectivities, m)?)?;
    Ok(())
}
