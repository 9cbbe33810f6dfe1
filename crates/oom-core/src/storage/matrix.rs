//! A matrix element of an AnnData store (X, a layer, raw/X), whatever its
//! encoding, read as row blocks.

use std::sync::{Arc, Mutex};

use super::array::{check_alloc, to_usize, Array1};
use super::container::{Container, DenseRows};
use super::csr::{gather_dense_rows, CsrStore};
use super::origin::Origin;
use super::transpose::csc_to_csr;
use crate::block::{Block, Dense, Dtype, Scalar};
use crate::error::{OomError, Result};
use crate::with_values;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csr,
    Csc,
    Dense,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csr => "csr_matrix",
            Format::Csc => "csc_matrix",
            Format::Dense => "array",
        }
    }
}

pub struct StoredMatrix {
    pub nrows: u64,
    pub ncols: u64,
    pub format: Format,
    pub dtype: Dtype,
    /// Where it was opened from (`None` for our own temp files).
    pub origin: Option<Origin>,
    inner: Inner,
}

enum Inner {
    Csr(CsrStore),
    Csc(CscStore),
    Dense(Box<dyn DenseRows>),
}

struct CscStore {
    col_ptr: Vec<u64>,
    indices: Box<dyn Array1>,
    data: Box<dyn Array1>,
    what: String,
    rows: Mutex<Option<Arc<CsrStore>>>,
}

impl StoredMatrix {
    /// Stored entries for sparse matrices; `None` for dense.
    pub fn stored_nnz(&self) -> Option<u64> {
        match &self.inner {
            Inner::Csr(c) => Some(c.nnz()),
            Inner::Csc(c) => Some(*c.col_ptr.last().expect("nonempty")),
            Inner::Dense(_) => None,
        }
    }

    pub fn is_sparse(&self) -> bool {
        !matches!(&self.inner, Inner::Dense(_))
    }

    /// This matrix, remembering that it was opened from `origin`.
    pub fn with_origin(self, origin: Origin) -> Self {
        StoredMatrix {
            origin: Some(origin),
            ..self
        }
    }

    /// A CSR matrix opened from any layout (e.g. Cell Ranger's `.h5`).
    pub fn from_csr(store: CsrStore) -> Self {
        StoredMatrix {
            nrows: store.nrows,
            ncols: store.ncols,
            format: Format::Csr,
            dtype: store.dtype(),
            origin: None,
            inner: Inner::Csr(store),
        }
    }

    /// A dense matrix read by row ranges (e.g. loom's transposed `/matrix`).
    pub fn from_dense(d: Box<dyn DenseRows>) -> Self {
        StoredMatrix {
            nrows: d.nrows(),
            ncols: d.ncols(),
            format: Format::Dense,
            dtype: d.dtype(),
            origin: None,
            inner: Inner::Dense(d),
        }
    }

    /// Number of values a read of row `r` moves (nnz for sparse, width for dense).
    pub fn row_cost(&self) -> Result<RowCost> {
        Ok(match &self.inner {
            Inner::Csr(c) => RowCost::Ptr(Arc::new(c.indptr.clone())),
            Inner::Csc(c) => {
                RowCost::Ptr(Arc::new(c.by_rows(self.nrows, self.ncols)?.indptr.clone()))
            }
            Inner::Dense(_) => RowCost::Width(self.ncols),
        })
    }

    /// Rows `rows` (any order, repeats allowed) as one block.
    pub fn read_rows(&self, rows: &[u64]) -> Result<Block> {
        self.read_rows_as(rows, None)
    }

    /// Rows `rows` as one block, sparse values decoded straight into
    /// `dtype` where the store allows (`None`, and dense values: as stored).
    pub fn read_rows_as(&self, rows: &[u64], dtype: Option<Dtype>) -> Result<Block> {
        if let Some(&r) = rows.iter().find(|&&r| r >= self.nrows) {
            return Err(OomError::Index(format!(
                "row {r} out of range for {} rows",
                self.nrows
            )));
        }
        match &self.inner {
            Inner::Csr(c) => Ok(Block::Csr(c.read_rows(rows, dtype)?)),
            Inner::Csc(c) => Ok(Block::Csr(
                c.by_rows(self.nrows, self.ncols)?.read_rows(rows, dtype)?,
            )),
            Inner::Dense(d) => {
                let data = gather_dense_rows(rows, to_usize(self.ncols), self.dtype, |a, b| {
                    d.read_rows(a, b)
                })?;
                Ok(Block::Dense(Dense {
                    nrows: rows.len(),
                    ncols: to_usize(self.ncols),
                    data,
                }))
            }
        }
    }
}

/// Per-row read cost, for sizing blocks.
#[derive(Clone)]
pub enum RowCost {
    Ptr(Arc<Vec<u64>>),
    Width(u64),
}

impl RowCost {
    pub fn of(&self, r: u64) -> u64 {
        match self {
            RowCost::Ptr(p) => p[to_usize(r) + 1] - p[to_usize(r)],
            RowCost::Width(w) => *w,
        }
    }
}

impl CscStore {
    fn by_rows(&self, nrows: u64, ncols: u64) -> Result<Arc<CsrStore>> {
        let mut guard = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = guard.as_ref() {
            return Ok(Arc::clone(s));
        }
        let s = Arc::new(csc_to_csr(
            nrows,
            ncols,
            &self.col_ptr,
            &*self.indices,
            &*self.data,
            &self.what,
        )?);
        *guard = Some(Arc::clone(&s));
        Ok(s)
    }
}

/// Open the matrix element at `key` (e.g. `X`, `layers/counts`, `raw/X`).
pub fn open_matrix(f: &dyn Container, key: &str) -> Result<StoredMatrix> {
    check_shape(f, key, open_matrix_unchecked(f, key)?)
}

/// Fail (instead of aborting later) when the shape is too large for the
/// per-row and per-column vectors every pass allocates.
pub(crate) fn check_shape(f: &dyn Container, key: &str, m: StoredMatrix) -> Result<StoredMatrix> {
    for n in [m.nrows, m.ncols] {
        check_alloc(f.path(), n, 16).map_err(|_| {
            f.err(
                key,
                format!(
                    "shape ({}, {}) is too large to process (corrupt shape?)",
                    m.nrows, m.ncols
                ),
            )
        })?;
    }
    Ok(m)
}

fn open_matrix_unchecked(f: &dyn Container, key: &str) -> Result<StoredMatrix> {
    if !f.exists(key) {
        return Err(OomError::Key(format!(
            "no matrix '{key}' in '{}'",
            f.path().display()
        )));
    }
    if !f.is_group(key) {
        let d = f.dense(key)?;
        return Ok(StoredMatrix {
            nrows: d.nrows(),
            ncols: d.ncols(),
            format: Format::Dense,
            dtype: d.dtype(),
            origin: None,
            inner: Inner::Dense(d),
        });
    }
    let enc = f
        .str_attr(key, "encoding-type")
        .or_else(|| {
            f.str_attr(key, "h5sparse_format")
                .map(|s| format!("{s}_matrix"))
        })
        .ok_or_else(|| {
            f.err(
                key,
                "group has no encoding-type attribute; not an AnnData matrix",
            )
        })?;
    let format = match enc.as_str() {
        "csr_matrix" => Format::Csr,
        "csc_matrix" => Format::Csc,
        other => return Err(f.err(key, format!("unsupported matrix encoding '{other}'"))),
    };
    let shape = f
        .int_attr(key, "shape")
        .or_else(|| f.int_attr(key, "h5sparse_shape"))
        .ok_or_else(|| f.err(key, "sparse matrix has no shape attribute"))?;
    let [nrows, ncols] = shape[..] else {
        return Err(f.err(
            key,
            format!(
                "sparse matrix shape must have 2 entries, has {}",
                shape.len()
            ),
        ));
    };
    let (Ok(nrows), Ok(ncols)) = (u64::try_from(nrows), u64::try_from(ncols)) else {
        return Err(f.err(key, format!("negative shape ({nrows}, {ncols})")));
    };
    let ptr_arr = f.array1(&format!("{key}/indptr"))?;
    let indices = f.array1(&format!("{key}/indices"))?;
    let data = f.array1(&format!("{key}/data"))?;
    let indptr = read_indptr(&*ptr_arr).map_err(|m| f.err(&format!("{key}/indptr"), m))?;
    let dtype = data.dtype();
    let what = format!("'{}' element '{key}'", f.path().display());
    let inner = match format {
        Format::Csr => Inner::Csr(CsrStore::new(nrows, ncols, indptr, indices, data, what)?),
        _ => {
            // Validate the column structure the same way, then transpose lazily.
            let check = CsrStore::new(ncols, nrows, indptr, indices, data, what.clone())?;
            Inner::Csc(CscStore {
                col_ptr: check.indptr,
                indices: check.indices,
                data: check.data,
                what,
                rows: Mutex::new(None),
            })
        }
    };
    Ok(StoredMatrix {
        nrows,
        ncols,
        format,
        dtype,
        origin: None,
        inner,
    })
}

pub(crate) fn read_indptr(a: &dyn Array1) -> std::result::Result<Vec<u64>, String> {
    let v = a.read_range(0..a.len()).map_err(|e| e.to_string())?;
    if v.dtype().is_float() {
        return Err("indptr must hold integers".into());
    }
    with_values!(&v, x => x.iter().map(|p| {
        let f = p.to_f64();
        if f < 0.0 { Err(format!("negative indptr entry {f}")) } else { Ok(f as u64) }
    }).collect())
}
