//! Column selection applied to blocks: output column j is source column
//! `cols[j]`; repeats and any order allowed, as numpy fancy indexing.

use std::ops::Range;

use crate::block::{Block, Csr, Dense};
use crate::values_of;

#[derive(Debug, Clone)]
pub struct ColSel {
    /// Source column of each output column.
    pub cols: Vec<u64>,
    /// For each source column, where its output columns start in `targets`.
    starts: Vec<u32>,
    targets: Vec<u32>,
    /// Output order equals source order (no sort needed after mapping).
    monotonic: bool,
    /// When monotonic: each source column's output column, or -1.
    target_of: Vec<i32>,
}

impl ColSel {
    pub fn new(cols: Vec<u64>, src_ncols: u64) -> Self {
        let n = usize::try_from(src_ncols).expect("fits");
        let mut count = vec![0u32; n + 1];
        for &c in &cols {
            count[usize::try_from(c).expect("fits") + 1] += 1;
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        let mut fill = count.clone();
        let mut targets = vec![0u32; cols.len()];
        for (j, &c) in cols.iter().enumerate() {
            let slot = &mut fill[usize::try_from(c).expect("fits")];
            targets[*slot as usize] = u32::try_from(j).expect("fewer than 2^32 columns");
            *slot += 1;
        }
        let monotonic = cols.windows(2).all(|w| w[0] < w[1]);
        let mut target_of = Vec::new();
        if monotonic {
            target_of = vec![-1i32; n];
            for (j, &c) in cols.iter().enumerate() {
                target_of[usize::try_from(c).expect("fits")] =
                    i32::try_from(j).expect("fewer than 2^31 columns");
            }
        }
        ColSel {
            cols,
            starts: count,
            targets,
            monotonic,
            target_of,
        }
    }

    pub fn len(&self) -> usize {
        self.cols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cols.is_empty()
    }

    pub fn apply(&self, block: Block) -> Block {
        match block {
            Block::Csr(c) => Block::Csr(self.apply_csr(&c)),
            Block::Dense(d) => Block::Dense(self.apply_dense(&d)),
        }
    }

    fn apply_csr(&self, c: &Csr) -> Csr {
        self.apply_csr_rows(c, 0..c.nrows)
    }

    /// The selected columns of rows `rows` of `c` (a slice of a block without
    /// copying the slice first).
    pub fn apply_csr_rows(&self, c: &Csr, rows: Range<usize>) -> Csr {
        if self.monotonic {
            return self.apply_csr_increasing(c, rows);
        }
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        indptr.push(0i64);
        let mut indices: Vec<i32> = Vec::new();
        let mut take: Vec<usize> = Vec::new();
        let mut row: Vec<(i32, usize)> = Vec::new();
        let nrows = rows.len();
        for r in rows {
            let (a, b) = c.row_range(r);
            row.clear();
            for k in a..b {
                let s = c.indices[k] as usize;
                for &t in &self.targets[self.starts[s] as usize..self.starts[s + 1] as usize] {
                    row.push((i32::try_from(t).expect("fits"), k));
                }
            }
            if !self.monotonic {
                row.sort_unstable_by_key(|&(j, _)| j);
            }
            indices.extend(row.iter().map(|&(j, _)| j));
            take.extend(row.iter().map(|&(_, k)| k));
            indptr.push(indices.len() as i64);
        }
        Csr {
            nrows,
            ncols: self.len(),
            indptr,
            indices,
            data: c.data.gather(take.into_iter()),
        }
    }

    /// Increasing columns (what `filter_genes` leaves): each source column
    /// maps to at most one output column, in order, so entries are kept or
    /// dropped in a single typed sweep.
    fn apply_csr_increasing(&self, c: &Csr, rows: Range<usize>) -> Csr {
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        indptr.push(0i64);
        let nnz = (c.indptr[rows.end] - c.indptr[rows.start]) as usize;
        let nrows = rows.len();
        let mut indices: Vec<i32> = Vec::with_capacity(nnz);
        let data = values_of!(c.data.dtype(), T => {
            let src: &[T] = c.data.as_slice().expect("dtype");
            let mut out: Vec<T> = Vec::with_capacity(nnz);
            let (to, vo) = (indices.spare_capacity_mut(), out.spare_capacity_mut());
            // Branch-free compaction: every entry is written at `n`, which
            // only advances for a kept column (with a few thousand genes of
            // tens of thousands kept, a branch would mispredict often).
            let mut n = 0usize;
            for r in rows {
                let (a, b) = c.row_range(r);
                for (&s, &x) in c.indices[a..b].iter().zip(&src[a..b]) {
                    let t = self.target_of[s as usize];
                    to[n].write(t);
                    vo[n].write(x);
                    n += usize::from(t >= 0);
                }
                indptr.push(n as i64);
            }
            // SAFETY: the first n slots were written above (n ≤ nnz = capacity).
            unsafe {
                indices.set_len(n);
                out.set_len(n);
            }
            // A block kept whole (`to_memory`, a gene read over all cells)
            // must not hold the source block's room: a few columns kept
            // would otherwise cost every source value's bytes.
            if n < nnz / 2 {
                out.shrink_to_fit();
            }
            out
        });
        if indices.len() < nnz / 2 {
            indices.shrink_to_fit();
        }
        Csr {
            nrows,
            ncols: self.len(),
            indptr,
            indices,
            data,
        }
    }

    fn apply_dense(&self, d: &Dense) -> Dense {
        let n = d.ncols;
        let data = values_of!(d.data.dtype(), T => {
            let src: &[T] = d.data.as_slice().expect("dtype");
            let mut out = Vec::with_capacity(d.nrows * self.len());
            for r in 0..d.nrows {
                let row = &src[r * n..(r + 1) * n];
                out.extend(self.cols.iter().map(|&c| row[usize::try_from(c).expect("fits")]));
            }
            out
        });
        Dense {
            nrows: d.nrows,
            ncols: self.len(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Values;

    /// Rows with gaps, an empty row and a last column.
    fn csr() -> Csr {
        Csr {
            nrows: 3,
            ncols: 6,
            indptr: vec![0, 3, 3, 6],
            indices: vec![0, 2, 5, 1, 2, 3],
            data: Values::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        }
    }

    fn selected_like_dense(cols: Vec<u64>) {
        let c = csr();
        let sel = ColSel::new(cols, 6);
        let got = sel.apply_csr(&c).to_dense();
        assert_eq!(got, sel.apply_dense(&c.to_dense()), "cols {:?}", sel.cols);
        for (a, b) in [(0, 1), (1, 3), (2, 3), (1, 1)] {
            assert_eq!(
                sel.apply_csr_rows(&c, a..b),
                sel.apply_csr(&c.slice_rows(a, b)),
                "rows {a}..{b} of cols {:?}",
                sel.cols
            );
        }
    }

    #[test]
    fn increasing_and_general_selections_match_dense_indexing() {
        selected_like_dense(vec![0, 2, 3]);
        selected_like_dense(vec![1, 4, 5]);
        selected_like_dense(vec![]);
        selected_like_dense(vec![5, 2, 2, 0]);
    }
}
