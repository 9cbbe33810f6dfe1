//! Every long call goes through [`enter`]: the GIL is released, Ctrl-C is
//! polled while the work runs (and stops it at the next block), errors are
//! mapped, and a panic becomes a RuntimeError instead of crashing Python.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use oom_core::{exec, Result};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::error::to_py;

pub fn enter<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T> + Send) -> PyResult<T> {
    let _call = exec::begin_call();
    let (tx, rx) = mpsc::channel();
    let (outcome, interrupt) = py.detach(move || {
        let mut interrupt: Option<PyErr> = None;
        let outcome = std::thread::scope(|s| {
            s.spawn(move || {
                oom_core::cpu::clear_upper_vector_state_everywhere();
                let r = catch_unwind(AssertUnwindSafe(f));
                let _ = tx.send(r);
            });
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(r) => break r,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if interrupt.is_none() {
                            if let Err(e) = Python::attach(|py| py.check_signals()) {
                                exec::cancel();
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
