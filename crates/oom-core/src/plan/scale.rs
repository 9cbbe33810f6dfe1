//! Per-column scaling as scanpy's `scale`: `(x - mean[col]) / std[col]`
//! (centering only when `zero_center`, which makes sparse blocks dense),
//! then clipping to `max_value` (to `-max_value` too when zero-centering).
//! Rows outside `mask` (when given) are left unchanged. Floats keep their
//! type, integers become float64.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::op::{Op, Transform};
use super::ops::{gather, map_block, to_float};
use crate::block::{Block, Dtype};
use crate::error::Result;

#[derive(Serialize, Deserialize)]
pub struct Scale {
    pub mean: Arc<Vec<f64>>,
    /// Standard deviation per column (zeros already replaced by 1).
    pub std: Arc<Vec<f64>>,
    pub zero_center: bool,
    pub max_value: Option<f64>,
    /// Rows to scale (`None` = all), per output row.
    pub mask: Option<Arc<Vec<bool>>>,
}

impl Transform for Scale {
    fn name(&self) -> &'static str {
        "scale"
    }

    fn out_dtype(&self, input: Dtype) -> Dtype {
        to_float(input, Dtype::F64)
    }

    /// `apply` converts the block to its output type first (`map_block`).
    fn reads_as(&self, input: Dtype) -> Option<Dtype> {
        Some(self.out_dtype(input))
    }

    fn densifies(&self) -> bool {
        self.zero_center
    }

    fn apply(&self, block: Block, row0: u64) -> Result<Block> {
        let r0 = usize::try_from(row0).expect("fits");
        let mask = self.mask.as_ref().map(|m| &m[r0..r0 + block.nrows()]);
        let dtype = self.out_dtype(block.dtype());
        let (mean, std, zc) = (&self.mean, &self.std, self.zero_center);
        let hi = self.max_value.unwrap_or(f64::INFINITY);
        let lo = if zc { -hi } else { f64::NEG_INFINITY };
        // numpy centres a dense float32 matrix in place: the difference is
        // rounded to float32 before the division.
        let round = dtype == Dtype::F32 && matches!(block, Block::Dense(_));
        Ok(map_block(block, dtype, zc, |r, c, x| {
            if mask.is_some_and(|m| !m[r]) {
                return x;
            }
            let y = if zc {
                let d = x - mean[c];
                let d = if round { f64::from(d as f32) } else { d };
                d / std[c]
            } else {
                x / std[c]
            };
            if y > hi {
                hi
            } else if y < lo {
                lo
            } else {
                y
            }
        }))
    }

    fn subset(&self, rows: Option<&[u64]>, cols: Option<&[u64]>) -> Op {
        Op::from(Scale {
            mean: gather(&self.mean, cols),
            std: gather(&self.std, cols),
            zero_center: self.zero_center,
            max_value: self.max_value,
            mask: self.mask.as_ref().map(|m| gather(m, rows)),
        })
    }
}
