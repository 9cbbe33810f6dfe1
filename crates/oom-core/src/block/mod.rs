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

    /// Visit every stored value of row `r` as `(column, value)`.
    #[inline]
    /// The stored columns of row `r` of a CSR block (`None` for a dense
    /// block or a row past the end).
    pub fn row_columns(&self, r: usize) -> Option<&[i32]> {
        match self {
            Block::Csr(c) if r < c.nrows => {
                let (a, b) = c.row_range(r);
                Some(&c.indices[a..b])
            }
            _ => None,
        }
    }

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
