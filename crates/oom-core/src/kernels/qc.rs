//! Quality-control metrics in one pass (scanpy's `calculate_qc_metrics`,
//! after scater's `calculateQCMetrics`): per row the total, the non-zero
//! count, the cumulative sum of the top-N values (a per-row partial sort)
//! and sums over masked column sets; per column the total and the non-zero
//! count. Also the sums and positive-entry counts `filter_cells` /
//! `filter_genes` use. Stored zeros never count (scanpy eliminates them).

use serde::{Deserialize, Serialize};

use crate::block::{for_entries_ahead, is_whole, Block, Scalar};
use crate::cpu::prefetch;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::kernels::{fold_blocks, merge};
use crate::plan::View;
use crate::with_values;

/// What to compute per row besides totals and counts.
#[derive(Debug, Clone, Default)]
pub struct QcParams {
    /// Ranks N (sorted, ≥ 1) for the cumulative top-N sums.
    pub top: Vec<usize>,
    /// Column masks; one row sum per mask.
    pub masks: Vec<Vec<bool>>,
}

/// Per-row results (row-major `n × top.len()` and `n × masks.len()`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QcRows {
    pub total: Vec<f64>,
    pub n_nonzero: Vec<u64>,
    pub top_cum: Vec<f64>,
    pub mask_sum: Vec<f64>,
}

impl QcRows {
    /// Add the rows that follow ours.
    pub fn append(&mut self, next: QcRows) {
        self.total.extend(next.total);
        self.n_nonzero.extend(next.n_nonzero);
        self.top_cum.extend(next.top_cum);
        self.mask_sum.extend(next.mask_sum);
    }
}

/// Mergeable per-column state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QcCols {
    pub sum: Vec<f64>,
    pub n_nonzero: Vec<u64>,
    /// Values that are negative or not whole (0: the matrix holds counts,
    /// so non-zero means positive and its sums are exact in any order).
    pub non_counts: u64,
}

impl QcCols {
    pub fn new(ncols: usize) -> Self {
        QcCols {
            sum: vec![0.0; ncols],
            n_nonzero: vec![0; ncols],
            non_counts: 0,
        }
    }

    pub fn combine(&mut self, other: &QcCols) {
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.n_nonzero.iter_mut().zip(&other.n_nonzero) {
            *a += b;
        }
        self.non_counts += other.non_counts;
    }
}

/// Cumulative sums of the largest values of `vals` at each rank in `top`
/// (sorted ascending); ranks beyond `vals.len()` get the sum of all.
pub fn top_cumsum(vals: &mut Vec<f64>, top: &[usize], out: &mut Vec<f64>) {
    let Some(&maxn) = top.last() else { return };
    let desc = |a: &f64, b: &f64| b.total_cmp(a);
    if vals.len() > maxn {
        vals.select_nth_unstable_by(maxn - 1, desc);
        vals.truncate(maxn);
    }
    vals.sort_unstable_by(desc);
    let (mut acc, mut k) = (0.0, 0usize);
    for &n in top {
        while k < n && k < vals.len() {
            acc += vals[k];
            k += 1;
        }
        out.push(acc);
    }
}

/// How many stored non-zeros of each column [`Rare`] keeps.
pub const RARE_KEEP: usize = 8;

/// The first [`RARE_KEEP`] non-zeros of each column, `(row, value)` in row
/// order: every entry of a column that has no more. `filter_genes` removes
/// such columns, and with their entries known the rows' totals over the
/// genes kept follow without another pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rare {
    /// `ncols × RARE_KEEP`; the first `min(n_nonzero, RARE_KEEP)` of a column are set.
    pub rows: Vec<u64>,
    pub vals: Vec<f64>,
}

impl Rare {
    pub fn new(ncols: usize) -> Self {
        Rare {
            rows: vec![0; ncols * RARE_KEEP],
            vals: vec![0.0; ncols * RARE_KEEP],
        }
    }

    /// Record column `c`'s entry when it is among its first: `seen` is how
    /// many it had before.
    #[inline]
    fn note(&mut self, c: usize, seen: u64, row: u64, v: f64) {
        if let Ok(k) = usize::try_from(seen) {
            if k < RARE_KEEP {
                self.rows[c * RARE_KEEP + k] = row;
                self.vals[c * RARE_KEEP + k] = v;
            }
        }
    }

    /// Append `other` (later rows, numbered from `offset` on): `mine` and
    /// `theirs` are the non-zero counts per column of the two before merging.
    pub fn combine(&mut self, other: &Rare, mine: &[u64], theirs: &[u64], offset: u64) {
        for (c, (&a, &b)) in mine.iter().zip(theirs).enumerate() {
            let a = usize::try_from(a).unwrap_or(RARE_KEEP).min(RARE_KEEP);
            let b = usize::try_from(b).unwrap_or(RARE_KEEP).min(RARE_KEEP - a);
            let (dst, src) = (c * RARE_KEEP + a, c * RARE_KEEP);
            for (d, s) in self.rows[dst..dst + b]
                .iter_mut()
                .zip(&other.rows[src..src + b])
            {
                *d = s + offset;
            }
            self.vals[dst..dst + b].copy_from_slice(&other.vals[src..src + b]);
        }
    }
}

/// One worker's QC state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QcState {
    pub cols: QcCols,
    pub rare: Rare,
}

impl QcState {
    pub fn new(ncols: usize) -> Self {
        QcState {
            cols: QcCols::new(ncols),
            rare: Rare::new(ncols),
        }
    }

    /// Merge the state of other rows of the same view (numbered as ours).
    pub fn combine(&mut self, other: &QcState) {
        self.append(other, 0);
    }

    /// Merge the state of the rows that follow ours, `other` numbering them
    /// from 0 where we number them from `offset`.
    pub fn append(&mut self, other: &QcState, offset: u64) {
        self.rare.combine(
            &other.rare,
            &self.cols.n_nonzero,
            &other.cols.n_nonzero,
            offset,
        );
        self.cols.combine(&other.cols);
    }
}

/// One row's running totals.
#[derive(Default)]
struct RowAcc {
    total: f64,
    nz: u64,
    non_counts: u64,
}

/// The per-column state as slices: held in registers through a row (behind
/// `&mut QcState` every store could move the vectors, so each value would
/// reload them).
struct ColRefs<'a> {
    sum: &'a mut [f64],
    n_nonzero: &'a mut [u64],
    rare: &'a mut Rare,
}

impl ColRefs<'_> {
    /// Add the entry `(c, v)` of row `row` (called per stored value).
    #[inline(always)]
    fn visit(&mut self, acc: &mut RowAcc, c: usize, v: f64, row: u64) {
        acc.total += v;
        self.sum[c] += v;
        acc.non_counts += u64::from(!(v >= 0.0 && is_whole(v)));
        if v != 0.0 {
            acc.nz += 1;
            let seen = self.n_nonzero[c];
            self.rare.note(c, seen, row, v);
            self.n_nonzero[c] = seen + 1;
        }
    }

    /// Entries `a..b` of a CSR block (row `row`), prefetching the state of
    /// the columns ahead ([`for_entries_ahead`]).
    #[inline(always)]
    fn csr_row<T: Scalar>(
        &mut self,
        idx: &[i32],
        vals: &[T],
        a: usize,
        b: usize,
        row: u64,
    ) -> RowAcc {
        let mut acc = RowAcc::default();
        let (sum, nnz) = (self.sum.as_ptr(), self.n_nonzero.as_ptr());
        let ahead = |j| {
            prefetch(sum.wrapping_add(j));
            prefetch(nnz.wrapping_add(j));
        };
        for_entries_ahead(idx, vals, a..b, ahead, |j, x| {
            self.visit(&mut acc, j, x, row)
        });
        acc
    }
}

/// QC of one block (its first row is `row0`): insert its columns into
/// `state`, return its rows.
pub fn qc_block(block: &Block, row0: u64, p: &QcParams, state: &mut QcState) -> QcRows {
    let n = block.nrows();
    let dense = matches!(block, Block::Dense(_));
    let mut rows = QcRows {
        total: Vec::with_capacity(n),
        n_nonzero: Vec::with_capacity(n),
        top_cum: Vec::with_capacity(n * p.top.len()),
        mask_sum: Vec::with_capacity(n * p.masks.len()),
    };
    let mut vals: Vec<f64> = Vec::new();
    let mut msum = vec![0.0; p.masks.len()];
    let QcState { cols, rare } = state;
    let mut refs = ColRefs {
        sum: &mut cols.sum,
        n_nonzero: &mut cols.n_nonzero,
        rare,
    };
    for r in 0..n {
        let row = row0 + r as u64;
        let acc = match block {
            Block::Csr(c) => {
                let (a, b) = c.row_range(r);
                with_values!(&c.data, v => refs.csr_row(&c.indices, v, a, b, row))
            }
            Block::Dense(_) => {
                let mut acc = RowAcc::default();
                block.for_row(r, |c, v| refs.visit(&mut acc, c, v, row));
                acc
            }
        };
        cols.non_counts += acc.non_counts;
        rows.total.push(acc.total);
        rows.n_nonzero.push(acc.nz);
        if !p.top.is_empty() || !p.masks.is_empty() {
            vals.clear();
            msum.iter_mut().for_each(|m| *m = 0.0);
            block.for_row(r, |c, v| {
                if !p.top.is_empty() && (dense || v != 0.0) {
                    vals.push(v);
                }
                for (m, mask) in msum.iter_mut().zip(&p.masks) {
                    if mask[c] {
                        *m += v;
                    }
                }
            });
            top_cumsum(&mut vals, &p.top, &mut rows.top_cum);
            rows.mask_sum.extend_from_slice(&msum);
        }
    }
    rows
}

/// All QC metrics of `view` in one parallel pass.
pub fn qc_metrics(ctx: &Ctx, view: &View, p: &QcParams) -> Result<(QcRows, QcState)> {
    let ncols = usize::try_from(view.ncols()).expect("fits");
    let (states, parts) = fold_blocks(
        ctx,
        view,
        || QcState::new(ncols),
        |state, row0, _, b| Ok(qc_block(&b, row0, p, state)),
    )?;
    let state = merge(states, || QcState::new(ncols), QcState::combine);
    let mut rows = QcRows::default();
    for part in parts {
        rows.append(part);
    }
    Ok((rows, state))
}

/// Row and column sums and counts of entries `> 0` (what scanpy's
/// `filter_cells`/`filter_genes` count), in one pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PositiveCounts {
    pub row_sum: Vec<f64>,
    pub row_pos: Vec<u64>,
    pub col_sum: Vec<f64>,
    pub col_pos: Vec<u64>,
}

pub fn positive_block(block: &Block, cols: &mut QcCols) -> (Vec<f64>, Vec<u64>) {
    let n = block.nrows();
    let (mut rs, mut rp) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for r in 0..n {
        let (mut s, mut k) = (0.0, 0u64);
        block.for_row(r, |c, v| {
            s += v;
            cols.sum[c] += v;
            if v > 0.0 {
                k += 1;
                cols.n_nonzero[c] += 1;
            }
        });
        rs.push(s);
        rp.push(k);
    }
    (rs, rp)
}

pub fn positive_counts(ctx: &Ctx, view: &View) -> Result<PositiveCounts> {
    let ncols = usize::try_from(view.ncols()).expect("fits");
    let (states, parts) = fold_blocks(
        ctx,
        view,
        || QcCols::new(ncols),
        |cols, _, _, b| Ok(positive_block(&b, cols)),
    )?;
    let cols = merge(states, || QcCols::new(ncols), QcCols::combine);
    let mut out = PositiveCounts {
        col_sum: cols.sum,
        col_pos: cols.n_nonzero,
        ..Default::default()
    };
    for (s, p) in parts {
        out.row_sum.extend(s);
        out.row_pos.extend(p);
    }
    Ok(out)
}

/// Per column, the number of rows whose value exceeds that row's
/// `threshold` (scanpy's `exclude_highly_expressed` test).
pub fn count_above(ctx: &Ctx, view: &View, threshold: &[f64]) -> Result<Vec<u64>> {
    let ncols = usize::try_from(view.ncols()).expect("fits");
    let (states, _) = fold_blocks(
        ctx,
        view,
        || vec![0u64; ncols],
        |cnt, a, _, b| {
            let r0 = usize::try_from(a).expect("fits");
            for r in 0..b.nrows() {
                let t = threshold[r0 + r];
                b.for_row(r, |c, v| {
                    if v > t {
                        cnt[c] += 1;
                    }
                });
            }
            Ok(())
        },
    )?;
    let out = merge(
        states,
        || vec![0u64; ncols],
        |out: &mut Vec<u64>, s: &Vec<u64>| {
            for (a, b) in out.iter_mut().zip(s) {
                *a += b;
            }
        },
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Csr, Dense, Values};

    fn csr() -> Block {
        // [[1, 0, 3, 0], [0, 0, 0, 0], [5, 2, 0, 7]] with an explicit zero in row 0
        Block::Csr(Csr {
            nrows: 3,
            ncols: 4,
            indptr: vec![0, 3, 3, 6],
            indices: vec![0, 1, 2, 0, 1, 3],
            data: Values::F32(vec![1.0, 0.0, 3.0, 5.0, 2.0, 7.0]),
        })
    }

    #[test]
    fn top_cumsum_partial_sort() {
        let mut out = Vec::new();
        top_cumsum(&mut vec![1.0, 9.0, 3.0, 7.0, 5.0], &[1, 2, 10], &mut out);
        assert_eq!(out, vec![9.0, 16.0, 25.0]);
    }

    #[test]
    fn qc_sparse_matches_dense() {
        let p = QcParams {
            top: vec![1, 2],
            masks: vec![vec![false, false, true, true]],
        };
        let mut s1 = QcState::new(4);
        let r1 = qc_block(&csr(), 0, &p, &mut s1);
        assert_eq!(r1.total, vec![4.0, 0.0, 14.0]);
        assert_eq!(r1.n_nonzero, vec![2, 0, 3]);
        assert_eq!(r1.top_cum, vec![3.0, 4.0, 0.0, 0.0, 7.0, 12.0]);
        assert_eq!(r1.mask_sum, vec![3.0, 0.0, 7.0]);
        assert_eq!(s1.cols.sum, vec![6.0, 2.0, 3.0, 7.0]);
        assert_eq!(s1.cols.n_nonzero, vec![2, 1, 1, 1]);
        let Block::Csr(c) = csr() else { unreachable!() };
        let mut s2 = QcState::new(4);
        let r2 = qc_block(&Block::Dense(c.to_dense()), 0, &p, &mut s2);
        assert_eq!(r1, r2);
        assert_eq!(s1.cols, s2.cols);
        assert_eq!(s1.rare, s2.rare);
        let mut s3 = QcState::new(4);
        s3.combine(&s1);
        s3.combine(&s2);
        assert_eq!(s3.cols.n_nonzero, vec![4, 2, 2, 2]);
    }

    /// Each column's first non-zeros in row order, across merged states.
    #[test]
    fn rare_keeps_the_first_entries_of_each_column() {
        let p = QcParams::default();
        let block = Block::Dense(crate::block::Dense {
            nrows: 12,
            ncols: 2,
            // column 0: every row non-zero (value = row + 1); column 1: rows 3 and 9
            data: Values::F64(
                (0..12)
                    .flat_map(|r| [f64::from(r + 1), if r % 6 == 3 { 0.5 } else { 0.0 }])
                    .collect(),
            ),
        });
        let mut whole = QcState::new(2);
        qc_block(&block, 0, &p, &mut whole);
        // the same rows as two states (rows 0..5 and 5..12) merged in order
        let (mut a, mut b) = (QcState::new(2), QcState::new(2));
        let Block::Dense(d) = &block else {
            unreachable!()
        };
        let Values::F64(v) = &d.data else {
            unreachable!()
        };
        let part = |r0: usize, r1: usize| {
            Block::Dense(crate::block::Dense {
                nrows: r1 - r0,
                ncols: 2,
                data: Values::F64(v[r0 * 2..r1 * 2].to_vec()),
            })
        };
        qc_block(&part(0, 5), 0, &p, &mut a);
        qc_block(&part(5, 12), 5, &p, &mut b);
        a.combine(&b);
        assert_eq!(a.rare, whole.rare);
        assert_eq!(
            &whole.rare.rows[..RARE_KEEP],
            &(0..RARE_KEEP as u64).collect::<Vec<_>>()[..]
        );
        let col1 = RARE_KEEP..RARE_KEEP + 2;
        assert_eq!(&whole.rare.rows[col1.clone()], &[3, 9]);
        assert_eq!(&whole.rare.vals[col1], &[0.5, 0.5]);
    }

    #[test]
    fn positive_counts_ignore_zeros() {
        let mut cols = QcCols::new(4);
        let (s, k) = positive_block(&csr(), &mut cols);
        assert_eq!(s, vec![4.0, 0.0, 14.0]);
        assert_eq!(k, vec![2, 0, 3]);
        let d = Block::Dense(Dense {
            nrows: 1,
            ncols: 2,
            data: Values::F64(vec![-1.0, 2.0]),
        });
        let mut cols = QcCols::new(2);
        assert_eq!(positive_block(&d, &mut cols).1, vec![1]);
    }
}
