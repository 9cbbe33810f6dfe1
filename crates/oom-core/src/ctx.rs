//! The context of one call: its cancel flag and its progress counters,
//! handed down to every pass the call makes (as BPCells hands down its
//! interrupt flag). Each call has its own, so passes running at once — a
//! background writer, two user threads — neither cancel nor reset each
//! other. Below storage: any layer may check it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{OomError, Result};

/// Rows done and rows started, over every pass of the calls sharing it.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    /// `(rows done, rows in all passes started so far)`.
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

/// A call's cancel flag and progress (both may be shared with a caller that
/// watches or stops several calls, see [`Ctx::sharing`]).
#[derive(Debug, Default, Clone)]
pub struct Ctx {
    cancelled: Arc<AtomicBool>,
    progress: Arc<Progress>,
    runs: Option<usize>,
}

impl Ctx {
    /// A context of its own: never cancelled unless [`Ctx::cancel`] is called on it.
    pub fn new() -> Self {
        Self::default()
    }

    /// A context whose flag and counters are `cancelled` and `progress`.
    pub fn sharing(cancelled: Arc<AtomicBool>, progress: Arc<Progress>) -> Self {
        Self {
            cancelled,
            progress,
            runs: None,
        }
    }

    /// This context, its passes folding their rows into `runs` runs.
    pub fn with_runs(self, runs: usize) -> Self {
        Self {
            runs: Some(runs.max(1)),
            ..self
        }
    }

    /// How many runs of contiguous rows a pass folds into separate states
    /// (merged in row order): one per thread unless set. A distributed
    /// worker folds its row range as one run, so its state is the very one
    /// a pass in one process makes for those rows, and the merged result
    /// is the same to the last bit.
    pub fn runs(&self) -> usize {
        self.runs
            .unwrap_or_else(|| rayon::current_num_threads().max(1))
    }

    /// Ask the passes of this context to stop at their next check.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// `Err(Interrupted)` once cancelled: called between blocks, epochs, batches.
    pub fn check(&self) -> Result<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(OomError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// A pass over `rows` rows (or other units of work) begins.
    pub fn start_pass(&self, rows: u64) {
        self.progress.total.fetch_add(rows, Ordering::Relaxed);
    }

    /// `rows` more rows of the running pass are done.
    pub fn advance(&self, rows: u64) {
        self.progress.done.fetch_add(rows, Ordering::Relaxed);
    }

    pub fn progress(&self) -> (u64, u64) {
        self.progress.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_context_leaves_another_running() {
        let (a, b) = (Ctx::new(), Ctx::new());
        a.cancel();
        assert!(matches!(a.check(), Err(OomError::Interrupted)));
        assert!(b.check().is_ok());
    }

    #[test]
    fn shared_flag_and_counters_are_seen_by_every_sharer() {
        let flag = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let (a, b) = (
            Ctx::sharing(flag.clone(), progress.clone()),
            Ctx::sharing(flag, progress.clone()),
        );
        a.start_pass(10);
        b.start_pass(5);
        a.advance(3);
        assert_eq!(progress.get(), (3, 15));
        b.cancel();
        assert!(a.check().is_err());
    }
}
