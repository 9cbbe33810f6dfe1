//! Compressed-row matrices on disk: `indptr` in memory, `indices`/`data`
//! read by nnz ranges for any set of rows.

use std::ops::Range;

use super::array::{to_usize, Array1};
use super::convert::Target;
use crate::block::{Csr, Dtype, Values};
use crate::error::{OomError, Result};
use crate::values_of;

pub struct CsrStore {
    pub nrows: u64,
    pub ncols: u64,
    pub indptr: Vec<u64>,
    pub(crate) indices: Box<dyn Array1>,
    pub(crate) data: Box<dyn Array1>,
    /// Names the matrix in error messages.
    pub(crate) what: String,
}

impl CsrStore {
    /// Validate the structure that every later read relies on.
    pub fn new(
        nrows: u64,
        ncols: u64,
        indptr: Vec<u64>,
        indices: Box<dyn Array1>,
        data: Box<dyn Array1>,
        what: String,
    ) -> Result<Self> {
        let bad = |m: String| Err(OomError::Corrupt(format!("{what}: {m}")));
        if indptr.len() as u64 != nrows + 1 {
            return bad(format!(
                "indptr has {} entries for {nrows} rows (expected {})",
                indptr.len(),
                nrows + 1
            ));
        }
        if indptr[0] != 0 {
            return bad(format!("indptr must start at 0, starts at {}", indptr[0]));
        }
        if let Some(w) = indptr.windows(2).position(|w| w[1] < w[0]) {
            return bad(format!("indptr decreases at row {w}"));
        }
        let nnz = *indptr.last().expect("nrows + 1 > 0");
        if indices.len() < nnz || data.len() < nnz {
            return bad(format!(
                "indptr ends at {nnz} but indices has {} and data has {} entries",
                indices.len(),
                data.len()
            ));
        }
        if !indices.dtype().is_float() {
            Ok(CsrStore {
                nrows,
                ncols,
                indptr,
                indices,
                data,
                what,
            })
        } else {
            bad("indices must be integers".into())
        }
    }

    pub fn dtype(&self) -> Dtype {
        self.data.dtype()
    }

    pub fn nnz(&self) -> u64 {
        *self.indptr.last().expect("indptr is never empty")
    }

    /// What the column indices are read as (int32, range-checked).
    fn index_target(&self) -> Target<'_> {
        Target::Index {
            ncols: self.ncols,
            what: &self.what,
        }
    }

    /// The block's values read as `dtype` (`None`: as stored).
    fn read_data(&self, ranges: &[Range<u64>], dtype: Option<Dtype>) -> Result<Values> {
        let to = Target::Values(dtype.unwrap_or(self.data.dtype()));
        self.data.read_ranges_as(ranges, to)
    }

    fn read_indices(&self, ranges: &[Range<u64>]) -> Result<Vec<i32>> {
        match self.indices.read_ranges_as(ranges, self.index_target())? {
            Values::I32(v) => Ok(v),
            _ => unreachable!("indices are read as int32"),
        }
    }

    /// The rows `r0..r1`, values as `dtype` (`None`: as stored).
    pub fn read_range(&self, r0: u64, r1: u64, dtype: Option<Dtype>) -> Result<Csr> {
        let (a, b) = (self.indptr[to_usize(r0)], self.indptr[to_usize(r1)]);
        let indices = self.read_indices(std::slice::from_ref(&(a..b)))?;
        let data = self.read_data(std::slice::from_ref(&(a..b)), dtype)?;
        let indptr = self.indptr[to_usize(r0)..=to_usize(r1)]
            .iter()
            .map(|&p| (p - a) as i64)
            .collect();
        let mut block = Csr {
            nrows: to_usize(r1 - r0),
            ncols: to_usize(self.ncols),
            indptr,
            indices,
            data,
        };
        block.canonicalize(&self.what)?;
        Ok(block)
    }

    /// The rows `rows` (any order, repeats allowed), in that order, values
    /// as `dtype` (`None`: as stored; a conversion is made as each piece
    /// is read, not as a pass over the block).
    pub fn read_rows(&self, rows: &[u64], dtype: Option<Dtype>) -> Result<Csr> {
        if let Some((r0, r1)) = as_run(rows) {
            return self.read_range(r0, r1, dtype);
        }
        let mut uniq = rows.to_vec();
        uniq.sort_unstable();
        uniq.dedup();
        // One nnz range per run of consecutive rows; each unique row's
        // offset within the concatenated read.
        let mut ranges: Vec<Range<u64>> = Vec::new();
        let mut offset = Vec::with_capacity(uniq.len());
        let mut pos = 0u64;
        for &r in &uniq {
            let (a, b) = (self.indptr[to_usize(r)], self.indptr[to_usize(r) + 1]);
            offset.push(pos);
            pos += b - a;
            match ranges.last_mut() {
                Some(last) if last.end == a => last.end = b,
                _ if a < b => ranges.push(a..b),
                _ => {}
            }
        }
        let indices = self.read_indices(&ranges)?;
        let data = self.read_data(&ranges, dtype)?;
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        indptr.push(0i64);
        if uniq.len() == rows.len() && rows.windows(2).all(|w| w[0] < w[1]) {
            // Increasing rows (what a filter leaves): the ranges were read in
            // output order, so the values are the block as they are.
            // Each row ends where the next starts; the last at `pos` (no rows: no ends).
            indptr.extend((1..=uniq.len()).map(|k| offset.get(k).copied().unwrap_or(pos) as i64));
            let mut block = Csr {
                nrows: rows.len(),
                ncols: to_usize(self.ncols),
                indptr,
                indices,
                data,
            };
            block.canonicalize(&self.what)?;
            return Ok(block);
        }
        let mut take: Vec<usize> = Vec::new();
        for &r in rows {
            let k = uniq.binary_search(&r).expect("row is in uniq");
            let len = self.indptr[to_usize(r) + 1] - self.indptr[to_usize(r)];
            take.extend(to_usize(offset[k])..to_usize(offset[k] + len));
            indptr.push(take.len() as i64);
        }
        let indices = take.iter().map(|&k| indices[k]).collect();
        let data = data.gather(take.iter().copied());
        let mut block = Csr {
            nrows: rows.len(),
            ncols: to_usize(self.ncols),
            indptr,
            indices,
            data,
        };
        block.canonicalize(&self.what)?;
        Ok(block)
    }
}

/// `Some((a, b))` when `rows` is exactly `a..b`.
pub(crate) fn as_run(rows: &[u64]) -> Option<(u64, u64)> {
    let first = *rows.first()?;
    rows.iter()
        .enumerate()
        .all(|(k, &r)| r == first + k as u64)
        .then(|| (first, first + rows.len() as u64))
}

/// Gather rows from a dense store: read each run of consecutive rows once.
pub(crate) fn gather_dense_rows(
    rows: &[u64],
    ncols: usize,
    dtype: Dtype,
    read: impl Fn(u64, u64) -> Result<Values>,
) -> Result<Values> {
    if let Some((a, b)) = as_run(rows) {
        return read(a, b);
    }
    let mut uniq = rows.to_vec();
    uniq.sort_unstable();
    uniq.dedup();
    let mut parts: Vec<(u64, Values)> = Vec::new();
    let mut i = 0;
    while i < uniq.len() {
        let mut j = i + 1;
        while j < uniq.len() && uniq[j] == uniq[j - 1] + 1 {
            j += 1;
        }
        parts.push((uniq[i], read(uniq[i], uniq[j - 1] + 1)?));
        i = j;
    }
    Ok(values_of!(dtype, T => {
        let mut out: Vec<T> = Vec::with_capacity(rows.len() * ncols);
        for &r in rows {
            let p = parts.partition_point(|(start, _)| *start <= r) - 1;
            let (start, vals) = &parts[p];
            let src: &[T] = vals.as_slice().expect("dtype");
            let k = to_usize(r - start) * ncols;
            out.extend_from_slice(&src[k..k + ncols]);
        }
        out
    }))
}
