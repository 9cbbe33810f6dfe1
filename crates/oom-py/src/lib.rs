//! Python bindings of `oom-core`: type conversion and the call boundary only.

mod concat;
mod convert;
mod enter;
mod error;
mod matrix;
mod pca;
mod pp;
mod seed;
mod tl;
mod zarr;

use pyo3::prelude::*;

/// Rows done and rows started of the running call (for progress bars).
#[pyfunction]
fn progress() -> (u64, u64) {
    oom_core::exec::progress()
}

#[pymodule]
fn _oom(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AnnDataReadError", py.get_type::<error::AnnDataReadError>())?;
    m.add("AnnDataFormatError", py.get_type::<error::AnnDataFormatError>())?;
    m.add_class::<matrix::Matrix>()?;
    m.add_function(wrap_pyfunction!(matrix::open, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::check_file, m)?)?;
    m.add_function(wrap_pyfunction!(progress, m)?)?;
    pp::register(m)?;
    pca::register(m)?;
    seed::register(m)?;
    concat::register(m)?;
    tl::register(m)?;
    zarr::register(m)?;
    Ok(())
}
