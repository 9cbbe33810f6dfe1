//! Compressed-row matrices on disk: `indptr` in memory, `indices`/`data`
//! read by nnz ranges for any set of rows.

use std::ops::Range;

use super::array::{to_usize, Array1};
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
        let bad = |m: String| Err(OomError::Value(format!("{what}: {m}")));
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

    /// The rows `r0..r1`.
    pub fn read_range(&self, r0: u64, r1: u64) -> Result<Csr> {
        let (a, b) = (self.indptr[to_usize(r0)], self.indptr[to_usize(r1)]);
        let indices = to_i32(self.indices.read_range(a..b)?, self.ncols, &self.what)?;
        let data = self.data.read_range(a..b)?;
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

    /// The rows `rows` (any order, repeats allowed), in that order.
    pub fn read_rows(&self, rows: &[u64]) -> Result<Csr> {
        if let Some((r0, r1)) = as_run(rows) {
            return self.read_range(r0, r1);
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
        let indices = to_i32(self.indices.read_ranges(&ranges)?, self.ncols, &self.what)?;
        let data = self.data.read_ranges(&ranges)?;
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

/// Stored indices of any integer type as scipy's `int32`; those that are
/// int32 already are range-checked by the block's `canonicalize`. Others
/// (Cell Ranger's int64) are checked and narrowed in two passes that
/// vectorise, with no float detour.
// Negative values wrap to huge unsigned ones, so one comparison checks both
// ends; after the check every value fits an i32.
#[allow(
    clippy::cast_sign_loss,
    clippy::cast_lossless,
    clippy::cast_possible_wrap,
    clippy::cast_possible_truncation
)]
fn to_i32(v: Values, ncols: u64, what: &str) -> Result<Vec<i32>> {
    let limit = ncols.min(1 << 31);
    macro_rules! narrow {
        ($x:expr) => {{
            let x = $x;
            if x.iter().fold(false, |bad, &c| bad | (c as u64 >= limit)) {
                let c = x
                    .iter()
                    .map(|&c| c as i64)
                    .find(|&c| c < 0 || c as u64 >= limit);
                return Err(out_of_range(c.expect("an index out of range"), ncols, what));
            }
            Ok(x.iter().map(|&c| c as i32).collect())
        }};
    }
    match v {
        Values::I32(x) => Ok(x),
        Values::I64(x) => narrow!(x),
        Values::U64(x) => narrow!(x),
        Values::U32(x) => narrow!(x),
        Values::I16(x) => narrow!(x),
        Values::U16(x) => narrow!(x),
        Values::I8(x) => narrow!(x),
        Values::U8(x) => narrow!(x),
        Values::F32(_) | Values::F64(_) => {
            Err(OomError::Value(format!("{what}: indices must be integers")))
        }
    }
}

fn out_of_range(c: i64, ncols: u64, what: &str) -> OomError {
    OomError::Value(format!(
        "{what}: stored index {c} is out of range for an axis of length {ncols}"
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_indices_are_narrowed_and_range_checked() {
        assert_eq!(
            to_i32(Values::I64(vec![0, 9, 3]), 10, "m").unwrap(),
            [0, 9, 3]
        );
        assert_eq!(to_i32(Values::U16(vec![7]), 10, "m").unwrap(), [7]);
        for bad in [
            Values::I64(vec![0, 10]),
            Values::I64(vec![-1]),
            Values::I64(vec![1 << 33]),
            Values::U64(vec![u64::MAX]),
            Values::I8(vec![-3]),
        ] {
            let e = to_i32(bad, 10, "m").unwrap_err().to_string();
            assert!(e.contains("out of range"), "{e}");
        }
        // more columns than int32 holds: values past 2^31 are refused, not wrapped
        let e = to_i32(Values::U64(vec![(1 << 32) + 5]), 1 << 40, "m").unwrap_err();
        assert!(e.to_string().contains("out of range"));
        assert!(to_i32(Values::F32(vec![1.0]), 10, "m").is_err());
    }
}
