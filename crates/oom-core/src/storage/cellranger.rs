//! Matrices stored the other way round: Cell Ranger's `.h5` (a genes ×
//! cells CSC with its shape in a `shape` dataset) and loom's `/matrix` (a
//! dense genes × cells array). Both are read as cells × genes without any
//! conversion: the CSC's column pointers are our row pointers, and a block of
//! cells is a column range of the loom array.

use super::array::to_usize;
use super::container::{Container, DenseRows};
use super::csr::CsrStore;
use super::dense::H5Dense;
use super::h5file::H5File;
use super::matrix::{check_shape, read_indptr, StoredMatrix};
use crate::block::{Dtype, Values};
use crate::error::{OomError, Result};
use crate::with_values;

/// Open the Cell Ranger matrix group `group` (`matrix` for v3+, the genome
/// name for v2) as a cells × genes CSR.
pub fn open_10x(f: &H5File, group: &str) -> Result<StoredMatrix> {
    let c: &dyn Container = f;
    let key = |k: &str| format!("{group}/{k}");
    for k in ["shape", "indptr", "indices", "data"] {
        if !c.exists(&key(k)) {
            return Err(c.err(&key(k), "missing dataset: not a Cell Ranger matrix group"));
        }
    }
    let shape = c.array1(&key("shape"))?;
    let v = shape.read_range(0..shape.len())?;
    let dims: Vec<f64> =
        with_values!(&v, x => x.iter().map(|d| crate::block::Scalar::to_f64(*d)).collect());
    let [ngenes, ncells] = dims[..] else {
        return Err(c.err(
            &key("shape"),
            format!("shape must have 2 entries, has {}", dims.len()),
        ));
    };
    if ngenes < 0.0 || ncells < 0.0 || v.dtype().is_float() {
        return Err(c.err(
            &key("shape"),
            format!("shape must be 2 non-negative integers, is {dims:?}"),
        ));
    }
    let indptr = read_indptr(&*c.array1(&key("indptr"))?).map_err(|m| c.err(&key("indptr"), m))?;
    let what = format!("'{}' element '{group}'", f.path.display());
    // A structure that disagrees with the shape is a bad file, not a bad argument.
    let store = CsrStore::new(
        ncells as u64,
        ngenes as u64,
        indptr,
        c.array1(&key("indices"))?,
        c.array1(&key("data"))?,
        what,
    )
    .map_err(|e| match e {
        OomError::Corrupt(m) => c.err(group, m),
        e => e,
    })?;
    check_shape(c, group, StoredMatrix::from_csr(store))
}

/// Open loom's dense genes × cells array `key` as a cells × genes matrix.
pub fn open_transposed_dense(f: &H5File, key: &str) -> Result<StoredMatrix> {
    let d = f.dense_h5(key)?;
    check_shape(f, key, StoredMatrix::from_dense(Box::new(Transposed(d))))
}

/// A stored array read by column ranges, seen as its transpose.
struct Transposed(H5Dense);

// The transpose's rows are the stored columns, on purpose.
#[allow(clippy::misnamed_getters)]
impl DenseRows for Transposed {
    fn nrows(&self) -> u64 {
        self.0.ncols
    }

    fn ncols(&self) -> u64 {
        self.0.nrows
    }

    fn dtype(&self) -> Dtype {
        self.0.dtype
    }

    /// Rows `r0..r1` of the transpose: stored columns `r0..r1` of every stored row.
    fn read_rows(&self, r0: u64, r1: u64) -> Result<Values> {
        let region = self.0.read_region(0, self.0.nrows, r0, r1)?;
        let (n, w) = (to_usize(self.0.nrows), to_usize(r1 - r0));
        Ok(region.gather((0..w).flat_map(move |j| (0..n).map(move |i| i * w + j))))
    }
}
