//! Per-row scaling: `x / divisor[row]` (scanpy's `normalize_total` with
//! `divisor = counts / target_sum`, zeros replaced by 1 by the caller).
//! Integers become float32, as scanpy does.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::op::{Op, Transform};
use super::ops::{gather, map_block, to_float};
use crate::block::{Block, Dtype};
use crate::error::Result;

#[derive(Serialize, Deserialize)]
pub struct Normalize {
    /// One divisor per output row.
    pub divisor: Arc<Vec<f64>>,
}

impl Transform for Normalize {
    fn name(&self) -> &'static str {
        "normalize"
    }

    fn out_dtype(&self, input: Dtype) -> Dtype {
        to_float(input, Dtype::F32)
    }

    /// `apply` converts the block to its output type first (`map_block`).
    fn reads_as(&self, input: Dtype) -> Option<Dtype> {
        Some(self.out_dtype(input))
    }

    fn apply(&self, block: Block, row0: u64) -> Result<Block> {
        let r0 = usize::try_from(row0).expect("fits");
        let d = &self.divisor[r0..r0 + block.nrows()];
        let dtype = self.out_dtype(block.dtype());
        Ok(map_block(block, dtype, false, |r, _, x| x / d[r]))
    }

    fn subset(&self, rows: Option<&[u64]>, _cols: Option<&[u64]>) -> Op {
        Op::from(Normalize {
            divisor: gather(&self.divisor, rows),
        })
    }
}
