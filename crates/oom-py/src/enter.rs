//! Every long call goes through [`enter`]: the GIL is released, the work
//! gets its call context (cancel flag, progress), Ctrl-C is polled while it
//! runs (and cancels that context only), errors are mapped, and a panic
//! becomes a RuntimeError instead of crashing Python.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use oom_core::{Ctx, Result};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::error::to_py;

thread_local! {
    /// Contexts entered on this (Python) thread, innermost last.
    static ENTERED: RefCell<Vec<Ctx>> = const { RefCell::new(Vec::new()) };
}

/// The context of the calls a Python thread makes inside `with
/// CallContext() as c:` — ``c.progress()`` for a progress bar polled from
/// another thread, ``c.cancel()`` to stop them from another thread. A call
/// made outside any gets a context of its own.
#[pyclass(frozen, module = "anndataoom._oom")]
pub struct CallContext {
    ctx: Ctx,
}

#[pymethods]
impl CallContext {
    /// `runs`: fold the rows of every pass into this many runs (default:
    /// one per thread; a distributed worker uses 1, see `Matrix.runs`).
    #[new]
    #[pyo3(signature = (runs=None))]
    fn new(runs: Option<usize>) -> PyResult<Self> {
        let ctx = Ctx::new();
        Ok(Self {
            ctx: match runs {
                Some(0) => {
                    return Err(pyo3::exceptions::PyValueError::new_err(
                        "runs must be at least 1",
                    ))
                }
                Some(r) => ctx.with_runs(r),
                None => ctx,
            },
        })
    }

    /// How many runs of rows its passes fold into separate states.
    #[getter]
    fn runs(&self) -> usize {
        self.ctx.runs()
    }

    /// Stop the calls of this context at their next block; later calls
    /// inside it stop at once (InterruptedError / KeyboardInterrupt).
    fn cancel(&self) {
        self.ctx.cancel();
    }

    /// `(rows done, rows in all passes started so far)` of its calls.
    fn progress(&self) -> (u64, u64) {
        self.ctx.progress()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        ENTERED.with(|e| e.borrow_mut().push(slf.get().ctx.clone()));
        slf
    }

    fn __exit__(
        &self,
        _ty: Option<&Bound<'_, PyAny>>,
        _value: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) {
        ENTERED.with(|e| e.borrow_mut().pop());
    }
}

pub fn enter<T: Send>(py: Python<'_>, f: impl FnOnce(&Ctx) -> Result<T> + Send) -> PyResult<T> {
    let ctx = ENTERED
        .with(|e| e.borrow().last().cloned())
        .unwrap_or_default();
    let (tx, rx) = mpsc::channel();
    let (outcome, interrupt) = py.detach(move || {
        let ctx = &ctx;
        let mut interrupt: Option<PyErr> = None;
        let outcome = std::thread::scope(|s| {
            s.spawn(move || {
                oom_core::cpu::clear_upper_vector_state_everywhere();
                let r = catch_unwind(AssertUnwindSafe(|| f(ctx)));
                let _ = tx.send(r);
            });
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(r) => break r,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if interrupt.is_none() {
                            if let Err(e) = Python::attach(|py| py.check_signals()) {
                                ctx.cancel();
                                interrupt = Some(e);
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        break Err(
                            Box::new("worker thread vanished") as Box<dyn std::any::Any + Send>
                        )
                    }
                }
            }
        });
        (outcome, interrupt)
    });
    if let Some(e) = interrupt {
        return Err(e);
    }
    match outcome {
        Ok(r) => r.map_err(to_py),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!(
                "internal error in anndataoom (please report): {what}"
            )))
        }
    }
}
