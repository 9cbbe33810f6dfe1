//! The block driver: reads blocks of a view on the rayon pool (each read
//! also decodes its chunks in parallel), hands them to a kernel, and keeps
//! at most one block per thread in memory. Between blocks it honours a
//! cancel flag (set by the bindings on Ctrl-C) and counts progress.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::block::Block;
use crate::error::{OomError, Result};
use crate::plan::View;

/// Stored values per block: ~4M entries, a few tens of MB per block.
pub const BLOCK_TARGET: u64 = 1 << 22;

static CANCEL: AtomicBool = AtomicBool::new(false);
static DONE_ROWS: AtomicU64 = AtomicU64::new(0);
static TOTAL_ROWS: AtomicU64 = AtomicU64::new(0);

/// Ask running passes to stop at the next block boundary.
pub fn cancel() {
    CANCEL.store(true, Ordering::SeqCst);
}

/// Calls running now (see [`begin_call`]).
static RUNNING: Mutex<usize> = Mutex::new(0);

/// Marks one call as running until dropped.
pub struct Call(());

impl Drop for Call {
    fn drop(&mut self) {
        *RUNNING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
    }
}

/// Start a call from the bindings. Only a call that starts when none runs
/// clears the cancel flag and the progress counters: a call starting beside
/// a running one (a background writer, a second user thread) must not
/// swallow that one's Ctrl-C. Concurrent calls therefore share one flag — a
/// Ctrl-C stops them all — and one progress count.
pub fn begin_call() -> Call {
    let mut running = RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *running == 0 {
        reset();
    }
    *running += 1;
    Call(())
}

fn reset() {
    CANCEL.store(false, Ordering::SeqCst);
    DONE_ROWS.store(0, Ordering::SeqCst);
    TOTAL_ROWS.store(0, Ordering::SeqCst);
}

/// `(rows done, rows in all passes started so far)` of the current call.
pub fn progress() -> (u64, u64) {
    (
        DONE_ROWS.load(Ordering::Relaxed),
        TOTAL_ROWS.load(Ordering::Relaxed),
    )
}

/// Progress of work that is not block-driven (the kNN search, the epochs
/// of a layout): `start_pass(total)` once, then `advance(done)` as it goes.
pub fn start_pass(total: u64) {
    TOTAL_ROWS.fetch_add(total, Ordering::Relaxed);
}

pub fn advance(done: u64) {
    DONE_ROWS.fetch_add(done, Ordering::Relaxed);
}

pub fn check_cancel() -> Result<()> {
    if CANCEL.load(Ordering::Relaxed) {
        Err(OomError::Interrupted)
    } else {
        Ok(())
    }
}

/// Run `f(start, end, block)` over every block of `view`, in parallel
/// (each block its own task), and return the results in row order.
pub fn map_blocks<R: Send>(
    view: &View,
    target: u64,
    f: impl Fn(u64, u64, Block) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    Ok(fold_runs(
        view,
        target,
        usize::MAX,
        || (),
        |(), a, b, block| f(a, b, block),
    )?
    .1)
}

/// Fold the blocks of `view` (about `target` values each) into about
/// `groups` states: the rows are split into contiguous runs, each run is
/// folded block by block in row order on the rayon pool, and states and
/// per-block results come back in row order, so floating-point results
/// never depend on scheduling (the same numbers on every run) nor on
/// `target`.
pub fn fold_runs<S: Send, R: Send>(
    view: &View,
    target: u64,
    groups: usize,
    make: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, u64, u64, Block) -> Result<R> + Sync,
) -> Result<(Vec<S>, Vec<R>)> {
    TOTAL_ROWS.fetch_add(view.nrows(), Ordering::Relaxed);
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
                check_cancel()?;
                let block = view.read(a, b)?;
                out.push(f(&mut state, a, b, block)?);
                DONE_ROWS.fetch_add(b - a, Ordering::Relaxed);
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
    view: &View,
    target: u64,
    f: impl FnMut(u64, u64, Block) -> Result<()>,
) -> Result<()> {
    map_blocks_in_order(view, target, |_, _, block| Ok(block), f)
}

/// Map every block of `view` with `map` in parallel and hand the results to
/// `sink` in row order, a window (one block per thread) at a time: the
/// parallel work of [`map_blocks`] with the bounded memory of a stream.
pub fn map_blocks_in_order<R: Send>(
    view: &View,
    target: u64,
    map: impl Fn(u64, u64, Block) -> Result<R> + Sync,
    mut sink: impl FnMut(u64, u64, R) -> Result<()>,
) -> Result<()> {
    let blocks = view.blocks(target)?;
    TOTAL_ROWS.fetch_add(view.nrows(), Ordering::Relaxed);
    for window in blocks.chunks(rayon::current_num_threads().max(1)) {
        check_cancel()?;
        let mapped: Vec<R> = window
            .par_iter()
            .map(|&(a, b)| map(a, b, view.read(a, b)?))
            .collect::<Result<_>>()?;
        for (&(a, b), r) in window.iter().zip(mapped) {
            sink(a, b, r)?;
            DONE_ROWS.fetch_add(b - a, Ordering::Relaxed);
        }
    }
    Ok(())
}
