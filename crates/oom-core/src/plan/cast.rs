//! A change of element type in the middle of a plan (`X.astype(d)` followed
//! by another transform). A cast after the last transform stays the view's
//! `cast`; once a transform follows, the cast becomes this op so that the
//! transform sees values of type `d` (e.g. a float64 cast of integer counts
//! normalizes in float64, not in the float32 that integers get).

use serde::{Deserialize, Serialize};

use super::op::{Op, Transform};
use super::ops::cast_block;
use crate::block::{Block, Dtype};
use crate::error::Result;

#[derive(Serialize, Deserialize)]
pub struct Cast {
    pub dtype: Dtype,
}

impl Transform for Cast {
    fn name(&self) -> &'static str {
        "astype"
    }

    fn out_dtype(&self, _input: Dtype) -> Dtype {
        self.dtype
    }

    fn apply(&self, block: Block, _row0: u64) -> Result<Block> {
        Ok(cast_block(block, self.dtype))
    }

    fn subset(&self, _rows: Option<&[u64]>, _cols: Option<&[u64]>) -> Op {
        Op::from(Cast { dtype: self.dtype })
    }
}
