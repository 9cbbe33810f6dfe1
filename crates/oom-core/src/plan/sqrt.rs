//! `sqrt(x)` as scanpy's `pp.sqrt` (numpy's `np.sqrt` on the values):
//! floats keep their type, 8- and 16-bit integers become float32 (numpy
//! gives float16, which blocks do not have), wider integers float64.
//! Sparse stays sparse (`sqrt(0) = 0`).

use serde::{Deserialize, Serialize};

use super::op::{Op, Transform};
use super::ops::map_block;
use crate::block::{Block, Dtype};
use crate::error::Result;

#[derive(Serialize, Deserialize)]
pub struct Sqrt;

impl Transform for Sqrt {
    fn name(&self) -> &'static str {
        "sqrt"
    }

    fn out_dtype(&self, input: Dtype) -> Dtype {
        match input {
            Dtype::F32 | Dtype::I8 | Dtype::I16 | Dtype::U8 | Dtype::U16 => Dtype::F32,
            _ => Dtype::F64,
        }
    }

    /// `apply` converts the block to its output type first (`map_block`).
    fn reads_as(&self, input: Dtype) -> Option<Dtype> {
        Some(self.out_dtype(input))
    }

    fn apply(&self, block: Block, _row0: u64) -> Result<Block> {
        let dtype = self.out_dtype(block.dtype());
        Ok(map_block(block, dtype, false, |_, _, x| x.sqrt()))
    }

    fn subset(&self, _rows: Option<&[u64]>, _cols: Option<&[u64]>) -> Op {
        Op::from(Sqrt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Csr, Values};

    #[test]
    fn sqrt_keeps_sparsity_and_follows_numpy_types() {
        let b = Block::Csr(Csr {
            nrows: 1,
            ncols: 3,
            indptr: vec![0, 2],
            indices: vec![0, 2],
            data: Values::I32(vec![4, 9]),
        });
        let Block::Csr(c) = Sqrt.apply(b, 0).unwrap() else {
            panic!("sparse stays sparse")
        };
        assert_eq!(c.data, Values::F64(vec![2.0, 3.0]));
        assert_eq!(Sqrt.out_dtype(Dtype::F32), Dtype::F32);
        assert_eq!(Sqrt.out_dtype(Dtype::I16), Dtype::F32);
    }
}
