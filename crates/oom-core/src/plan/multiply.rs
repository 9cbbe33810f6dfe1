//! Elementwise product with a scalar, a per-row factor and/or a per-column
//! factor: scipy's `X.multiply(v)` for a scalar, a column vector `(n, 1)` or
//! a row vector `(1, m)`. Computed in f64 and rounded to `dtype` (the
//! caller passes numpy's result type of the matrix and the factor, as a
//! float; integer results are cast back afterwards).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::op::{Op, Transform};
use super::ops::{gather, map_block};
use crate::block::{Block, Dtype};
use crate::error::Result;

#[derive(Serialize, Deserialize)]
pub struct Multiply {
    pub scalar: f64,
    /// One factor per output row (`None` = 1).
    pub row: Option<Arc<Vec<f64>>>,
    /// One factor per output column (`None` = 1).
    pub col: Option<Arc<Vec<f64>>>,
    /// Float type of the result.
    pub dtype: Dtype,
}

impl Transform for Multiply {
    fn name(&self) -> &'static str {
        "multiply"
    }

    fn out_dtype(&self, _input: Dtype) -> Dtype {
        self.dtype
    }

    /// `apply` converts the block to its output type first (`map_block`).
    fn reads_as(&self, input: Dtype) -> Option<Dtype> {
        Some(self.out_dtype(input))
    }

    fn apply(&self, block: Block, row0: u64) -> Result<Block> {
        let r0 = usize::try_from(row0).expect("fits");
        let s = self.scalar;
        let row = self.row.as_ref().map(|r| &r[r0..r0 + block.nrows()]);
        let col = self.col.as_deref();
        Ok(map_block(block, self.dtype, false, |r, c, x| {
            let f = row.map_or(1.0, |v| v[r]) * col.map_or(1.0, |v| v[c]);
            x * s * f
        }))
    }

    fn subset(&self, rows: Option<&[u64]>, cols: Option<&[u64]>) -> Op {
        Op::from(Multiply {
            scalar: self.scalar,
            row: self.row.as_ref().map(|r| gather(r, rows)),
            col: self.col.as_ref().map(|c| gather(c, cols)),
            dtype: self.dtype,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Csr, Values};

    #[test]
    fn multiplies_stored_values_by_row_and_column_factors() {
        // [[1, 0, 3], [0, 2, 0]]
        let b = Block::Csr(Csr {
            nrows: 2,
            ncols: 3,
            indptr: vec![0, 2, 3],
            indices: vec![0, 2, 1],
            data: Values::I32(vec![1, 3, 2]),
        });
        let m = Multiply {
            scalar: 2.0,
            row: Some(Arc::new(vec![1.0, 10.0])),
            col: Some(Arc::new(vec![1.0, 0.5, 3.0])),
            dtype: Dtype::F64,
        };
        let Block::Csr(c) = m.apply(b, 0).unwrap() else {
            panic!("sparse stays sparse")
        };
        assert_eq!(c.data, Values::F64(vec![2.0, 18.0, 20.0]));
        let t = m.subset(Some(&[1]), Some(&[1]));
        let b = Block::Csr(Csr {
            nrows: 1,
            ncols: 1,
            indptr: vec![0, 1],
            indices: vec![0],
            data: Values::F64(vec![2.0]),
        });
        let Block::Csr(c) = t.apply(b, 0).unwrap() else {
            panic!()
        };
        assert_eq!(c.data, Values::F64(vec![20.0]));
    }
}
