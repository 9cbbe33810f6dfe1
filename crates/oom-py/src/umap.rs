//! Bindings for UMAP on a CSR graph (`obsp['connectivities']`): the
//! spectral initialisation of one connected component and the SGD layout.

use numpy::{
    IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use oom_core::graph::spectral::spectral_layout;
use oom_core::graph::umap::{optimize_layout, SgdParams};
use oom_core::graph::Csr;
use pyo3::prelude::*;

use crate::enter::enter;

/// Spectral layout of a connected graph: `(coords n × dim f64, residual, converged)`.
#[pyfunction]
#[pyo3(signature = (indptr, indices, data, dim, seed, tol=1e-4, max_products=100))]
// One argument per keyword of the Python call it backs.
#[allow(clippy::too_many_arguments)]
fn umap_spectral<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i32>,
    data: PyReadonlyArray1<'py, f32>,
    dim: usize,
    seed: u64,
    tol: f64,
    max_products: usize,
) -> PyResult<(Bound<'py, PyArray2<f64>>, f64, bool)> {
    let g = Csr {
        indptr: indptr.as_slice()?,
        indices: as_unsigned(indices.as_slice()?),
        data: data.as_slice()?,
    };
    let s = enter(py, |ctx| {
        g.validate()?;
        spectral_layout(ctx, &g, dim, seed, tol, max_products)
    })?;
    let coords = s.coords.into_pyarray(py).reshape([g.n(), dim])?;
    Ok((coords, s.residual, s.converged))
}

/// umap-learn's SGD layout from `init` (n × dim f32, scaled to [0, 10]);
/// returns the embedding (n × dim f32).
#[pyfunction]
#[pyo3(signature = (indptr, indices, data, init, n_epochs, prune_epochs, a, b, gamma, alpha, negative_sample_rate, seed))]
// One argument per keyword of the Python call it backs.
#[allow(clippy::too_many_arguments)]
fn umap_layout<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i32>,
    data: PyReadonlyArray1<'py, f32>,
    init: PyReadonlyArray2<'py, f32>,
    n_epochs: usize,
    prune_epochs: usize,
    a: f32,
    b: f32,
    gamma: f32,
    alpha: f32,
    negative_sample_rate: f32,
    seed: u64,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let g = Csr {
        indptr: indptr.as_slice()?,
        indices: as_unsigned(indices.as_slice()?),
        data: data.as_slice()?,
    };
    let dim = init.shape()[1];
    let mut emb = init.as_array().iter().copied().collect::<Vec<f32>>();
    let p = SgdParams {
        n_epochs,
        a,
        b,
        gamma,
        alpha,
        negative_sample_rate,
        prune_epochs,
        seed,
    };
    let emb = enter(py, |ctx| {
        g.validate()?;
        optimize_layout(ctx, &g, &mut emb, dim, &p)?;
        Ok(emb)
    })?;
    emb.into_pyarray(py).reshape([g.n(), dim])
}

/// scipy's int32 column indices seen as `u32` without a copy (100 MB at a
/// million cells): a negative index becomes ≥ 2³¹, which `Csr::validate`
/// rejects as out of range like any other.
fn as_unsigned(indices: &[i32]) -> &[u32] {
    // SAFETY: i32 and u32 have the same size and alignment and every bit
    // pattern is valid for both; the slice keeps the borrow's lifetime.
    unsafe { std::slice::from_raw_parts(indices.as_ptr().cast::<u32>(), indices.len()) }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(umap_spectral, m)?)?;
    m.add_function(wrap_pyfunction!(umap_layout, m)?)?;
    Ok(())
}
