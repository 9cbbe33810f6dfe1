//! `log1p(x)` (divided by `ln(base)` when a base is given), as scanpy's
//! `log1p`: floats keep their type, integers become float64.

use serde::{Deserialize, Serialize};

use super::op::{Op, Transform};
use super::ops::{map_values, to_float};
use crate::block::{Block, Dtype};
use crate::error::Result;
use crate::memo::Memo;

#[derive(Serialize, Deserialize)]
pub struct Log1p {
    pub base: Option<f64>,
}

impl Transform for Log1p {
    fn name(&self) -> &'static str {
        "log1p"
    }

    fn out_dtype(&self, input: Dtype) -> Dtype {
        to_float(input, Dtype::F64)
    }

    /// `apply` converts the block to its output type first (`map_block`).
    fn reads_as(&self, input: Dtype) -> Option<Dtype> {
        Some(self.out_dtype(input))
    }

    fn apply(&self, block: Block, _row0: u64) -> Result<Block> {
        let dtype = self.out_dtype(block.dtype());
        Ok(match self.base {
            None => {
                let mut m = Memo::new(f64::ln_1p);
                map_values(block, dtype, |x| m.get(x))
            }
            Some(b) => {
                let lb = b.ln();
                if dtype == Dtype::F32 {
                    // numpy: log1p in float32, then divide by the f64 log(base), rounded.
                    let mut m = Memo::new(|x: f64| f64::from(x.ln_1p() as f32) / lb);
                    map_values(block, dtype, |x| m.get(x))
                } else {
                    let mut m = Memo::new(|x: f64| x.ln_1p() / lb);
                    map_values(block, dtype, |x| m.get(x))
                }
            }
        })
    }

    fn subset(&self, _rows: Option<&[u64]>, _cols: Option<&[u64]>) -> Op {
        Op::from(Log1p { base: self.base })
    }
}
