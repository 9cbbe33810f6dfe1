//! Bindings for PCA (Gram/Krylov solvers, projection) and regress-out
//! (sufficient statistics, lazy residual op).

use std::sync::Arc;

use faer::Mat;
use numpy::{IntoPyArray, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use oom_core::block::Dtype;
use oom_core::kernels::gram::{GramState, Precision};
use oom_core::kernels::regress::regress_stats;
use oom_core::linalg::pca::{fit, fit_gram, gram_pass, project, PcaFit, PcaOptions, Solver};
use oom_core::plan::{Design, Regress};
use oom_core::OomError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::values_to_py;
use crate::enter::enter;
use crate::error::to_py;
use crate::matrix::Matrix;

fn precision(name: &str) -> PyResult<Precision> {
    match name {
        "float32" => Ok(Precision::F32),
        "float64" => Ok(Precision::F64),
        other => Err(to_py(OomError::Value(format!(
            "precision must be 'float32' or 'float64', not '{other}'"
        )))),
    }
}

/// PCA of every row and column of `m` in two or more passes.
///
/// Returns a dict: `scores` (n × k, `dtype`), `components` (p × k f64),
/// `variance`, `variance_ratio`, `mean`, `solver`, `passes`.
#[pyfunction]
#[pyo3(signature = (m, n_comps, zero_center=true, solver="auto", precision="float32", seed=0, tol=1e-7, max_passes=200, dtype="float32", full_eigh_max=4000, block=0))]
// One argument per keyword of the Python call it backs.
#[allow(clippy::too_many_arguments)]
fn pca<'py>(
    py: Python<'py>,
    m: &Matrix,
    n_comps: usize,
    zero_center: bool,
    solver: &str,
    precision: &str,
    seed: u64,
    tol: f64,
    max_passes: usize,
    dtype: &str,
    full_eigh_max: usize,
    block: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let o = PcaOptions {
        n_comps,
        zero_center,
        solver: Solver::from_name(solver).map_err(to_py)?,
        precision: self::precision(precision)?,
        seed,
        tol,
        max_passes,
        full_eigh_max,
        block,
    };
    let out = Dtype::from_name(dtype).map_err(to_py)?;
    let view = &m.view;
    let (f, scores) = enter(py, |ctx| {
        let f = fit(ctx, view, &o)?;
        let s = project(
            ctx,
            view,
            &f.components,
            f.zero_center.then_some(&f.mean[..]),
            out,
        )?;
        Ok((f, s))
    })?;
    let n = usize::try_from(f.n_obs).expect("fits");
    let k = f.components.ncols();
    let d = fit_to_py(py, f)?;
    d.set_item(
        "scores",
        values_to_py(py, scores).call_method1("reshape", ((n, k),))?,
    )?;
    Ok(d)
}

/// `components` (p × k f64), `variance`, `variance_ratio`, `mean`, `solver`, `passes`.
fn fit_to_py(py: Python<'_>, f: PcaFit) -> PyResult<Bound<'_, PyDict>> {
    let (p, k) = (f.components.nrows(), f.components.ncols());
    let comps: Vec<f64> = (0..p * k).map(|i| f.components[(i / k, i % k)]).collect();
    let d = PyDict::new(py);
    d.set_item("components", comps.into_pyarray(py).reshape([p, k])?)?;
    d.set_item("variance", f.variance.into_pyarray(py))?;
    d.set_item("variance_ratio", f.variance_ratio.into_pyarray(py))?;
    d.set_item("mean", f.mean.into_pyarray(py))?;
    d.set_item("solver", f.solver)?;
    d.set_item("passes", f.passes)?;
    Ok(d)
}

/// The PCA fit (no scores) from the Gram states of consecutive row ranges,
/// `(n, mean, M2)` as `gram_state` returns them, combined in order and
/// solved exactly as the in-process Gram route (`dask.distributed` runs).
#[pyfunction]
#[pyo3(signature = (states, n_comps, zero_center=true, seed=0, full_eigh_max=4000))]
fn pca_from_gram_states<'py>(
    py: Python<'py>,
    states: Vec<(u64, PyReadonlyArray1<'py, f64>, PyReadonlyArray2<'py, f64>)>,
    n_comps: usize,
    zero_center: bool,
    seed: u64,
    full_eigh_max: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let mut merged: Option<GramState> = None;
    for (i, (n, mean, m2)) in states.iter().enumerate() {
        let mean = mean.as_slice()?.to_vec();
        let m2 = m2.as_array();
        let p = mean.len();
        if m2.shape() != [p, p] {
            return Err(to_py(OomError::Value(format!(
                "Gram state {i}: M2 is {:?}, its mean has {p} entries",
                m2.shape()
            ))));
        }
        let st = GramState::from_parts(
            *n,
            mean,
            Mat::from_fn(p, p, |a, b| m2[[a, b]]),
            Precision::F64,
        );
        match &mut merged {
            None => merged = Some(st),
            Some(m) if m.ncols() != p => {
                return Err(to_py(OomError::Value(format!(
                    "Gram state {i} has {p} columns, the first {}",
                    m.ncols()
                ))))
            }
            Some(m) => m.combine(&st),
        }
    }
    let st = merged.ok_or_else(|| to_py(OomError::Value("no Gram states".into())))?;
    let o = PcaOptions {
        n_comps,
        zero_center,
        seed,
        full_eigh_max,
        ..Default::default()
    };
    let f = enter(py, |_| fit_gram(&st, &o))?;
    fit_to_py(py, f)
}

/// Scores `(x − mean)·components` (no centring without `mean`) of every row
/// of `m`, n × k in `dtype`: the projection pass of `pca`.
#[pyfunction]
#[pyo3(signature = (m, components, mean=None, dtype="float32"))]
fn pca_project<'py>(
    py: Python<'py>,
    m: &Matrix,
    components: PyReadonlyArray2<'py, f64>,
    mean: Option<PyReadonlyArray1<'py, f64>>,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let c = components.as_array();
    let (p, k) = (c.nrows(), c.ncols());
    let components = Mat::from_fn(p, k, |a, b| c[[a, b]]);
    let mean = mean.as_ref().map(PyReadonlyArray1::as_slice).transpose()?;
    let out = Dtype::from_name(dtype).map_err(to_py)?;
    let n = usize::try_from(m.view.nrows()).expect("fits");
    let scores = enter(py, |ctx| project(ctx, &m.view, &components, mean, out))?;
    values_to_py(py, scores).call_method1("reshape", ((n, k),))
}

/// One pass: `(n, mean, M2)` with `M2 = Σ(x−μ)(x−μ)ᵀ` (p × p, f64), by the
/// route `pca` takes (sparse values before a scale when that pays).
#[pyfunction]
#[pyo3(signature = (m, precision="float32"))]
fn gram_state<'py>(
    py: Python<'py>,
    m: &Matrix,
    precision: &str,
) -> PyResult<(u64, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let prec = self::precision(precision)?;
    let st = enter(py, |ctx| gram_pass(ctx, &m.view, prec))?;
    let p = st.ncols();
    let a = st.matrix(true, 1.0);
    let flat: Vec<f64> = (0..p * p).map(|i| a[(i / p, i % p)]).collect();
    Ok((
        st.n(),
        st.mean().to_vec().into_pyarray(py).into_any(),
        flat.into_pyarray(py).reshape([p, p])?.into_any(),
    ))
}

fn design(
    nrows: u64,
    values: Option<PyReadonlyArray2<'_, f64>>,
    codes: Option<PyReadonlyArray1<'_, u32>>,
    ngroups: usize,
) -> PyResult<Design> {
    let d = match (values, codes) {
        (Some(v), None) => {
            let k = v.as_array().ncols();
            Design::Dense {
                k,
                values: Arc::new(v.as_array().iter().copied().collect()),
            }
        }
        (None, Some(c)) => Design::Groups {
            ngroups,
            codes: Arc::new(c.as_slice()?.to_vec()),
        },
        _ => {
            return Err(to_py(OomError::Value(
                "give exactly one of `design` and `codes`".into(),
            )))
        }
    };
    d.validate(nrows).map_err(to_py)?;
    Ok(d)
}

/// One pass: `(DᵀX (width × p), col_min, col_max)` for a dense design
/// (n × k) or group codes (`ngroups` groups; `DᵀX` = group sums).
#[pyfunction]
#[pyo3(name = "regress_stats", signature = (m, design=None, codes=None, ngroups=0))]
fn regress_stats_py<'py>(
    py: Python<'py>,
    m: &Matrix,
    design: Option<PyReadonlyArray2<'_, f64>>,
    codes: Option<PyReadonlyArray1<'_, u32>>,
    ngroups: usize,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let d = self::design(m.view.nrows(), design, codes, ngroups)?;
    let view = &m.view;
    let st = enter(py, |ctx| regress_stats(ctx, view, &d))?;
    let (w, p) = (d.width(), usize::try_from(m.view.ncols()).expect("fits"));
    Ok((
        st.dtx.into_pyarray(py).reshape([w, p])?.into_any(),
        st.min.into_pyarray(py).into_any(),
        st.max.into_pyarray(py).into_any(),
    ))
}

/// `m` with residuals `x − D[r]·coef[:, c]` (lazy, dense, `dtype`);
/// `coef` is width × p.
#[pyfunction]
#[pyo3(signature = (m, coef, dtype, design=None, codes=None, ngroups=0))]
fn lazy_regress(
    m: &Matrix,
    coef: PyReadonlyArray2<'_, f64>,
    dtype: &str,
    design: Option<PyReadonlyArray2<'_, f64>>,
    codes: Option<PyReadonlyArray1<'_, u32>>,
    ngroups: usize,
) -> PyResult<Matrix> {
    let d = self::design(m.view.nrows(), design, codes, ngroups)?;
    let c = coef.as_array();
    let (w, p) = (c.shape()[0], c.shape()[1]);
    // Column after column: coef[:, c] contiguous.
    let flat: Vec<f64> = (0..p)
        .flat_map(|j| (0..w).map(move |t| (t, j)))
        .map(|(t, j)| c[[t, j]])
        .collect();
    let out = Dtype::from_name(dtype).map_err(to_py)?;
    let op = Regress::new(d, flat, out, m.view.nrows(), m.view.ncols()).map_err(to_py)?;
    Ok(m.with_op(op))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pca, m)?)?;
    m.add_function(wrap_pyfunction!(gram_state, m)?)?;
    m.add_function(wrap_pyfunction!(pca_from_gram_states, m)?)?;
    m.add_function(wrap_pyfunction!(pca_project, m)?)?;
    m.add_function(wrap_pyfunction!(regress_stats_py, m)?)?;
    m.add_function(wrap_pyfunction!(lazy_regress, m)?)?;
    Ok(())
}
