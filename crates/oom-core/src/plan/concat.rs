//! Several matrices stacked by rows (`anndataoom.concat`), read lazily: a
//! source of a plan (see [`super::Source`]), not a stored matrix.
//!
//! Each part is a [`View`] (a stored matrix, possibly subset or
//! transformed) plus a column map: `colmap[j]` is the output column of the
//! part's column `j`, or `-1` when the column is dropped (inner join).
//! Output columns that no part column maps to are missing for that part:
//! `fill` (outer join), stored explicitly in CSR output unless it is zero,
//! as `anndata.concat` does. A part that keeps no column (the stand-in for
//! an element an input lacks in an outer join) is never read: it only gives
//! its row count, and its rows are all `fill`.
//! Blocks are read part by part and their columns remapped, so memory stays
//! bounded by one block, as for a single file.

use std::sync::Arc;

use super::{cast_block, View};
use crate::block::{Block, Csr, Dense, Dtype, Scalar, Values};
use crate::error::{OomError, Result};
use crate::storage::matrix::RowCost;
use crate::values_of;

/// One file (or view) of a row concatenation.
pub struct ConcatPart {
    pub view: View,
    /// Output column of each of the part's columns (`-1` = dropped).
    pub colmap: Vec<i64>,
}

pub struct Concat {
    parts: Vec<ConcatPart>,
    /// First output row of each part; `offsets[parts.len()]` is the total.
    offsets: Vec<u64>,
    ncols: u64,
    dtype: Dtype,
    sparse: bool,
    fill: f64,
    /// Whether each part's kept columns appear in increasing output order.
    monotonic: Vec<bool>,
    /// CSR output with a non-zero `fill`: the output columns each part lacks.
    missing: Vec<Vec<i32>>,
    /// Parts whose columns are exactly the output's, in order (read as they are).
    identity: Vec<bool>,
    /// Parts that keep no column: all fill, not read.
    blank: Vec<bool>,
    /// Exact stored nnz when every part is a whole, untransformed, sparse
    /// source with no dropped column.
    nnz: Option<u64>,
}

impl Concat {
    /// Stack `parts` into a matrix of `ncols` columns of `dtype` (CSR if
    /// `sparse`, else dense), with `fill` where a part lacks a column.
    pub fn new(
        parts: Vec<ConcatPart>,
        ncols: u64,
        dtype: Dtype,
        sparse: bool,
        fill: f64,
    ) -> Result<Self> {
        if parts.is_empty() {
            return Err(OomError::Value("concat needs at least one matrix".into()));
        }
        let mut offsets = vec![0u64];
        let mut monotonic = Vec::with_capacity(parts.len());
        let mut nnz = Some(0u64);
        for (i, p) in parts.iter().enumerate() {
            let n = p.view.ncols();
            if p.colmap.len() as u64 != n {
                return Err(OomError::Value(format!(
                    "concat part {i}: column map has {} entries, the matrix has {n} columns",
                    p.colmap.len()
                )));
            }
            if let Some(&c) = p
                .colmap
                .iter()
                .find(|&&c| c < -1 || c >= i64::try_from(ncols).unwrap_or(i64::MAX))
            {
                return Err(OomError::Index(format!(
                    "concat part {i}: output column {c} out of range 0..{ncols}"
                )));
            }
            let kept: Vec<i64> = p.colmap.iter().copied().filter(|&c| c >= 0).collect();
            monotonic.push(kept.windows(2).all(|w| w[0] < w[1]));
            let whole = p.view.rows.is_none()
                && p.view.cols.is_none()
                && p.view.is_plain()
                && p.view.is_sparse();
            nnz = match (
                nnz,
                whole && kept.len() == p.colmap.len(),
                p.view.src.stored_nnz(),
            ) {
                (Some(acc), true, Some(k)) => Some(acc + k),
                _ => None,
            };
            offsets.push(offsets[i] + p.view.nrows());
        }
        let missing: Vec<Vec<i32>> = if sparse && fill != 0.0 {
            let n = usize::try_from(ncols).expect("fits");
            parts.iter().map(|p| absent_columns(&p.colmap, n)).collect()
        } else {
            vec![Vec::new(); parts.len()]
        };
        if missing.iter().any(|m| !m.is_empty()) {
            nnz = None;
        }
        let identity = parts
            .iter()
            .map(|p| {
                p.colmap.len() as u64 == ncols && p.colmap.iter().zip(0i64..).all(|(&c, j)| c == j)
            })
            .collect();
        let blank = parts
            .iter()
            .map(|p| p.colmap.iter().all(|&c| c < 0))
            .collect();
        Ok(Concat {
            parts,
            offsets,
            ncols,
            dtype,
            sparse,
            fill,
            monotonic,
            missing,
            identity,
            blank,
            nnz,
        })
    }

    pub fn parts(&self) -> &[ConcatPart] {
        &self.parts
    }

    /// The value of an output column a part does not have.
    pub fn fill(&self) -> f64 {
        self.fill
    }

    pub fn nrows(&self) -> u64 {
        *self.offsets.last().expect("offsets is never empty")
    }

    pub fn ncols(&self) -> u64 {
        self.ncols
    }

    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    pub fn is_sparse(&self) -> bool {
        self.sparse
    }

    pub fn stored_nnz(&self) -> Option<u64> {
        if self.sparse {
            self.nnz
        } else {
            None
        }
    }

    fn part_of(&self, r: u64) -> usize {
        self.offsets.partition_point(|&o| o <= r) - 1
    }

    /// Read cost per output row (stored entries of the part's source row).
    pub fn row_cost(&self) -> Result<RowCost> {
        if !self.sparse {
            return Ok(RowCost::Width(self.ncols));
        }
        let mut ptr = Vec::with_capacity(usize::try_from(self.nrows()).expect("fits") + 1);
        ptr.push(0u64);
        let mut acc = 0u64;
        for (i, p) in self.parts.iter().enumerate() {
            let cost = if self.blank[i] {
                RowCost::Width(self.missing[i].len() as u64)
            } else if p.view.is_sparse() {
                p.view.src.row_cost()?
            } else {
                RowCost::Width(p.view.ncols())
            };
            for r in 0..p.view.nrows() {
                acc += cost.of(p.view.src_row(r));
                ptr.push(acc);
            }
        }
        Ok(RowCost::Ptr(Arc::new(ptr)))
    }

    /// Output rows `rows` (any order, repeats allowed) as one block.
    pub fn read_rows(&self, rows: &[u64]) -> Result<Block> {
        let n = self.nrows();
        if let Some(&r) = rows.iter().find(|&&r| r >= n) {
            return Err(OomError::Index(format!(
                "row {r} out of range for {n} rows"
            )));
        }
        let mut blocks = Vec::new();
        let mut i = 0;
        while i < rows.len() {
            let part = self.part_of(rows[i]);
            let (lo, hi) = (self.offsets[part], self.offsets[part + 1]);
            let mut j = i;
            while j < rows.len() && rows[j] >= lo && rows[j] < hi {
                j += 1;
            }
            let local: Vec<u64> = rows[i..j].iter().map(|&r| r - lo).collect();
            blocks.push(self.read_part(part, &local)?);
            i = j;
        }
        Ok(Block::vstack(
            blocks,
            usize::try_from(self.ncols).expect("fits"),
            self.dtype,
            self.sparse,
        ))
    }

    fn read_part(&self, part: usize, local: &[u64]) -> Result<Block> {
        let p = &self.parts[part];
        if self.blank[part] {
            return Ok(self.blank_rows(part, local.len()));
        }
        let run = local.windows(2).all(|w| w[1] == w[0] + 1);
        let block = if run {
            let a = local.first().copied().unwrap_or(0);
            p.view.read(a, a + local.len() as u64)?
        } else {
            p.view
                .subset(Some(local), None)?
                .read(0, local.len() as u64)?
        };
        let block = cast_block(block, self.dtype);
        if self.identity[part] && matches!(block, Block::Csr(_)) == self.sparse {
            return Ok(block);
        }
        let ncols = usize::try_from(self.ncols).expect("fits");
        let fill = (&self.missing[part][..], self.fill);
        Ok(match (block, self.sparse) {
            (Block::Csr(c), true) => {
                Block::Csr(remap_csr(&c, &p.colmap, ncols, self.monotonic[part], fill))
            }
            (Block::Dense(d), true) => Block::Csr(remap_csr(
                &dense_to_csr(&d),
                &p.colmap,
                ncols,
                self.monotonic[part],
                fill,
            )),
            (Block::Csr(c), false) => {
                Block::Dense(remap_dense(&c.to_dense(), &p.colmap, ncols, self.fill))
            }
            (Block::Dense(d), false) => Block::Dense(remap_dense(&d, &p.colmap, ncols, self.fill)),
        })
    }

    /// `n` rows of a part that keeps no column: `fill` everywhere (stored in
    /// CSR output only when non-zero).
    fn blank_rows(&self, part: usize, n: usize) -> Block {
        let ncols = usize::try_from(self.ncols).expect("fits");
        if !self.sparse {
            let data = values_of!(self.dtype, T => vec![T::from_f64(self.fill); n * ncols]);
            return Block::Dense(Dense {
                nrows: n,
                ncols,
                data,
            });
        }
        let none = Csr {
            nrows: n,
            ncols: self.parts[part].colmap.len(),
            indptr: vec![0; n + 1],
            indices: Vec::new(),
            data: Values::empty(self.dtype),
        };
        let fill = (&self.missing[part][..], self.fill);
        Block::Csr(remap_csr(
            &none,
            &self.parts[part].colmap,
            ncols,
            true,
            fill,
        ))
    }
}

/// Output columns of `ncols` that no entry of `colmap` maps to, in order.
fn absent_columns(colmap: &[i64], ncols: usize) -> Vec<i32> {
    let mut hit = vec![false; ncols];
    for &t in colmap.iter().filter(|&&t| t >= 0) {
        let t = t as usize;
        hit[t] = true;
    }
    (0..ncols)
        .filter(|&j| !hit[j])
        .map(|j| i32::try_from(j).expect("fewer than 2^31 columns"))
        .collect()
}

/// Remap CSR column indices through `colmap`, dropping `-1` columns; every
/// row also gets `fill.1` stored in the columns `fill.0` (absent from the part).
fn remap_csr(c: &Csr, colmap: &[i64], ncols: usize, monotonic: bool, fill: (&[i32], f64)) -> Csr {
    let (absent, fill) = fill;
    // the fill value sits after the part's values, at index `c.nnz()`
    let with_fill;
    let source = if absent.is_empty() {
        &c.data
    } else {
        let mut v = c.data.clone();
        v.extend_from(&values_of!(c.data.dtype(), T => vec![T::from_f64(fill)]));
        with_fill = v;
        &with_fill
    };
    let mut indptr = Vec::with_capacity(c.nrows + 1);
    indptr.push(0i64);
    let mut indices = Vec::with_capacity(c.nnz());
    let mut take = Vec::with_capacity(c.nnz());
    let mut row: Vec<(i32, usize)> = Vec::new();
    for r in 0..c.nrows {
        let (a, b) = c.row_range(r);
        row.clear();
        for k in a..b {
            let t = colmap[c.indices[k] as usize];
            if t >= 0 {
                row.push((i32::try_from(t).expect("fewer than 2^31 columns"), k));
            }
        }
        row.extend(absent.iter().map(|&j| (j, c.nnz())));
        if !monotonic || !absent.is_empty() {
            row.sort_unstable_by_key(|&(j, _)| j);
        }
        indices.extend(row.iter().map(|&(j, _)| j));
        take.extend(row.iter().map(|&(_, k)| k));
        indptr.push(indices.len() as i64);
    }
    Csr {
        nrows: c.nrows,
        ncols,
        indptr,
        indices,
        data: source.gather(take.into_iter()),
    }
}

/// Scatter dense columns through `colmap` into a `fill`ed block of `ncols`.
fn remap_dense(d: &Dense, colmap: &[i64], ncols: usize, fill: f64) -> Dense {
    let n = d.ncols;
    let data = values_of!(d.data.dtype(), T => {
        let src: &[T] = d.data.as_slice().expect("dtype");
        let mut out = vec![T::from_f64(fill); d.nrows * ncols];
        for r in 0..d.nrows {
            for (j, &t) in colmap.iter().enumerate() {
                if t >= 0 {
                    let t = t as usize;
                    out[r * ncols + t] = src[r * n + j];
                }
            }
        }
        out
    });
    Dense {
        nrows: d.nrows,
        ncols,
        data,
    }
}

/// CSR of a dense block's non-zero entries.
fn dense_to_csr(d: &Dense) -> Csr {
    let n = d.ncols;
    let mut indptr = vec![0i64];
    let mut indices = Vec::new();
    let data = values_of!(d.data.dtype(), T => {
        let v: &[T] = d.data.as_slice().expect("dtype");
        let mut out: Vec<T> = Vec::new();
        for r in 0..d.nrows {
            for (j, &x) in v[r * n..(r + 1) * n].iter().enumerate() {
                if x != T::default() {
                    indices.push(i32::try_from(j).expect("fewer than 2^31 columns"));
                    out.push(x);
                }
            }
            indptr.push(indices.len() as i64);
        }
        out
    });
    Csr {
        nrows: d.nrows,
        ncols: n,
        indptr,
        indices,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr() -> Csr {
        // [[1, 0, 2], [0, 3, 0]]
        Csr {
            nrows: 2,
            ncols: 3,
            indptr: vec![0, 2, 3],
            indices: vec![0, 2, 1],
            data: Values::F32(vec![1.0, 2.0, 3.0]),
        }
    }

    #[test]
    fn remap_csr_drops_and_reorders() {
        // column 0 → 3, column 1 dropped, column 2 → 0 (not monotonic: rows re-sorted)
        let out = remap_csr(&csr(), &[3, -1, 0], 4, false, (&[], 0.0));
        assert_eq!(out.indptr, vec![0, 2, 2]);
        assert_eq!(out.indices, vec![0, 3]);
        assert_eq!(out.data, Values::F32(vec![2.0, 1.0]));
        assert_eq!(out.ncols, 4);
    }

    #[test]
    fn remap_csr_stores_fill_in_absent_columns() {
        // [[1, 0, 2], [0, 3, 0]] → columns 0, 2, 3 of 5; columns 1 and 4 absent, filled with 7
        let colmap = [2, 0, 3];
        let absent = absent_columns(&colmap, 5);
        assert_eq!(absent, vec![1, 4]);
        let out = remap_csr(&csr(), &colmap, 5, false, (&absent, 7.0));
        assert_eq!(out.indptr, vec![0, 4, 7]);
        assert_eq!(out.indices, vec![1, 2, 3, 4, 0, 1, 4]);
        assert_eq!(
            out.data,
            Values::F32(vec![7.0, 1.0, 2.0, 7.0, 3.0, 7.0, 7.0])
        );
    }

    #[test]
    fn remap_dense_fills_missing() {
        let d = csr().to_dense();
        let out = remap_dense(&d, &[2, 0, -1], 4, f64::NAN);
        let v = out.data.as_slice::<f32>().expect("f32");
        assert_eq!(v[0], 0.0);
        assert_eq!(v[2], 1.0);
        assert!(v[1].is_nan() && v[3].is_nan());
        // row 1 = [0, 3, 0] → out [3, NaN, 0, NaN]
        assert_eq!((v[4], v[6]), (3.0, 0.0));
        assert!(v[5].is_nan() && v[7].is_nan());
    }

    #[test]
    fn dense_to_csr_keeps_nonzeros() {
        let back = dense_to_csr(&csr().to_dense());
        assert_eq!(back, csr());
    }
}
