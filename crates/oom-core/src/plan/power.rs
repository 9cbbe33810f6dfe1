//! `x ** p` on every stored value (scipy's `X.power(p)`: implicit zeros stay
//! zero). Computed in f64 and rounded to `dtype` (the caller's numpy result
//! type, as a float; integer results are cast back afterwards).

use serde::{Deserialize, Serialize};

use super::op::{Op, Transform};
use super::ops::map_block;
use crate::block::{Block, Dtype};
use crate::error::Result;

#[derive(Serialize, Deserialize)]
pub struct Power {
    pub p: f64,
    pub dtype: Dtype,
}

impl Transform for Power {
    fn name(&self) -> &'static str {
        "power"
    }

    fn out_dtype(&self, _input: Dtype) -> Dtype {
        self.dtype
    }

    /// `apply` converts the block to its output type first (`map_block`).
    fn reads_as(&self, input: Dtype) -> Option<Dtype> {
        Some(self.out_dtype(input))
    }

    fn apply(&self, block: Block, _row0: u64) -> Result<Block> {
        let p = self.p;
        Ok(map_block(block, self.dtype, false, |_, _, x| x.powf(p)))
    }

    fn subset(&self, _rows: Option<&[u64]>, _cols: Option<&[u64]>) -> Op {
        Op::from(Power {
            p: self.p,
            dtype: self.dtype,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Dense, Values};

    #[test]
    fn powers_every_value() {
        let b = Block::Dense(Dense {
            nrows: 1,
            ncols: 3,
            data: Values::F32(vec![0.0, 2.0, 3.0]),
        });
        let out = Power {
            p: 2.0,
            dtype: Dtype::F32,
        }
        .apply(b, 0)
        .unwrap();
        assert_eq!(
            out,
            Block::Dense(Dense {
                nrows: 1,
                ncols: 3,
                data: Values::F32(vec![0.0, 4.0, 9.0])
            })
        );
    }
}
