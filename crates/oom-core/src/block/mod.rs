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
        if sparse {
            let mut out = Csr::empty(ncols, dtype);
            for b in blocks {
                let Block::Csr(c) = b else {
                    unreachable!("vstack of mixed block kinds")
                };
                out.append(&c);
            }
            Block::Csr(out)
        } else {
            let mut out = Dense {
                nrows: 0,
                ncols,
                data: Values::empty(dtype),
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
