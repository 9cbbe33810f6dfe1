//! Python bindings of `oom-core`: type conversion and the call boundary only.

mod concat;
mod convert;
mod enter;
mod error;
mod graph;
mod h5ad;
mod leiden;
mod matrix;
mod mtx;
mod pca;
mod pp;
mod pp_extra;
mod seed;
mod state;
mod tl;
mod umap;
mod zarr;

use pyo3::prelude::*;

/// glibc gives every thread its own malloc arena and keeps the freed block
/// buffers of a pass cached there, so the next pass's peak stacks on top of
/// them. One shared arena reuses them instead (100k-cell pipeline: ~420
/// instead of ~515 MiB peak, and no slower). `MALLOC_ARENA_MAX` set by the
/// user wins; `ANNDATAOOM_MALLOC_ARENA_MAX=0` leaves glibc's default.
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let arenas = std::env::var("ANNDATAOOM_MALLOC_ARENA_MAX")
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(1);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if arenas > 0 {
        // SAFETY: mallopt only changes allocator tuning; arenas already
        // created keep working.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

#[pymodule]
fn _oom(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    limit_malloc_arenas();
    m.add("AnnDataReadError", py.get_type::<error::AnnDataReadError>())?;
    m.add(
        "AnnDataFormatError",
        py.get_type::<error::AnnDataFormatError>(),
    )?;
    m.add_class::<matrix::Matrix>()?;
    m.add_function(wrap_pyfunction!(matrix::open, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::check_file, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::is_zarr_node, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::add_filter_plugin_dir, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::missing_filter_message, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::string_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::matrix_from_plan, m)?)?;
    m.add_class::<enter::CallContext>()?;
    pp::register(m)?;
    pca::register(m)?;
    state::register(m)?;
    seed::register(m)?;
    concat::register(m)?;
    tl::register(m)?;
    umap::register(m)?;
    zarr::register(m)?;
    h5ad::register(m)?;
    pp_extra::register(m)?;
    mtx::register(m)?;
    graph::register(m)?;
    leiden::register(m)?;
    Ok(())
}
