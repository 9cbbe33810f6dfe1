//! Where a stored matrix was opened from, so that a plan can name it and
//! another process can open it again; and a small per-process cache of the
//! matrices reopened that way (a worker rebuilds the same plan for every
//! task, and opening a sparse matrix reads its whole row pointer).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::cellranger::{open_10x, open_transposed_dense};
use super::container::open_store;
use super::h5file::H5File;
use super::matrix::{open_matrix, StoredMatrix};
use super::remote::is_url;
use crate::error::{OomError, Result};

/// How a matrix is laid out in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// An element of an `.h5ad` file or a Zarr store (local or a URL).
    AnnData,
    /// A Cell Ranger `.h5` matrix group (genes × cells CSC read as cells × genes).
    TenX,
    /// A loom file's dense genes × cells array, read by column ranges.
    Loom,
}

impl Layout {
    pub fn from_name(name: &str) -> Result<Layout> {
        match name {
            "anndata" => Ok(Layout::AnnData),
            "10x" => Ok(Layout::TenX),
            "loom" => Ok(Layout::Loom),
            other => Err(OomError::Value(format!(
                "unknown layout '{other}' (use 'anndata', '10x' or 'loom')"
            ))),
        }
    }
}

/// A matrix element of a file: enough to open it again anywhere the path is readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// An absolute path, or a URL (`s3://`, `http(s)://`).
    pub path: String,
    pub key: String,
    pub layout: Layout,
}

impl Origin {
    /// The element `key` of `path` (made absolute, so other working directories find it).
    pub fn new(path: &Path, key: &str, layout: Layout) -> Result<Origin> {
        let text = path.to_string_lossy();
        let path = if is_url(&text) {
            text.into_owned()
        } else {
            std::path::absolute(path)
                .map_err(|e| OomError::io(path, format!("cannot resolve the path: {e}")))?
                .display()
                .to_string()
        };
        Ok(Origin {
            path,
            key: key.to_string(),
            layout,
        })
    }

    /// Open the matrix (it remembers this origin).
    pub fn open(&self) -> Result<StoredMatrix> {
        let path = Path::new(&self.path);
        let m = match self.layout {
            Layout::TenX => open_10x(&H5File::open(path)?, &self.key)?,
            Layout::Loom => open_transposed_dense(&H5File::open(path)?, &self.key)?,
            Layout::AnnData => {
                let f = open_store(path)?;
                f.ensure_anndata()?;
                open_matrix(&*f, &self.key)?
            }
        };
        Ok(m.with_origin(self.clone()))
    }

    /// What the file looks like now (`None` for URLs): a cached open of an
    /// older file of the same name must not be reused.
    fn stamp(&self) -> Option<(u64, SystemTime)> {
        if is_url(&self.path) {
            return None;
        }
        let meta = std::fs::metadata(&self.path).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    }
}

/// Matrices kept open per process by [`reopen`].
const CACHE_SIZE: usize = 8;

type Cached = (Origin, Option<(u64, SystemTime)>, Arc<StoredMatrix>);

static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());

/// The matrix at `origin`, opened at most once per process while the file
/// is unchanged (the [`CACHE_SIZE`] most recently used are kept open).
pub fn reopen(origin: &Origin) -> Result<Arc<StoredMatrix>> {
    let stamp = origin.stamp();
    {
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = cache
            .iter()
            .position(|(o, s, _)| o == origin && *s == stamp)
        {
            let hit = cache.remove(i);
            let m = Arc::clone(&hit.2);
            cache.push(hit);
            return Ok(m);
        }
    }
    // Opened outside the lock: two threads opening the same file at once
    // only cost a duplicate open.
    let m = Arc::new(origin.open()?);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|(o, _, _)| o != origin);
    cache.push((origin.clone(), stamp, Arc::clone(&m)));
    if cache.len() > CACHE_SIZE {
        cache.remove(0);
    }
    Ok(m)
}
