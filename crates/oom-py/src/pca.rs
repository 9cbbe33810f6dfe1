//! Bindings for PCA (Gram/Krylov solvers, projection) and regress-out
//! (sufficient statistics, lazy residual op).

use std::sync::Arc;

use faer::Mat;
use numpy::{IntoPyArray, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use oom_core::block::Dtype;
use oom_core::kernels::gram::Precision;
use oom_core::kernels::regress::regress_pass;
use oom_core::kernels::state::PassState as State;
use oom_core::linalg::pca::{
    fit_gram, fit_project, gram_pass, project, PcaFit, PcaOptions, Solver,
};
use oom_core::plan::{Design, Regress};
use oom_core::OomError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::values_to_py;
use crate::enter::enter;
use crate::error::to_py;
use crate::matrix::Matrix;
use crate::state::PassState;

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
    let (f, scores) = enter(py, |ctx| fit_project(ctx, view, &o, out))?;
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

/// The PCA fit (no scores) from a Gram `PassState` — the combined states of
/// consecutive row ranges (`dask.distributed` workers' `gram_state`) —
/// solved exactly as the in-process Gram route.
#[pyfunction]
#[pyo3(signature = (state, n_comps, zero_center=true, seed=0, full_eigh_max=4000))]
fn pca_from_gram<'py>(
    py: Python<'py>,
    state: &PassState,
    n_comps: usize,
    zero_center: bool,
    seed: u64,
    full_eigh_max: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let State::Gram(st) = &state.state else {
        return Err(to_py(OomError::Value(format!(
            "pca_from_gram needs a gram state, not a {} state",
            state.state.name()
        ))));
    };
    let o = PcaOptions {
        n_comps,
        zero_center,
        seed,
        full_eigh_max,
        ..Default::default()
    };
    let f = enter(py, |_| fit_gram(st, &o))?;
    fit_to_py(py, f)
}

/// One pass projecting the rows of `m` on `components` (p × k), centred on
/// `mean` when given: a `PassState` whose `finalize()` gives the n × k scores.
#[pyfunction]
#[pyo3(signature = (m, components, mean=None, dtype="float32"))]
fn pca_project<'py>(
    py: Python<'py>,
    m: &Matrix,
    components: PyReadonlyArray2<'py, f64>,
    mean: Option<PyReadonlyArray1<'py, f64>>,
    dtype: &str,
) -> PyResult<PassState> {
    let c = components.as_array();
    let (p, k) = (c.nrows(), c.ncols());
    let components = Mat::from_fn(p, k, |a, b| c[[a, b]]);
    let mean = mean.as_ref().map(PyReadonlyArray1::as_slice).transpose()?;
    let out = Dtype::from_name(dtype).map_err(to_py)?;
    let values = enter(py, |ctx| project(ctx, &m.view, &components, mean, out))?;
    Ok(State::Rows { ncols: k, values }.into())
}

/// One pass, by the route `pca` takes (sparse values before a scale when
/// that pays): a `PassState` whose `finalize()` gives `(n, mean, M2)` with
/// `M2 = Σ(x−μ)(x−μ)ᵀ` (p × p, f64).
#[pyfunction]
#[pyo3(signature = (m, precision="float32"))]
fn gram_state(py: Python<'_>, m: &Matrix, precision: &str) -> PyResult<PassState> {
    let prec = self::precision(precision)?;
    Ok(State::Gram(enter(py, |ctx| gram_pass(ctx, &m.view, prec))?).into())
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

/// One pass for a dense design (n × k) or group codes (`ngroups` groups):
/// a `PassState` whose `finalize()` gives `(DᵀX (width × p), col_min,
/// col_max)` (`DᵀX` = group sums for codes).
#[pyfunction]
#[pyo3(name = "regress_stats", signature = (m, design=None, codes=None, ngroups=0))]
fn regress_stats_py(
    py: Python<'_>,
    m: &Matrix,
    design: Option<PyReadonlyArray2<'_, f64>>,
    codes: Option<PyReadonlyArray1<'_, u32>>,
    ngroups: usize,
) -> PyResult<PassState> {
    let d = self::design(m.view.nrows(), design, codes, ngroups)?;
    let view = &m.view;
    Ok(State::Regress(enter(py, |ctx| regress_pass(ctx, view, &d))?).into())
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
    m.add_function(wrap_pyfunction!(pca_from_gram, m)?)?;
    m.add_function(wrap_pyfunction!(pca_project, m)?)?;
    m.add_function(wrap_pyfunction!(regress_stats_py, m)?)?;
    m.add_function(wrap_pyfunction!(lazy_regress, m)?)?;
    Ok(())
}
