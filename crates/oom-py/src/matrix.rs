//! `Matrix`: a lazy view of a stored matrix, as seen from Python.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::PyReadonlyArray1;
use oom_core::kernels::sums::axis_sums;
use oom_core::plan::{wire, Op, View};
use oom_core::storage::origin::{Layout, Origin};
use oom_core::storage::{open_store, H5File};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::convert::{block_to_py, f64_vec, u64_vec};
use crate::enter::enter;

#[pyclass(module = "anndataoom._oom", frozen)]
pub struct Matrix {
    pub view: View,
    #[pyo3(get)]
    pub path: String,
    #[pyo3(get)]
    pub key: String,
}

/// Check that `path` is a readable AnnData `.h5ad` file or Zarr store
/// (raises the typed errors).
#[pyfunction]
pub fn check_file(py: Python<'_>, path: PathBuf) -> PyResult<()> {
    enter(py, |_| open_store(&path)?.ensure_anndata())
}

/// Also look for HDF5 filter plugins (blosc, zstd, ...) in `dir`, first.
#[pyfunction]
pub fn add_filter_plugin_dir(py: Python<'_>, dir: PathBuf) -> PyResult<()> {
    enter(py, |_| {
        oom_core::storage::h5file::add_filter_plugin_dir(&dir)
    })
}

/// The start of the error message for data compressed with an HDF5 filter
/// that cannot be loaded.
#[pyfunction]
pub fn missing_filter_message() -> &'static str {
    oom_core::storage::h5file::MISSING_FILTER
}

/// Whether `path` is a Zarr store (a directory holding a v2 or v3 node).
#[pyfunction]
pub fn is_zarr_node(path: PathBuf) -> bool {
    oom_core::storage::zarr::is_zarr_node(&path)
}

/// The variable-length strings of dataset `key` of the HDF5 file at `path`
/// as one `bytes` (each string's length, u64, then its bytes), or `None`
/// when the dataset holds something else: equal values mean equal strings.
#[pyfunction]
pub fn string_bytes<'py>(
    py: Python<'py>,
    path: PathBuf,
    key: &str,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let b = enter(py, |_| H5File::open(&path)?.string_bytes(key))?;
    Ok(b.map(|b| PyBytes::new(py, &b)))
}

/// Open the matrix `key` of the file at `path`. `layout` says how it is
/// stored: `"anndata"` (an element of an `.h5ad` file or Zarr store), `"10x"`
/// (a Cell Ranger `.h5` matrix group, genes × cells CSC read as cells × genes
/// CSR) or `"loom"` (a dense genes × cells array read by column ranges).
#[pyfunction]
#[pyo3(signature = (path, key, layout="anndata"))]
pub fn open(py: Python<'_>, path: PathBuf, key: String, layout: &str) -> PyResult<Matrix> {
    let view = enter(py, |_| {
        let origin = Origin::new(&path, &key, Layout::from_name(layout)?)?;
        Ok(View::new(Arc::new(origin.open()?)))
    })?;
    Ok(Matrix {
        view,
        path: path.display().to_string(),
        key,
    })
}

fn indices(a: Option<PyReadonlyArray1<'_, i64>>) -> PyResult<Option<Vec<u64>>> {
    a.map(|a| {
        a.as_slice()?
            .iter()
            .map(|&i| {
                u64::try_from(i).map_err(|_| {
                    pyo3::exceptions::PyIndexError::new_err(format!("negative index {i}"))
                })
            })
            .collect()
    })
    .transpose()
}

impl Matrix {
    /// A new matrix over `view`, labelled as this one.
    pub fn derive(&self, view: View) -> Matrix {
        Matrix {
            view,
            path: self.path.clone(),
            key: self.key.clone(),
        }
    }

    /// This matrix with `op` appended.
    pub fn with_op(&self, op: impl Into<Op>) -> Matrix {
        self.derive(self.view.with_op(op))
    }
}

/// The matrix whose plan is `plan` (bytes of [`Matrix::to_plan`]), opening
/// its files in this process (each at most once while unchanged).
#[pyfunction]
pub fn matrix_from_plan(
    py: Python<'_>,
    plan: &[u8],
    path: String,
    key: String,
) -> PyResult<Matrix> {
    let view = enter(py, |_| wire::decode(plan))?;
    Ok(Matrix { view, path, key })
}

#[pymethods]
impl Matrix {
    /// The view as bytes: source file and element, selections, transforms
    /// with their parameters, cast — no data. Raises `ValueError` for a
    /// matrix held in this process's temp files.
    fn to_plan<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = enter(py, |_| wire::encode(&self.view))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Pickled as its plan; unpickling reopens the file (see `matrix_from_plan`).
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let rebuild = py.import("anndataoom._oom")?.getattr("matrix_from_plan")?;
        let args = (self.to_plan(py)?, self.path.clone(), self.key.clone());
        PyTuple::new(py, [rebuild, args.into_pyobject(py)?.into_any()])
    }

    #[getter]
    fn shape(&self) -> (u64, u64) {
        (self.view.nrows(), self.view.ncols())
    }

    #[getter]
    fn dtype(&self) -> &'static str {
        self.view.dtype().name()
    }

    /// Storage format of the source: `csr_matrix`, `csc_matrix` or `array`.
    #[getter]
    fn format(&self) -> &'static str {
        self.view.src.format().name()
    }

    #[getter]
    fn is_sparse(&self) -> bool {
        self.view.is_sparse()
    }

    /// The files or stores the rows are read from (several for a concatenation).
    #[getter]
    fn source_paths(&self) -> Vec<String> {
        self.view.src.origin_paths()
    }

    /// Entries stored in the whole source (not the view); `None` for dense.
    #[getter]
    fn stored_nnz(&self) -> Option<u64> {
        self.view.src.stored_nnz()
    }

    /// True when the view is the whole source, unchanged.
    #[getter]
    fn is_identity(&self) -> bool {
        self.view.rows.is_none() && self.view.cols.is_none()
    }

    /// Select `rows` and `cols` (non-negative int64 positions into this view).
    #[pyo3(signature = (rows=None, cols=None))]
    fn subset(
        &self,
        rows: Option<PyReadonlyArray1<'_, i64>>,
        cols: Option<PyReadonlyArray1<'_, i64>>,
    ) -> PyResult<Matrix> {
        let (rows, cols) = (indices(rows)?, indices(cols)?);
        let view = self
            .view
            .subset(rows.as_deref(), cols.as_deref())
            .map_err(crate::error::to_py)?;
        Ok(Matrix {
            view,
            path: self.path.clone(),
            key: self.key.clone(),
        })
    }

    /// Rows `start..end` as `("csr", data, indices, indptr, shape)` or `("dense", array)`.
    fn read<'py>(&self, py: Python<'py>, start: u64, end: u64) -> PyResult<Bound<'py, PyTuple>> {
        let n = self.view.nrows();
        if start > end || end > n {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "rows {start}..{end} outside 0..{n}"
            )));
        }
        let block = enter(py, |_| self.view.read(start, end))?;
        block_to_py(py, block)
    }

    /// The `groups` runs of contiguous rows, of about equal cost, that a pass
    /// folding into `groups` states uses (`CallContext.runs`): the row ranges
    /// a distributed pass gives its tasks, so that it merges the same states.
    fn runs(&self, py: Python<'_>, groups: u64) -> PyResult<Vec<(u64, u64)>> {
        enter(py, |_| self.view.runs(groups.max(1)))
    }

    /// Row boundaries of blocks holding about `target` stored values each.
    fn blocks(&self, py: Python<'_>, target: u64) -> PyResult<Vec<(u64, u64)>> {
        enter(py, |_| self.view.blocks(target.max(1)))
    }

    /// `(row_sum, row_nnz, col_sum, col_nnz)` in one parallel pass.
    fn axis_sums<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let s = enter(py, |ctx| axis_sums(ctx, &self.view))?;
        PyTuple::new(
            py,
            [
                f64_vec(py, s.row_sum).into_any(),
                u64_vec(py, s.row_nnz).into_any(),
                f64_vec(py, s.col_sum).into_any(),
                u64_vec(py, s.col_nnz).into_any(),
            ],
        )
    }
}
