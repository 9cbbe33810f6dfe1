//! The one block type that flows from storage through the plan into kernels:
//! a run of rows, as CSR or as row-major dense values.

mod csr;
mod dense;
mod values;

pub use csr::Csr;
pub use dense::Dense;
pub use values::{is_whole, Dtype, Scalar, Values};

use crate::with_values;

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Csr(Csr),
    Dense(Dense),
}

/// How many stored entries ahead [`Block::for_row_ahead`] looks: ~50 ns of
/// per-value work, about one cache miss to L3.
pub const AHEAD: usize = 16;

/// The CSR entries `range` of `indices` and `vals` as `(column, value)`,
/// calling `ahead(j)` before each with the column `j` of the entry
/// [`AHEAD`] places later (in this row or a later one), for a kernel to
/// prefetch that column's state. A typed loop: a kernel calling it per row
/// keeps its row totals in registers.
#[inline(always)]
pub fn for_entries_ahead<T: Scalar>(
    indices: &[i32],
    vals: &[T],
    range: std::ops::Range<usize>,
    mut ahead: impl FnMut(usize),
    mut f: impl FnMut(usize, f64),
) {
    for k in range {
        if let Some(&later) = indices.get(k + AHEAD) {
            ahead(later as usize);
        }
        f(indices[k] as usize, vals[k].to_f64());
    }
}

impl Block {
    pub fn nrows(&self) -> usize {
        match self {
            Block::Csr(c) => c.nrows,
            Block::Dense(d) => d.nrows,
        }
    }

    pub fn ncols(&self) -> usize {
        match self {
            Block::Csr(c) => c.ncols,
            Block::Dense(d) => d.ncols,
        }
    }

    pub fn dtype(&self) -> Dtype {
        match self {
            Block::Csr(c) => c.data.dtype(),
            Block::Dense(d) => d.data.dtype(),
        }
    }

    /// [`Block::for_row`], also calling `ahead(j)` before each stored value
    /// with the column `j` of the entry [`AHEAD`] places later in a CSR
    /// block (in this row or a later one), for a kernel to prefetch that
    /// column's state while it works on this one.
    #[inline(always)]
    pub fn for_row_ahead(&self, r: usize, ahead: impl FnMut(usize), f: impl FnMut(usize, f64)) {
        match self {
            Block::Csr(c) => {
                let (a, b) = c.row_range(r);
                with_values!(&c.data, v => for_entries_ahead(&c.indices, v, a..b, ahead, f));
            }
            Block::Dense(_) => self.for_row(r, f),
        }
    }

    /// Visit every stored value of row `r` as `(column, value)`.
    #[inline]
    pub fn for_row(&self, r: usize, mut f: impl FnMut(usize, f64)) {
        match self {
            Block::Csr(c) => {
                let (a, b) = c.row_range(r);
                with_values!(&c.data, v => {
                    for (&j, x) in c.indices[a..b].iter().zip(&v[a..b]) {
                        f(j as usize, x.to_f64());
                    }
                });
            }
            Block::Dense(d) => {
                let n = d.ncols;
                with_values!(&d.data, v => {
                    for (j, x) in v[r * n..(r + 1) * n].iter().enumerate() {
                        f(j, x.to_f64());
                    }
                });
            }
        }
    }

    /// Concatenate blocks of equal width and kind, top to bottom.
    pub fn vstack(blocks: Vec<Block>, ncols: usize, dtype: Dtype, sparse: bool) -> Block {
        let mut blocks = blocks.into_iter();
        if sparse {
            // The first block is extended in place: one part (the common
            // case) is returned without a copy.
            let mut out = match blocks.next() {
                Some(Block::Csr(c)) if c.ncols == ncols && c.data.dtype() == dtype => c,
                Some(Block::Csr(c)) => {
                    let mut out = Csr::empty(ncols, dtype);
                    out.append(&c);
                    out
                }
                Some(Block::Dense(_)) => unreachable!("vstack of mixed block kinds"),
                None => Csr::empty(ncols, dtype),
            };
            for b in blocks {
                let Block::Csr(c) = b else {
                    unreachable!("vstack of mixed block kinds")
                };
                out.append(&c);
            }
            Block::Csr(out)
        } else {
            let mut out = match blocks.next() {
                Some(Block::Dense(d)) if d.ncols == ncols && d.data.dtype() == dtype => d,
                Some(Block::Dense(d)) => Dense {
                    nrows: d.nrows,
                    ncols,
                    data: {
                        let mut v = Values::empty(dtype);
                        v.extend_from(&d.data);
                        v
                    },
                },
                Some(Block::Csr(_)) => unreachable!("vstack of mixed block kinds"),
                None => Dense {
                    nrows: 0,
                    ncols,
                    data: Values::empty(dtype),
                },
            };
            for b in blocks {
                let Block::Dense(d) = b else {
                    unreachable!("vstack of mixed block kinds")
                };
                out.nrows += d.nrows;
                out.data.extend_from(&d.data);
            }
            Block::Dense(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ahead_sees_the_column_of_a_later_entry_across_rows() {
        // Row r holds columns r, r+1, …, r+9: 10 entries per row, fewer
        // than AHEAD, so every look-ahead lands in a later row.
        let (nrows, ncols) = (5, 20);
        let mut c = Csr::empty(ncols, Dtype::F32);
        for r in 0..nrows {
            c.indices.extend((r..r + 10).map(|j| j as i32));
            c.data
                .extend_from(&Values::F32((0..10).map(|k| k as f32).collect()));
            c.indptr.push(c.indices.len() as i64);
        }
        c.nrows = nrows;
        let b = Block::Csr(c.clone());
        for r in 0..nrows {
            let (mut ahead, mut seen) = (Vec::new(), Vec::new());
            b.for_row_ahead(r, |j| ahead.push(j), |j, x| seen.push((j, x)));
            let mut plain = Vec::new();
            b.for_row(r, |j, x| plain.push((j, x)));
            assert_eq!(seen, plain);
            let want: Vec<usize> = (r * 10..r * 10 + 10)
                .filter_map(|k| c.indices.get(k + AHEAD).map(|&j| j as usize))
                .collect();
            assert_eq!(ahead, want, "row {r}");
        }
    }
}
