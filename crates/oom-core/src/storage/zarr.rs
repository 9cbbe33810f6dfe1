//! Zarr v2 and v3 stores read through `zarrs`: every codec anndata writes
//! (blosc, zstd, gzip, sharding) decoded on all cores. A store is a local
//! directory or a remote URL (see `remote.rs`); both are seen through the
//! same key/value interface.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use zarrs::array::data_type as dt;
use zarrs::array::ArraySubset;
use zarrs::array::{Array, ArrayBytes};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::Group;
use zarrs::storage::{ReadableStorageTraits, StoreKey};

use super::array::{check_alloc, Array1};
use super::container::{Container, DenseRows};
use crate::block::{Dtype, Values};
use crate::error::{OomError, Result};

type Store = dyn ReadableStorageTraits;

pub struct ZarrStore {
    path: PathBuf,
    store: Arc<Store>,
    /// The local store directory's identity when opened (see [`identity`]).
    identity: Option<Identity>,
}

/// What identifies a local store: its directory's device and inode, and
/// its root metadata file's inode and modification time (ns).
type Identity = (u64, u64, u64, i64);

/// A store is read by path, chunk after chunk: one replaced at that path
/// (an atomic write renames a new store into place) or rewritten inside the
/// same directory (zarr's mode "w" empties it first) would silently feed the
/// new store's chunks to matrices opened on the old one; comparing
/// identities turns that into an error.
fn identity(path: &Path) -> Option<Identity> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let dir = std::fs::metadata(path).ok()?;
        let node = NODE_FILES[..2]
            .iter()
            .find_map(|f| std::fs::metadata(path.join(f)).ok())?;
        let mtime = node.mtime().saturating_mul(1_000_000_000) + node.mtime_nsec();
        Some((dir.dev(), dir.ino(), node.ino(), mtime))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The metadata files that make a directory a Zarr node.
const NODE_FILES: [&str; 3] = ["zarr.json", ".zgroup", ".zarray"];

/// Whether `path` is a directory holding a Zarr node (v2 or v3, group or array).
pub fn is_zarr_node(path: &Path) -> bool {
    NODE_FILES.iter().any(|f| path.join(f).is_file())
}

impl ZarrStore {
    fn err(&self, key: &str, msg: impl Into<String>) -> OomError {
        OomError::format(&self.path, key, msg)
    }

    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(OomError::NotFound(path.display().to_string()));
        }
        if !NODE_FILES[..2].iter().any(|f| path.join(f).is_file()) {
            return Err(OomError::io(
                path,
                "is a directory, but not a Zarr store (no zarr.json or .zgroup); expected .h5ad or .zarr",
            ));
        }
        let store = FilesystemStore::new(path)
            .map_err(|e| OomError::io(path, format!("cannot open Zarr store: {e}")))?;
        let s = ZarrStore {
            path: path.to_path_buf(),
            store: Arc::new(store),
            identity: identity(path),
        };
        s.group("")?;
        Ok(s)
    }

    /// Open the store at `url` (`s3://`, `http://`, `https://`).
    pub fn open_url(url: &str) -> Result<Self> {
        let s = ZarrStore {
            path: PathBuf::from(url),
            store: super::remote::open(url)?,
            identity: None,
        };
        // Ask for the root metadata first: an unreachable server or a
        // missing store gets its own error instead of a metadata one.
        let mut found = false;
        for name in &NODE_FILES[..2] {
            match s
                .store
                .size_key(&Self::meta_key("", name).expect("a valid key"))
            {
                Ok(size) => found |= size.is_some(),
                Err(e) => {
                    return Err(OomError::io(
                        &s.path,
                        format!("cannot read remote Zarr store: {e}"),
                    ))
                }
            }
        }
        if !found {
            return Err(OomError::NotFound(format!(
                "{url} (no zarr.json or .zgroup there)"
            )));
        }
        s.group("")?;
        Ok(s)
    }

    /// The store key of metadata file `name` of the node at `key`.
    fn meta_key(key: &str, name: &str) -> Option<StoreKey> {
        let node = key.trim_matches('/');
        StoreKey::new(if node.is_empty() {
            name.to_string()
        } else {
            format!("{node}/{name}")
        })
        .ok()
    }

    /// Whether metadata file `name` exists for the node at `key`.
    fn has(&self, key: &str, name: &str) -> bool {
        Self::meta_key(key, name).is_some_and(|k| matches!(self.store.size_key(&k), Ok(Some(_))))
    }

    fn node(key: &str) -> String {
        format!("/{}", key.trim_matches('/'))
    }

    fn group(&self, key: &str) -> Result<Group<Store>> {
        Group::open(Arc::clone(&self.store), &Self::node(key))
            .map_err(|e| self.err(key, format!("cannot read Zarr group metadata: {e}")))
    }

    fn array(&self, key: &str) -> Result<Array<Store>> {
        Array::open(Arc::clone(&self.store), &Self::node(key))
            .map_err(|e| self.err(key, format!("cannot read Zarr array metadata: {e}")))
    }

    fn attrs(&self, key: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        if self.is_group(key) {
            self.group(key).ok().map(|g| g.attributes().clone())
        } else {
            self.array(key).ok().map(|a| a.attributes().clone())
        }
    }

    /// The array at `key` with our dtype, refusing what the core cannot hold.
    fn typed(&self, key: &str) -> Result<ZArray> {
        let array = self.array(key)?;
        let dtype = dtype_of(&array).ok_or_else(|| {
            self.err(
                key,
                format!(
                    "unsupported Zarr data type {}",
                    array.data_type().name_v3().unwrap_or_default()
                ),
            )
        })?;
        Ok(ZArray {
            path: self.path.clone(),
            key: key.to_string(),
            array,
            dtype,
            identity: self.identity,
        })
    }
}

fn dtype_of(a: &Array<Store>) -> Option<Dtype> {
    let d = a.data_type();
    Some(if d.is::<dt::Float32DataType>() {
        Dtype::F32
    } else if d.is::<dt::Float64DataType>() {
        Dtype::F64
    } else if d.is::<dt::Int8DataType>() {
        Dtype::I8
    } else if d.is::<dt::Int16DataType>() {
        Dtype::I16
    } else if d.is::<dt::Int32DataType>() {
        Dtype::I32
    } else if d.is::<dt::Int64DataType>() {
        Dtype::I64
    } else if d.is::<dt::UInt8DataType>() || d.is::<dt::BoolDataType>() {
        Dtype::U8
    } else if d.is::<dt::UInt16DataType>() {
        Dtype::U16
    } else if d.is::<dt::UInt32DataType>() {
        Dtype::U32
    } else if d.is::<dt::UInt64DataType>() {
        Dtype::U64
    } else {
        return None;
    })
}

impl Container for ZarrStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn exists(&self, key: &str) -> bool {
        NODE_FILES.iter().any(|f| self.has(key, f))
    }

    fn is_group(&self, key: &str) -> bool {
        self.has(key, ".zgroup")
            || (self.has(key, "zarr.json") && self.array(key).is_err() && self.group(key).is_ok())
    }

    fn str_attr(&self, key: &str, name: &str) -> Option<String> {
        self.attrs(key)?.get(name)?.as_str().map(str::to_string)
    }

    fn int_attr(&self, key: &str, name: &str) -> Option<Vec<i64>> {
        self.attrs(key)?
            .get(name)?
            .as_array()?
            .iter()
            .map(serde_json::Value::as_i64)
            .collect()
    }

    fn array1(&self, key: &str) -> Result<Box<dyn Array1>> {
        let a = self.typed(key)?;
        match a.array.shape() {
            [_] => Ok(Box::new(a)),
            s => Err(self.err(key, format!("expected a 1-D array, found shape {s:?}"))),
        }
    }

    fn dense(&self, key: &str) -> Result<Box<dyn DenseRows>> {
        let a = self.typed(key)?;
        match a.array.shape() {
            [_, _] => Ok(Box::new(a)),
            s => Err(self.err(key, super::h5file::not_2d(s))),
        }
    }
}

/// One Zarr array of a numeric type (1-D, or 2-D read by rows).
struct ZArray {
    path: PathBuf,
    key: String,
    array: Array<Store>,
    dtype: Dtype,
    identity: Option<Identity>,
}

impl ZArray {
    fn err(&self, msg: impl std::fmt::Display) -> OomError {
        OomError::format(
            &self.path,
            &self.key,
            format!("cannot read Zarr array: {msg}"),
        )
    }

    /// Decode `subset` (zarrs decodes its chunks in parallel).
    fn retrieve(&self, subset: &ArraySubset) -> Result<Values> {
        if self.identity.is_some() && identity(&self.path) != self.identity {
            return Err(OomError::io(
                &self.path,
                "the Zarr store was replaced, rewritten or removed after it was opened; \
                 open it again",
            ));
        }
        let elems: u64 = subset.shape().iter().product();
        check_alloc(&self.path, elems, self.dtype.size() as u64)?;
        let bytes: ArrayBytes<'static> = self
            .array
            .retrieve_array_subset(subset)
            .map_err(|e| self.err(e))?;
        let raw = bytes.into_fixed().map_err(|e| self.err(e))?;
        Ok(Values::from_le_bytes(self.dtype, &raw))
    }

    /// Elements per chunk (or shard) along the first axis.
    fn chunk_len(&self) -> u64 {
        self.array
            .chunk_shape(&vec![0; self.array.dimensionality()])
            .map_or(1, |s| s[0].get())
    }
}

impl Array1 for ZArray {
    fn len(&self) -> u64 {
        self.array.shape()[0]
    }

    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Values> {
        if let Some(r) = ranges
            .iter()
            .find(|r| r.end > self.len() || r.start > r.end)
        {
            return Err(self.err(format!(
                "range {}..{} outside array of length {}",
                r.start,
                r.end,
                self.len()
            )));
        }
        // Ranges closer than a chunk are read as one span: each chunk is
        // then decoded once however many rows of it are wanted.
        let gap = self.chunk_len();
        let mut spans: Vec<(Range<u64>, Vec<Range<u64>>)> = Vec::new();
        for r in ranges.iter().filter(|r| r.end > r.start) {
            match spans.last_mut() {
                Some((span, parts)) if r.start < span.end + gap && r.start >= span.end => {
                    span.end = r.end;
                    parts.push(r.clone());
                }
                _ => spans.push((r.clone(), vec![r.clone()])),
            }
        }
        let read: Vec<Values> = spans
            .par_iter()
            .map(|(span, parts)| {
                let all =
                    self.retrieve(&ArraySubset::new_with_ranges(std::slice::from_ref(span)))?;
                if parts.len() == 1 {
                    return Ok(all);
                }
                let idx = parts
                    .iter()
                    .flat_map(|p| (p.start - span.start)..(p.end - span.start));
                Ok(all.gather(idx.map(|i| usize::try_from(i).expect("64-bit"))))
            })
            .collect::<Result<_>>()?;
        let mut out = Values::empty(self.dtype);
        for v in &read {
            out.extend_from(v);
        }
        Ok(out)
    }
}

impl DenseRows for ZArray {
    fn nrows(&self) -> u64 {
        self.array.shape()[0]
    }

    fn ncols(&self) -> u64 {
        self.array.shape().get(1).copied().unwrap_or(1)
    }

    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn read_rows(&self, r0: u64, r1: u64) -> Result<Values> {
        if r1 > self.nrows() || r0 > r1 {
            return Err(self.err(format!("rows {r0}..{r1} outside {} rows", self.nrows())));
        }
        let cols = (self.array.dimensionality() == 2).then(|| 0..self.ncols());
        let ranges: Vec<_> = std::iter::once(r0..r1).chain(cols).collect();
        self.retrieve(&ArraySubset::new_with_ranges(&ranges))
    }
}
