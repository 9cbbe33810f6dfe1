//! Bindings for the lazy transforms and the preprocessing kernels: each
//! function borrows numpy arrays, calls `oom-core` through [`enter`]
//! (GIL released, errors mapped, panics caught) and moves results back.

use std::sync::Arc;

use numpy::{IntoPyArray, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use oom_core::block::Dtype;
use oom_core::kernels::moments::{
    moments, residual_variances, MomentParams, ResidualParams, ValueMap,
};
use oom_core::kernels::qc::{count_above, positive_counts, qc_metrics, QcParams};
use oom_core::kernels::state::PassState as State;
use oom_core::plan::{Log1p, Multiply, Normalize, Power, Scale};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::enter::enter;
use crate::error::to_py;
use crate::matrix::Matrix;
use crate::state::PassState;

fn vec_f64(a: &PyReadonlyArray1<'_, f64>, n: u64, what: &str) -> PyResult<Vec<f64>> {
    let v = a.as_slice()?.to_vec();
    if v.len() as u64 != n {
        return Err(PyValueError::new_err(format!(
            "{what} has length {}, expected {n}",
            v.len()
        )));
    }
    Ok(v)
}

fn groups(
    g: Option<PyReadonlyArray1<'_, u32>>,
    n_groups: usize,
    nrows: u64,
) -> PyResult<Option<Arc<Vec<u32>>>> {
    g.map(|g| {
        let v = g.as_slice()?.to_vec();
        if v.len() as u64 != nrows {
            return Err(PyValueError::new_err(format!(
                "groups has length {}, expected {nrows}",
                v.len()
            )));
        }
        if let Some(&bad) = v.iter().find(|&&x| x != u32::MAX && x as usize >= n_groups) {
            return Err(PyValueError::new_err(format!(
                "group id {bad} >= n_groups {n_groups}"
            )));
        }
        Ok(Arc::new(v))
    })
    .transpose()
}

/// `m` with every row divided by `divisor[row]` (lazy).
#[pyfunction]
fn lazy_normalize(m: &Matrix, divisor: PyReadonlyArray1<'_, f64>) -> PyResult<Matrix> {
    let d = vec_f64(&divisor, m.view.nrows(), "divisor")?;
    Ok(m.with_op(Normalize {
        divisor: Arc::new(d),
    }))
}

/// `log1p(m)` (divided by `ln(base)` when given) (lazy).
#[pyfunction]
#[pyo3(signature = (m, base=None))]
fn lazy_log1p(m: &Matrix, base: Option<f64>) -> Matrix {
    m.with_op(Log1p { base })
}

/// `(m - mean) / std` per column (centering only with `zero_center`),
/// clipped to `max_value`; rows outside `mask` unchanged (lazy).
#[pyfunction]
#[pyo3(signature = (m, mean, std, zero_center=true, max_value=None, mask=None))]
fn lazy_scale(
    m: &Matrix,
    mean: PyReadonlyArray1<'_, f64>,
    std: PyReadonlyArray1<'_, f64>,
    zero_center: bool,
    max_value: Option<f64>,
    mask: Option<PyReadonlyArray1<'_, bool>>,
) -> PyResult<Matrix> {
    let n = m.view.ncols();
    let mean = vec_f64(&mean, n, "mean")?;
    let std = vec_f64(&std, n, "std")?;
    let mask = match mask {
        Some(a) => {
            let v = a.as_slice()?.to_vec();
            if v.len() as u64 != m.view.nrows() {
                return Err(PyValueError::new_err(
                    "mask length differs from the number of rows",
                ));
            }
            Some(Arc::new(v))
        }
        None => None,
    };
    Ok(m.with_op(Scale {
        mean: Arc::new(mean),
        std: Arc::new(std),
        zero_center,
        max_value,
        mask,
    }))
}

/// `m * scalar * row[r] * col[c]` elementwise in float type `dtype` (lazy).
#[pyfunction]
#[pyo3(signature = (m, scalar, row=None, col=None, dtype="float64"))]
fn lazy_multiply(
    m: &Matrix,
    scalar: f64,
    row: Option<PyReadonlyArray1<'_, f64>>,
    col: Option<PyReadonlyArray1<'_, f64>>,
    dtype: &str,
) -> PyResult<Matrix> {
    let row = row
        .map(|r| vec_f64(&r, m.view.nrows(), "row").map(Arc::new))
        .transpose()?;
    let col = col
        .map(|c| vec_f64(&c, m.view.ncols(), "col").map(Arc::new))
        .transpose()?;
    let dtype = float_dtype(dtype)?;
    Ok(m.with_op(Multiply {
        scalar,
        row,
        col,
        dtype,
    }))
}

/// `m ** p` on every stored value in float type `dtype` (lazy).
#[pyfunction]
#[pyo3(signature = (m, p, dtype="float64"))]
fn lazy_power(m: &Matrix, p: f64, dtype: &str) -> PyResult<Matrix> {
    Ok(m.with_op(Power {
        p,
        dtype: float_dtype(dtype)?,
    }))
}

fn float_dtype(name: &str) -> PyResult<Dtype> {
    let d = Dtype::from_name(name).map_err(to_py)?;
    if !d.is_float() {
        return Err(PyValueError::new_err(format!(
            "dtype must be float32 or float64, got {name}"
        )));
    }
    Ok(d)
}

/// `m` with its output cast to `dtype` (`None` removes the cast) (lazy).
#[pyfunction]
#[pyo3(signature = (m, dtype=None))]
fn lazy_cast(m: &Matrix, dtype: Option<&str>) -> PyResult<Matrix> {
    let d = dtype.map(Dtype::from_name).transpose().map_err(to_py)?;
    Ok(m.derive(m.view.with_cast(d)))
}

/// Names of the pending transforms, in order.
#[pyfunction]
fn op_names(m: &Matrix) -> Vec<&'static str> {
    m.view.ops.iter().map(|o| o.name()).collect()
}

/// The same row/column selection without transforms or cast.
#[pyfunction]
fn without_ops(m: &Matrix) -> Matrix {
    m.derive(m.view.untransformed())
}

/// True when no transform or cast is pending.
#[pyfunction]
fn is_untransformed(m: &Matrix) -> bool {
    m.view.is_plain()
}

/// One pass of QC metrics, as a `PassState` whose `finalize()` gives `(total, n_nonzero,
/// top_cum[n, k], mask_sum[n, q], col_sum, col_nnz, non_counts, rare_rows[p, K], rare_vals[p, K])`;
/// `non_counts` is how many values are negative or not whole, `rare_*` each column's first K
/// non-zeros (all of them when it has ≤ K).
#[pyfunction]
#[pyo3(name = "qc_metrics")]
fn qc_metrics_py<'py>(
    py: Python<'py>,
    m: &Matrix,
    top: Vec<usize>,
    masks: PyReadonlyArray2<'py, bool>,
) -> PyResult<PassState> {
    let ncols = usize::try_from(m.view.ncols()).expect("fits");
    let shape = masks.as_array().dim();
    if shape.1 != ncols && shape.0 != 0 {
        return Err(PyValueError::new_err(format!(
            "masks have {} columns, matrix has {ncols}",
            shape.1
        )));
    }
    let a = masks.as_array();
    let masks: Vec<Vec<bool>> = a.outer_iter().map(|r| r.to_vec()).collect();
    let mut top = top;
    top.sort_unstable();
    if top.first() == Some(&0) {
        return Err(PyValueError::new_err("percent_top values must be >= 1"));
    }
    let (k, q) = (top.len(), masks.len());
    let p = QcParams { top, masks };
    let (rows, state) = enter(py, |ctx| qc_metrics(ctx, &m.view, &p))?;
    Ok(State::Qc {
        rows,
        top: k,
        masks: q,
        state,
    }
    .into())
}

/// One pass whose `finalize()` gives `(row_sum, row_positive, col_sum, col_positive)`.
#[pyfunction]
#[pyo3(name = "positive_counts")]
fn positive_counts_py(py: Python<'_>, m: &Matrix) -> PyResult<PassState> {
    Ok(State::Positive(enter(py, |ctx| positive_counts(ctx, &m.view))?).into())
}

/// One pass whose `finalize()` gives, per column, how many rows exceed their row's `threshold`.
#[pyfunction]
#[pyo3(name = "count_above")]
fn count_above_py(
    py: Python<'_>,
    m: &Matrix,
    threshold: PyReadonlyArray1<'_, f64>,
) -> PyResult<PassState> {
    let t = vec_f64(&threshold, m.view.nrows(), "threshold")?;
    Ok(State::CountAbove(enter(py, |ctx| count_above(ctx, &m.view, &t))?).into())
}

/// Per-group column moments in one pass, as a `PassState` whose `finalize()` gives a
/// dict with `n` (rows per group), `sum`, `sumsq`, `mean`, `var` (ddof 1), `n_pos` (all
/// `n_groups × ncols`), `n_nonzero` (same shape), `row_sum` and `non_integer`;
/// with `unmapped`, also `unmapped_mean` and `unmapped_var` per column: the
/// moments of the values before `expm1`, over all groups' rows.
#[pyfunction]
#[pyo3(name = "moments", signature = (m, groups=None, n_groups=1, expm1=false, factor=None, clip=None, unmapped=false))]
#[allow(clippy::too_many_arguments)]
fn moments_py<'py>(
    py: Python<'py>,
    m: &Matrix,
    groups: Option<PyReadonlyArray1<'py, u32>>,
    n_groups: usize,
    expm1: bool,
    factor: Option<f64>,
    clip: Option<PyReadonlyArray2<'py, f64>>,
    unmapped: bool,
) -> PyResult<PassState> {
    let ncols = usize::try_from(m.view.ncols()).expect("fits");
    let n_groups = n_groups.max(1);
    let groups = self::groups(groups, n_groups, m.view.nrows())?;
    let clip = match clip {
        Some(c) => {
            if c.as_array().dim() != (n_groups, ncols) {
                return Err(PyValueError::new_err(format!(
                    "clip must have shape ({n_groups}, {ncols})"
                )));
            }
            Some(Arc::new(c.as_array().iter().copied().collect::<Vec<f64>>()))
        }
        None => None,
    };
    let map = if expm1 {
        ValueMap::Expm1 { factor }
    } else {
        ValueMap::Identity
    };
    let p = MomentParams {
        groups,
        n_groups,
        map,
        clip,
        unmapped,
    };
    let (moments, row_sum) = enter(py, |ctx| moments(ctx, &m.view, &p))?;
    Ok(State::Moments { moments, row_sum }.into())
}

/// Pearson-residual variance per group × column (second pass of the
/// `pearson_residuals` HVG flavor).
#[pyfunction]
#[pyo3(name = "residual_variances", signature = (m, row_sum, col_sum, total, theta, clip, groups=None, f32_product=false))]
// One argument per keyword of the Python call it backs.
#[allow(clippy::too_many_arguments)]
fn residual_variances_py<'py>(
    py: Python<'py>,
    m: &Matrix,
    row_sum: PyReadonlyArray1<'py, f64>,
    col_sum: PyReadonlyArray2<'py, f64>,
    total: PyReadonlyArray1<'py, f64>,
    theta: f64,
    clip: f64,
    groups: Option<PyReadonlyArray1<'py, u32>>,
    f32_product: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let ncols = usize::try_from(m.view.ncols()).expect("fits");
    let total = total.as_slice()?.to_vec();
    let n_groups = total.len().max(1);
    if col_sum.as_array().dim() != (n_groups, ncols) {
        return Err(PyValueError::new_err(format!(
            "col_sum must have shape ({n_groups}, {ncols})"
        )));
    }
    let p = ResidualParams {
        groups: self::groups(groups, n_groups, m.view.nrows())?,
        n_groups,
        row_sum: Arc::new(vec_f64(&row_sum, m.view.nrows(), "row_sum")?),
        col_sum: Arc::new(col_sum.as_array().iter().copied().collect()),
        total,
        theta,
        clip,
        f32_product,
    };
    let v = enter(py, |ctx| residual_variances(ctx, &m.view, &p))?;
    Ok(v.into_pyarray(py).reshape([n_groups, ncols])?.into_any())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lazy_normalize, m)?)?;
    m.add_function(wrap_pyfunction!(lazy_log1p, m)?)?;
    m.add_function(wrap_pyfunction!(lazy_scale, m)?)?;
    m.add_function(wrap_pyfunction!(lazy_cast, m)?)?;
    m.add_function(wrap_pyfunction!(lazy_multiply, m)?)?;
    m.add_function(wrap_pyfunction!(lazy_power, m)?)?;
    m.add_function(wrap_pyfunction!(op_names, m)?)?;
    m.add_function(wrap_pyfunction!(without_ops, m)?)?;
    m.add_function(wrap_pyfunction!(is_untransformed, m)?)?;
    m.add_function(wrap_pyfunction!(qc_metrics_py, m)?)?;
    m.add_function(wrap_pyfunction!(positive_counts_py, m)?)?;
    m.add_function(wrap_pyfunction!(moments_py, m)?)?;
    m.add_function(wrap_pyfunction!(count_above_py, m)?)?;
    m.add_function(wrap_pyfunction!(residual_variances_py, m)?)?;
    Ok(())
}
