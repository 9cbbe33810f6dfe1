//! The block driver: reads blocks of a view on the rayon pool (each read
//! also decodes its chunks in parallel), hands them to a kernel, and keeps
//! at most one block per thread in memory. Between blocks it honours a
//! cancel flag (set by the bindings on Ctrl-C) and counts progress.

use rayon::prelude::*;

use crate::block::Block;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::plan::View;

/// Stored values per block: ~4M entries, a few tens of MB per block.
pub const BLOCK_TARGET: u64 = 1 << 22;

/// Stored values per slice of a sparse block in the per-value folds (see
/// [`View::read_sliced`]): a slice's values, indices and each op's output
/// stay within a core's L2 cache. Reads stay [`BLOCK_TARGET`]-sized; reading
/// blocks this small made the read itself twice as slow. (The Gram passes
/// keep whole blocks: their spill and sort per block measured slower in slices.)
pub const SLICE: usize = 1 << 16;

/// Run `f(start, end, block)` over every block of `view`, in parallel
/// (each block its own task), and return the results in row order.
pub fn map_blocks<R: Send>(
    ctx: &Ctx,
    view: &View,
    target: u64,
    f: impl Fn(u64, u64, Block) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    Ok(fold_runs(
        ctx,
        view,
        target,
        usize::MAX,
        None,
        || (),
        |(), a, b, block| f(a, b, block),
    )?
    .1)
}

/// Fold the blocks of `view` (about `target` values each) into about
/// `groups` states: the rows are split into contiguous runs, each run is
/// folded block by block in row order on the rayon pool (with `slice`,
/// sparse blocks slice by slice, see [`View::read_sliced`], each slice handed
/// to `f` as a block of its own), and states and
/// per-block results come back in row order, so floating-point results
/// never depend on scheduling (the same numbers on every run) nor on
/// `target`.
pub fn fold_runs<S: Send, R: Send>(
    ctx: &Ctx,
    view: &View,
    target: u64,
    groups: usize,
    slice: Option<usize>,
    make: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, u64, u64, Block) -> Result<R> + Sync,
) -> Result<(Vec<S>, Vec<R>)> {
    ctx.start_pass(view.nrows());
    // Runs of rows chosen by row sizes alone (see View::runs), each cut
    // into blocks; `usize::MAX` groups: one state per block.
    let runs: Vec<Vec<(u64, u64)>> = if groups == usize::MAX {
        view.blocks(target)?.into_iter().map(|b| vec![b]).collect()
    } else {
        view.runs(groups as u64)?
            .into_iter()
            .map(|(a, b)| view.blocks_between(a, b, target))
            .collect::<Result<_>>()?
    };
    let runs: Vec<(S, Vec<R>)> = runs
        .par_iter()
        .with_max_len(1)
        .map(|run| {
            let mut state = make();
            let mut out = Vec::with_capacity(run.len());
            for &(a, b) in run {
                ctx.check()?;
                match slice {
                    None => out.push(f(&mut state, a, b, view.read(a, b)?)?),
                    Some(n) => view.read_sliced(a, b, n, |sa, sb, block| {
                        out.push(f(&mut state, sa, sb, block)?);
                        Ok(())
                    })?,
                }
                ctx.advance(b - a);
            }
            Ok((state, out))
        })
        .collect::<Result<_>>()?;
    let (states, results): (Vec<S>, Vec<Vec<R>>) = runs.into_iter().unzip();
    Ok((states, results.into_iter().flatten().collect()))
}

/// Hand every block of `view` to `f` in row order: blocks are read a
/// window at a time in parallel (one per thread), so memory stays bounded
/// while `f` (e.g. a writer) sees them sequentially.
pub fn for_each_block_in_order(
    ctx: &Ctx,
    view: &View,
    target: u64,
    f: impl FnMut(u64, u64, Block) -> Result<()>,
) -> Result<()> {
    map_blocks_in_order(ctx, view, target, |_, _, block| Ok(block), f)
}

/// Map every block of `view` with `map` in parallel and hand the results to
/// `sink` in row order, a window (one block per thread) at a time: the
/// parallel work of [`map_blocks`] with the bounded memory of a stream.
pub fn map_blocks_in_order<R: Send>(
    ctx: &Ctx,
    view: &View,
    target: u64,
    map: impl Fn(u64, u64, Block) -> Result<R> + Sync,
    mut sink: impl FnMut(u64, u64, R) -> Result<()>,
) -> Result<()> {
    let blocks = view.blocks(target)?;
    ctx.start_pass(view.nrows());
    for window in blocks.chunks(rayon::current_num_threads().max(1)) {
        ctx.check()?;
        let mapped: Vec<R> = window
            .par_iter()
            .map(|&(a, b)| map(a, b, view.read(a, b)?))
            .collect::<Result<_>>()?;
        for (&(a, b), r) in window.iter().zip(mapped) {
            sink(a, b, r)?;
            ctx.advance(b - a);
        }
    }
    Ok(())
}
