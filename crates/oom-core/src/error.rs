//! One error type for the whole core; the bindings map each variant to a
//! standard Python exception (see `oom-py/src/error.rs`).

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum OomError {
    /// The path does not exist.
    #[error("no such file: '{0}'")]
    NotFound(String),
    /// The file exists but cannot be read as HDF5/Zarr (directory, empty, truncated, not HDF5).
    #[error("{msg}: '{path}'")]
    Io { path: String, msg: String },
    /// A readable container that does not hold AnnData, or holds it in a layout we cannot use.
    #[error("{msg} (file '{path}', element '{key}')")]
    Format {
        path: String,
        key: String,
        msg: String,
    },
    /// Stored data that breaks its element's format (an index past the
    /// axis, a decreasing `indptr`), found while reading it. The message
    /// names the file and element.
    #[error("{0}")]
    Corrupt(String),
    /// A bad argument or a value the operation cannot accept.
    #[error("{0}")]
    Value(String),
    /// An index outside the axis.
    #[error("{0}")]
    Index(String),
    /// An element name that is not there.
    #[error("{0}")]
    Key(String),
    /// The user interrupted a long pass (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
    /// The operating system refused a write (disk full, permission denied);
    /// `errno` is its error number, so Python raises the matching `OSError`.
    #[error("{msg}")]
    Os { errno: i32, msg: String },
}

pub type Result<T> = std::result::Result<T, OomError>;

impl OomError {
    pub fn io(path: &Path, msg: impl Into<String>) -> Self {
        Self::Io {
            path: path.display().to_string(),
            msg: msg.into(),
        }
    }

    /// The OS error behind the HDF5 failure `e`, described after `context`.
    /// HDF5 reports a failed system call only deep in its stack (`errno = 28`
    /// under "direct chunk write failed"), so a full disk would otherwise not
    /// say "No space left on device". `None` when no system call failed.
    pub fn os_cause(e: &hdf5::Error, context: &str) -> Option<Self> {
        let frames = e.stack()?;
        frames
            .iter()
            .find_map(|f| errno_in(f.desc(), "errno = "))
            .map(|errno| Self::os(errno, context))
    }

    /// The OS error named in `e`'s text, described after `context`. Zarr's
    /// errors wrap the store's `io::Error` transparently, which hides it from
    /// `source()`, but its text always ends in "(os error N)".
    pub fn os_source(e: &dyn std::error::Error, context: &str) -> Option<Self> {
        errno_in(&e.to_string(), "(os error ").map(|errno| Self::os(errno, context))
    }

    fn os(errno: i32, context: &str) -> Self {
        let os = std::io::Error::from_raw_os_error(errno).to_string();
        let reason = os.split(" (os error").next().unwrap_or(&os);
        Self::Os {
            errno,
            msg: format!("{context}: {reason}"),
        }
    }

    pub fn format(path: &Path, key: &str, msg: impl Into<String>) -> Self {
        Self::Format {
            path: path.display().to_string(),
            key: key.to_string(),
            msg: msg.into(),
        }
    }
}

/// The positive number that follows `marker` in `text`.
fn errno_in(text: &str, marker: &str) -> Option<i32> {
    let (_, rest) = text.split_once(marker)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&n| n > 0)
}

#[macro_export]
macro_rules! oom_bail {
    ($variant:ident, $($arg:tt)*) => {
        return Err($crate::error::OomError::$variant(format!($($arg)*)))
    };
}

#[macro_export]
macro_rules! oom_ensure {
    ($cond:expr, $variant:ident, $($arg:tt)*) => {
        // Negated through a binding: `oom_ensure!(x > 0.0, ..)` must fail
        // for NaN, which is what `!` of the partial comparison gives (clippy's
        // neg_cmp_op_on_partial_ord would steer towards `x <= 0.0`, letting NaN in).
        {
            let ok: bool = $cond;
            if !ok {
                $crate::oom_bail!($variant, $($arg)*);
            }
        }
    };
}
