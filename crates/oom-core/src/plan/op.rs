//! The transforms of a plan: [`Transform`] is what every one does to a
//! block, [`Op`] says which one it is, with its parameters. `Op` is data
//! (serde), so a whole plan can be written as bytes and rebuilt in another
//! process (see [`super::wire`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    Cast, Combat, Downsample, Log1p, Multiply, Normalize, Pearson, Power, Regress, Scale, Sqrt,
};
use crate::block::{Block, Dtype};
use crate::error::Result;

/// One lazy transform of a view's values.
///
/// Contract: `apply` is elementwise given per-row/per-column parameters held
/// in the view's *output* coordinates (`row0` is the output row of the
/// block's first row); `subset` returns the same op for a selection of
/// output rows/columns (positions into the current output, repeats allowed).
pub trait Transform: Send + Sync {
    /// Short name for reprs (`normalize`, `log1p`, `scale`, …).
    fn name(&self) -> &'static str;
    /// Element type produced from an input of type `input`.
    fn out_dtype(&self, input: Dtype) -> Dtype;
    /// True when a sparse input comes out dense (e.g. zero-centering).
    fn densifies(&self) -> bool {
        false
    }
    /// A type `d` such that `apply(b)` equals `apply(cast_block(b, d))` for
    /// every block `b` of type `input` (the op's first step is that cast),
    /// so the storage may decode straight into `d`. `None` (the default):
    /// the op needs its input as stored.
    fn reads_as(&self, _input: Dtype) -> Option<Dtype> {
        None
    }
    /// True when an output value depends on the whole source row (its other
    /// columns), not only on per-row/per-column parameters: a column
    /// selection must then come after the op, not before it.
    fn needs_whole_rows(&self) -> bool {
        false
    }
    /// Transform one block whose first row is output row `row0`.
    fn apply(&self, block: Block, row0: u64) -> Result<Block>;
    /// This op restricted to output `rows` / `cols` (`None` = all).
    fn subset(&self, rows: Option<&[u64]>, cols: Option<&[u64]>) -> Op;
}

macro_rules! op_enum {
    ($($name:ident),* $(,)?) => {
        /// Which transform, with its parameters (shared, so cloning a plan is cheap).
        #[derive(Clone, Serialize, Deserialize)]
        pub enum Op {
            $($name(Arc<$name>),)*
        }

        impl std::ops::Deref for Op {
            type Target = dyn Transform;

            fn deref(&self) -> &Self::Target {
                match self {
                    $(Op::$name(op) => &**op,)*
                }
            }
        }

        $(impl From<$name> for Op {
            fn from(op: $name) -> Op {
                Op::$name(Arc::new(op))
            }
        })*
    };
}

op_enum!(
    Normalize, Log1p, Scale, Pearson, Regress, Combat, Downsample, Multiply, Power, Sqrt, Cast
);
