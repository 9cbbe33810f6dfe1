//! The one place Rust errors become Python exceptions.

use oom_core::OomError;
use pyo3::exceptions::{
    PyFileNotFoundError, PyIndexError, PyKeyError, PyKeyboardInterrupt, PyOSError, PyValueError,
};
use pyo3::{create_exception, PyErr};

create_exception!(
    anndataoom,
    AnnDataReadError,
    PyOSError,
    "A file that cannot be read as AnnData (not HDF5, truncated, corrupt)."
);
create_exception!(
    anndataoom,
    AnnDataFormatError,
    PyValueError,
    "A readable file whose content is not valid AnnData."
);

pub fn to_py(e: OomError) -> PyErr {
    let msg = e.to_string();
    match e {
        OomError::NotFound(_) => PyFileNotFoundError::new_err(msg),
        OomError::Io { .. } => AnnDataReadError::new_err(msg),
        OomError::Format { .. } | OomError::Corrupt(_) => AnnDataFormatError::new_err(msg),
        OomError::Value(_) => PyValueError::new_err(msg),
        OomError::Index(_) => PyIndexError::new_err(msg),
        OomError::Key(_) => PyKeyError::new_err(msg),
        OomError::Interrupted => PyKeyboardInterrupt::new_err("interrupted"),
        // OSError(errno, text) picks the subclass (PermissionError for EACCES)
        OomError::Os { errno, msg } => PyOSError::new_err((errno, msg)),
    }
}
