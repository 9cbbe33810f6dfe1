//! Streaming statistics: each is a mergeable state filled block by block.
//!
//! [`fold_blocks`] drives a kernel over a view with bounded memory: one
//! state per worker thread (not per block), merged at the end in row order.

pub mod aggregate;
pub mod gram;
pub mod moments;
pub mod qc;
pub mod ranks;
pub mod regress;
pub mod sparse_gram;
pub mod spill;
pub mod state;
pub mod sums;

use crate::block::Block;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::exec::{fold_runs, BLOCK_TARGET, SLICE};
use crate::plan::View;

/// Block size for a pass over `view`: small enough that every thread gets
/// several blocks, never more than [`BLOCK_TARGET`].
pub fn block_target(view: &View) -> u64 {
    let threads = rayon::current_num_threads().max(1) as u64;
    (view.approx_cost() / (threads * 4)).clamp(1 << 15, BLOCK_TARGET)
}

/// Run `f(state, start, end, block)` over every block of `view` in
/// parallel, one state per run of rows (`ctx.runs()`, see [`fold_runs`]),
/// sparse blocks in cache-sized slices; per-block results come back in row order.
pub fn fold_blocks<S: Send, R: Send>(
    ctx: &Ctx,
    view: &View,
    make: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, u64, u64, Block) -> Result<R> + Sync,
) -> Result<(Vec<S>, Vec<R>)> {
    fold_runs(
        ctx,
        view,
        block_target(view),
        ctx.runs(),
        Some(SLICE),
        make,
        f,
    )
}

/// Merge per-run states in row order into one (a fresh state when there
/// are none), so the result never depends on scheduling.
pub fn merge<S>(
    states: impl IntoIterator<Item = S>,
    make: impl FnOnce() -> S,
    combine: impl Fn(&mut S, &S),
) -> S {
    let mut it = states.into_iter();
    let mut out = it.next().unwrap_or_else(make);
    for s in it {
        combine(&mut out, &s);
    }
    out
}
