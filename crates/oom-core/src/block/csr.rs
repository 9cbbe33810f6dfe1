//! Compressed sparse rows for one block. Column indices are `u32`-range
//! `i32` (what scipy uses); `indptr` is local to the block.

use super::{Dtype, Values};
use crate::error::{OomError, Result};
use crate::{values_of, with_values};

#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub nrows: usize,
    pub ncols: usize,
    pub indptr: Vec<i64>,
    pub indices: Vec<i32>,
    pub data: Values,
}

impl Csr {
    pub fn empty(ncols: usize, dtype: Dtype) -> Self {
        Csr {
            nrows: 0,
            ncols,
            indptr: vec![0],
            indices: Vec::new(),
            data: Values::empty(dtype),
        }
    }

    #[inline]
    pub fn row_range(&self, r: usize) -> (usize, usize) {
        (self.indptr[r] as usize, self.indptr[r + 1] as usize)
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// A copy of rows `r0..r1`.
    pub fn slice_rows(&self, r0: usize, r1: usize) -> Csr {
        let (a, b) = (self.indptr[r0], self.indptr[r1]);
        let (ua, ub) = (a as usize, b as usize);
        Csr {
            nrows: r1 - r0,
            ncols: self.ncols,
            indptr: self.indptr[r0..=r1].iter().map(|p| p - a).collect(),
            indices: self.indices[ua..ub].to_vec(),
            data: self.data.slice(ua, ub),
        }
    }

    /// Rows `(r0, r1)` cut into runs of about `target` entries (at least one row each).
    pub fn row_slices(&self, target: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut r0 = 0;
        while r0 < self.nrows {
            let limit = self.indptr[r0] + target as i64;
            let mut r1 = r0 + 1;
            while r1 < self.nrows && self.indptr[r1 + 1] <= limit {
                r1 += 1;
            }
            out.push((r0, r1));
            r0 = r1;
        }
        out
    }

    /// Append the rows of `other` below ours.
    pub fn append(&mut self, other: &Csr) {
        let base = *self.indptr.last().expect("indptr is never empty");
        self.indptr
            .extend(other.indptr[1..].iter().map(|p| p + base));
        self.indices.extend_from_slice(&other.indices);
        self.data.extend_from(&other.data);
        self.nrows += other.nrows;
    }

    /// Check indices are in range; sort unsorted rows and sum duplicate
    /// entries (as scipy's `sum_duplicates`), so every block leaving storage
    /// is canonical.
    pub fn canonicalize(&mut self, what: &str) -> Result<()> {
        let ncols = i64::try_from(self.ncols).unwrap_or(i64::MAX);
        let out_of_range = |c: i32| {
            OomError::Corrupt(format!(
                "{what}: column index {c} out of range for {} columns",
                self.ncols
            ))
        };
        let mut canonical = true;
        for r in 0..self.nrows {
            let (a, b) = self.row_range(r);
            let row = &self.indices[a..b];
            let (Some(&first), Some(&last)) = (row.first(), row.last()) else {
                continue;
            };
            // No early exit: the comparison vectorises (this check runs on
            // every block read).
            let increasing = row
                .iter()
                .zip(&row[1..])
                .fold(true, |ok, (x, y)| ok & (x < y));
            if increasing {
                // Sorted: the ends bound the row.
                if first < 0 {
                    return Err(out_of_range(first));
                }
                if i64::from(last) >= ncols {
                    return Err(out_of_range(last));
                }
            } else {
                canonical = false;
                if let Some(&c) = row.iter().find(|&&c| c < 0 || i64::from(c) >= ncols) {
                    return Err(out_of_range(c));
                }
            }
        }
        if !canonical {
            self.sort_and_sum_rows();
        }
        Ok(())
    }

    fn sort_and_sum_rows(&mut self) {
        let nrows = self.nrows;
        let dtype = self.data.dtype();
        let mut indptr = Vec::with_capacity(nrows + 1);
        indptr.push(0i64);
        let mut indices = Vec::with_capacity(self.indices.len());
        let old_indices = &self.indices;
        let old_ptr = &self.indptr;
        let data = values_of!(dtype, T => {
            let src: &[T] = self.data.as_slice().expect("dtype");
            let mut out: Vec<T> = Vec::with_capacity(src.len());
            let mut order: Vec<usize> = Vec::new();
            for r in 0..nrows {
                let (a, b) = (old_ptr[r] as usize, old_ptr[r + 1] as usize);
                order.clear();
                order.extend(a..b);
                order.sort_by_key(|&k| old_indices[k]);
                for &k in &order {
                    let c = old_indices[k];
                    if indices.len() as i64 > *indptr.last().expect("nonempty")
                        && *indices.last().expect("nonempty") == c
                    {
                        let last = out.last_mut().expect("nonempty");
                        *last = add(*last, src[k]);
                    } else {
                        indices.push(c);
                        out.push(src[k]);
                    }
                }
                indptr.push(indices.len() as i64);
            }
            out
        });
        self.indptr = indptr;
        self.indices = indices;
        self.data = data;
    }

    /// Dense row-major copy.
    pub fn to_dense(&self) -> super::Dense {
        let n = self.ncols;
        let data = values_of!(self.data.dtype(), T => {
            let src: &[T] = self.data.as_slice().expect("dtype");
            let mut out = vec![T::default(); self.nrows * n];
            for r in 0..self.nrows {
                let (a, b) = self.row_range(r);
                for (&c, &x) in self.indices[a..b].iter().zip(&src[a..b]) {
                    out[r * n + c as usize] = x;
                }
            }
            out
        });
        super::Dense {
            nrows: self.nrows,
            ncols: n,
            data,
        }
    }

    /// Sum of every stored value, per row.
    pub fn row_sums(&self) -> Vec<f64> {
        with_values!(&self.data, v => (0..self.nrows)
            .map(|r| {
                let (a, b) = self.row_range(r);
                v[a..b].iter().map(|x| crate::block::Scalar::to_f64(*x)).sum()
            })
            .collect())
    }
}

#[inline]
fn add<T: super::Scalar>(a: T, b: T) -> T {
    T::from_f64(a.to_f64() + b.to_f64())
}
