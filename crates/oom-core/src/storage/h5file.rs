//! Opening `.h5ad` files: checks that give clear errors, attribute reading,
//! and mapping datasets into [`H5Array1`]/[`H5Dense`] readers.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdf5::types::TypeDescriptor;

use super::array::Array1;
use super::array::{read_exact_at, ChunkLoc, H5Array1, Layout, OpenFile};
use super::container::{Container, DenseRows};
use super::dense::H5Dense;
use super::filters::{
    Filter, H5Z_FILTER_DEFLATE, H5Z_FILTER_FLETCHER32, H5Z_FILTER_LZF, H5Z_FILTER_SHUFFLE,
};
use crate::block::Dtype;
use crate::error::{OomError, Result};

/// An open `.h5ad` file: the HDF5 handle for metadata and a plain file handle
/// for positioned reads of the matrix bytes.
pub struct H5File {
    pub path: PathBuf,
    pub(crate) h5: hdf5::File,
    pub(crate) raw: Arc<OpenFile>,
}

impl H5File {
    /// Open read-only, without HDF5 file locking (so h5py can have the same
    /// file open, even for writing, in this or another process).
    pub fn open(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => OomError::NotFound(path.display().to_string()),
            _ => OomError::io(path, format!("cannot open: {e}")),
        })?;
        if meta.is_dir() {
            return Err(OomError::io(path, "is a directory, not an .h5ad file"));
        }
        if meta.len() == 0 {
            return Err(OomError::io(path, "file is empty, not an HDF5 file"));
        }
        let raw = File::open(path).map_err(|e| OomError::io(path, format!("cannot open: {e}")))?;
        if !has_hdf5_signature(&raw, meta.len()) {
            return Err(OomError::io(path, "not an HDF5 file (no HDF5 signature)"));
        }
        let h5 = hdf5::sync::sync(|| {
            hdf5::File::with_options()
                .with_fapl(|p| p.file_locking(false))
                .open(path)
        })
        .map_err(|e| {
            OomError::io(
                path,
                format!("cannot read HDF5 file (truncated or corrupt?): {e}"),
            )
        })?;
        if h5.userblock() != 0 {
            return Err(OomError::io(
                path,
                "HDF5 files with a user block are not supported",
            ));
        }
        Ok(H5File {
            path: path.to_path_buf(),
            h5,
            raw: Arc::new(OpenFile::new(raw)),
        })
    }

    fn err(&self, key: &str, msg: impl Into<String>) -> OomError {
        OomError::format(&self.path, key, msg)
    }

    fn dataset(&self, key: &str) -> Result<hdf5::Dataset> {
        hdf5::sync::sync(|| self.h5.dataset(key))
            .map_err(|_| OomError::format(&self.path, key, "missing dataset"))
    }
}

impl Container for H5File {
    fn path(&self) -> &Path {
        &self.path
    }

    fn exists(&self, key: &str) -> bool {
        hdf5::sync::sync(|| link_exists(&self.h5, key))
    }

    fn is_group(&self, key: &str) -> bool {
        hdf5::sync::sync(|| self.h5.group(key).is_ok())
    }

    fn str_attr(&self, key: &str, name: &str) -> Option<String> {
        hdf5::sync::sync(|| {
            let attr = match self.h5.group(key) {
                Ok(g) => g.attr(name).ok()?,
                Err(_) => self.h5.dataset(key).ok()?.attr(name).ok()?,
            };
            read_str_attr(&attr)
        })
    }

    fn int_attr(&self, key: &str, name: &str) -> Option<Vec<i64>> {
        hdf5::sync::sync(|| {
            let g = self.h5.group(key).ok()?;
            let attr = g.attr(name).ok()?;
            attr.read_raw::<i64>().ok()
        })
    }

    /// Map a 1-D dataset for range reads.
    fn array1(&self, key: &str) -> Result<Box<dyn Array1>> {
        let ds = self.dataset(key)?;
        let info = hdf5::sync::sync(|| DatasetInfo::read(&ds)).map_err(|m| self.err(key, m))?;
        if info.shape.len() != 1 {
            return Err(self.err(
                key,
                format!("expected a 1-D dataset, found shape {:?}", info.shape),
            ));
        }
        let layout = info.layout(&ds);
        Ok(Box::new(H5Array1 {
            path: self.path.clone(),
            key: key.to_string(),
            file: Arc::clone(&self.raw),
            len: info.shape[0],
            dtype: info.dtype,
            layout,
        }))
    }

    /// Map a 2-D dataset for row-range reads.
    fn dense(&self, key: &str) -> Result<Box<dyn DenseRows>> {
        Ok(Box::new(self.dense_h5(key)?))
    }
}

impl H5File {
    /// The variable-length strings of the 1-D dataset `key`, as their
    /// bytes, each preceded by its length (u64, little-endian): a value two
    /// reads compare exactly, made without one Python object per string.
    /// `None` when `key` is anything else (a group, fixed-length strings, …).
    pub fn string_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        use hdf5::types::{VarLenAscii, VarLenUnicode};
        let Ok(ds) = hdf5::sync::sync(|| self.h5.dataset(key)) else {
            return Ok(None);
        };
        hdf5::sync::sync(|| -> hdf5::Result<Option<Vec<u8>>> {
            if ds.ndim() != 1 {
                return Ok(None);
            }
            let mut out = Vec::new();
            let mut put = |s: &[u8]| {
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s);
            };
            match ds.dtype()?.to_descriptor()? {
                TypeDescriptor::VarLenUnicode => {
                    ds.read_raw::<VarLenUnicode>()?
                        .iter()
                        .for_each(|s| put(s.as_bytes()));
                }
                TypeDescriptor::VarLenAscii => {
                    ds.read_raw::<VarLenAscii>()?
                        .iter()
                        .for_each(|s| put(s.as_bytes()));
                }
                _ => return Ok(None),
            }
            Ok(Some(out))
        })
        .map_err(|e| self.err(key, format!("cannot read strings: {e}")))
    }

    /// Map a 2-D dataset for region reads (rows or column ranges).
    pub fn dense_h5(&self, key: &str) -> Result<H5Dense> {
        let ds = self.dataset(key)?;
        let info = hdf5::sync::sync(|| DatasetInfo::read(&ds)).map_err(|m| self.err(key, m))?;
        let (nrows, ncols) = match info.shape.as_slice() {
            [r, c] => (*r, *c),
            s => return Err(self.err(key, not_2d(s))),
        };
        let layout = info.layout(&ds);
        Ok(H5Dense {
            path: self.path.clone(),
            key: key.to_string(),
            file: Arc::clone(&self.raw),
            nrows,
            ncols,
            dtype: info.dtype,
            chunk_shape: info.chunk,
            layout,
        })
    }
}

/// The error for a dense matrix that is not 2-D (anndata refuses 1-D X too).
pub fn not_2d(shape: &[u64]) -> String {
    format!("a dense matrix must be 2-dimensional, found shape {shape:?}")
}

fn link_exists(f: &hdf5::File, key: &str) -> bool {
    let mut prefix = String::new();
    for part in key.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        if !f.link_exists(&prefix) {
            return false;
        }
    }
    true
}

/// HDF5's superblock signature sits at 0, 512, 1024, 2048, … bytes.
fn has_hdf5_signature(file: &File, len: u64) -> bool {
    const SIG: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
    let mut at = 0u64;
    let mut buf = [0u8; 8];
    while at + 8 <= len {
        if read_exact_at(file, &mut buf, at).is_ok() && &buf == SIG {
            return true;
        }
        at = if at == 0 { 512 } else { at * 2 };
    }
    false
}

fn read_str_attr(attr: &hdf5::Attribute) -> Option<String> {
    use hdf5::types::{FixedAscii, FixedUnicode, VarLenAscii, VarLenUnicode};
    match attr.dtype().ok()?.to_descriptor().ok()? {
        TypeDescriptor::VarLenUnicode => attr
            .read_scalar::<VarLenUnicode>()
            .ok()
            .map(|s| s.to_string()),
        TypeDescriptor::VarLenAscii => attr
            .read_scalar::<VarLenAscii>()
            .ok()
            .map(|s| s.to_string()),
        TypeDescriptor::FixedAscii(_) => attr
            .read_scalar::<FixedAscii<256>>()
            .ok()
            .map(|s| s.to_string()),
        TypeDescriptor::FixedUnicode(_) => attr
            .read_scalar::<FixedUnicode<256>>()
            .ok()
            .map(|s| s.to_string()),
        _ => None,
    }
}

/// What we need to know about a dataset to read it ourselves.
struct DatasetInfo {
    shape: Vec<u64>,
    dtype: Dtype,
    little_endian: bool,
    chunk: Option<Vec<u64>>,
    pipeline: Option<Vec<Filter>>,
    /// Unwritten chunks read as zeros (fill value 0 or undefined).
    zero_fill: bool,
}

impl DatasetInfo {
    fn read(ds: &hdf5::Dataset) -> std::result::Result<Self, String> {
        let dt = ds.dtype().map_err(|e| e.to_string())?;
        let desc = dt.to_descriptor().map_err(|e| {
            format!(
                "unsupported element type ({e}; {} bytes per value): matrix values must be \
                 8- to 64-bit integers, float32 or float64 (store float16 as float32)",
                dt.size()
            )
        })?;
        use hdf5::types::{FloatSize, IntSize};
        let dtype = match desc {
            TypeDescriptor::Float(FloatSize::U4) => Dtype::F32,
            TypeDescriptor::Float(FloatSize::U8) => Dtype::F64,
            TypeDescriptor::Integer(IntSize::U1) => Dtype::I8,
            TypeDescriptor::Integer(IntSize::U2) => Dtype::I16,
            TypeDescriptor::Integer(IntSize::U4) => Dtype::I32,
            TypeDescriptor::Integer(IntSize::U8) => Dtype::I64,
            TypeDescriptor::Unsigned(IntSize::U1) | TypeDescriptor::Boolean => Dtype::U8,
            TypeDescriptor::Unsigned(IntSize::U2) => Dtype::U16,
            TypeDescriptor::Unsigned(IntSize::U4) => Dtype::U32,
            TypeDescriptor::Unsigned(IntSize::U8) => Dtype::U64,
            other => return Err(format!("matrix values must be numeric, found {other}")),
        };
        let little_endian =
            dt.byte_order() == hdf5::datatype::ByteOrder::LittleEndian || dtype.size() == 1;
        let shape = ds.shape().into_iter().map(|x| x as u64).collect();
        let chunk = ds
            .chunk()
            .map(|c| c.into_iter().map(|x| x as u64).collect());
        let pipeline = pipeline_of(ds, dtype.size());
        if pipeline.is_none() {
            check_filters_available(ds)?;
        }
        // Our chunk table maps never-written chunks to zeros; any other fill
        // value is left to HDF5.
        let zero_fill = ds
            .dcpl()
            .is_ok_and(|p| p.fill_value_as::<f64>().is_none_or(|v| v == 0.0));
        Ok(DatasetInfo {
            shape,
            dtype,
            little_endian,
            chunk,
            pipeline,
            zero_fill,
        })
    }

    /// Choose how to read: our own positioned reads where we understand the
    /// storage, HDF5 otherwise.
    fn layout(&self, ds: &hdf5::Dataset) -> Layout {
        let library = || Layout::Library(ds.clone());
        // Nothing to read: no storage is allocated (HDF5 has no address), and
        // keeping an HDF5 handle open would make later opens of the same
        // path share this file's cached metadata even after it is rewritten.
        if self.shape.iter().product::<u64>() == 0 {
            return Layout::Contiguous { addr: 0 };
        }
        if !self.little_endian {
            return library();
        }
        match (&self.chunk, &self.pipeline) {
            (None, _) => hdf5::sync::sync(|| ds.offset())
                .map_or_else(library, |addr| Layout::Contiguous { addr }),
            (Some(chunk), Some(pipeline)) if self.zero_fill => {
                let Some(table) = chunk_table(ds, chunk, &self.shape) else {
                    return library();
                };
                // For 2-D datasets `chunk` is the rows per chunk; the full
                // chunk shape is kept by the dense reader.
                Layout::Chunked {
                    chunk: chunk[0],
                    table,
                    pipeline: pipeline.clone(),
                }
            }
            (Some(_), _) => library(),
        }
    }
}

/// The filter pipeline, if every filter in it is one we decode ourselves.
fn pipeline_of(ds: &hdf5::Dataset, elem_size: usize) -> Option<Vec<Filter>> {
    let dcpl = ds.dcpl().ok()?;
    let n = dcpl.filters().len();
    let mut out = Vec::with_capacity(n);
    for f in dcpl.filters() {
        out.push(match f.id() {
            H5Z_FILTER_DEFLATE => Filter::Deflate,
            H5Z_FILTER_SHUFFLE => Filter::Shuffle { elem_size },
            H5Z_FILTER_LZF => Filter::Lzf,
            H5Z_FILTER_FLETCHER32 => Filter::Fletcher32,
            _ => return None,
        });
    }
    Some(out)
}

/// Names of the registered HDF5 filters users meet in `.h5ad` files
/// (<https://portal.hdfgroup.org/documentation/hdf5-docs/registered_filter_plugins.html>).
fn filter_name(id: i32) -> &'static str {
    match id {
        4 => "szip",
        307 => "bzip2",
        32001 => "blosc",
        32004 => "lz4",
        32008 => "bitshuffle",
        32013 => "zfp",
        32015 => "zstd",
        32017 => "sz",
        32024 => "sz3",
        32026 => "blosc2",
        _ => "an unregistered filter",
    }
}

/// Fail, naming the filter, when HDF5 cannot decode the dataset's chunks.
///
/// Filters we do not decode ourselves are left to HDF5, which loads them as
/// plugins; a missing one would fail at the first read with HDF5's error
/// stack (the plugin directory of the machine that built the library).
fn check_filters_available(ds: &hdf5::Dataset) -> std::result::Result<(), String> {
    let Ok(dcpl) = ds.dcpl() else { return Ok(()) };
    for f in dcpl.filters() {
        let id = f.id();
        // SAFETY: a plain query of HDF5's filter table (loads a plugin if
        // one is found), under the caller's HDF5 lock.
        if unsafe { hdf5_sys::h5z::H5Zfilter_avail(id) } <= 0 {
            return Err(format!(
                "{MISSING_FILTER} {id} ({}), which this build of HDF5 cannot decode: \
                 `pip install hdf5plugin` (anndataoom then loads its filters), or rewrite the \
                 file with gzip compression",
                filter_name(id)
            ));
        }
    }
    Ok(())
}

/// Start of the error for a dataset compressed with a filter HDF5 cannot load.
pub const MISSING_FILTER: &str = "the data is compressed with HDF5 filter";

/// Also look for HDF5 filter plugins in `dir` (e.g. hdf5plugin's), first.
pub fn add_filter_plugin_dir(dir: &Path) -> Result<()> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| OomError::Value("plugin directory contains a NUL byte".into()))?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    let rc = hdf5::sync::sync(|| unsafe { hdf5_sys::h5pl::H5PLprepend(c.as_ptr()) });
    if rc < 0 {
        return Err(OomError::io(dir, "HDF5 could not add the plugin directory"));
    }
    Ok(())
}

/// Chunk locations in row-major chunk-grid order; `None` if HDF5 cannot
/// enumerate them.
fn chunk_table(ds: &hdf5::Dataset, chunk: &[u64], shape: &[u64]) -> Option<Vec<Option<ChunkLoc>>> {
    let grid: Vec<u64> = shape
        .iter()
        .zip(chunk)
        .map(|(s, c)| s.div_ceil(*c))
        .collect();
    let n = grid.iter().try_fold(1u64, |acc, g| acc.checked_mul(*g))?;
    // A table of more than 16M chunks (hundreds of MB) is left to HDF5.
    if n > 1 << 24 {
        return None;
    }
    let mut table = vec![None; usize::try_from(n).ok()?];
    let mut ok = true;
    hdf5::sync::sync(|| {
        ds.chunks_visit(|info| {
            let mut id = 0u64;
            for (d, off) in info.offset.iter().enumerate() {
                id = id * grid[d] + off / chunk[d];
            }
            match table.get_mut(usize::try_from(id).unwrap_or(usize::MAX)) {
                Some(slot) => {
                    *slot = Some(ChunkLoc {
                        addr: info.addr,
                        size: info.size,
                        mask: info.filter_mask,
                    })
                }
                None => ok = false,
            }
            0
        })
    })
    .ok()?;
    ok.then_some(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::open_matrix;

    /// Like h5py: a contiguous dataset, storage allocated only when written.
    fn write_dense(path: &Path, nrows: usize, ncols: usize) {
        let f = hdf5::File::create(path).unwrap();
        let ds = f
            .new_dataset::<f32>()
            .no_chunk()
            .shape([nrows, ncols])
            .create("X")
            .unwrap();
        if nrows * ncols > 0 {
            let data: Vec<f32> = (0..nrows * ncols).map(|i| i as f32).collect();
            ds.write(&ndarray::Array2::from_shape_vec((nrows, ncols), data).unwrap())
                .unwrap();
        }
    }

    /// A zero-size matrix keeps no HDF5 handle open: after the file is
    /// rewritten in place, a new open sees the new content, not cached metadata.
    #[test]
    fn empty_dense_matrix_keeps_no_hdf5_handle() {
        let dir = tempfile::tempdir().unwrap();
        let (path, other) = (dir.path().join("x.h5ad"), dir.path().join("y.h5ad"));
        write_dense(&path, 0, 0);
        let first = open_matrix(&H5File::open(&path).unwrap(), "X").unwrap();
        assert_eq!((first.nrows, first.ncols), (0, 0));
        assert!(first.read_rows(&[]).is_ok());
        write_dense(&other, 2, 3);
        std::fs::write(&path, std::fs::read(&other).unwrap()).unwrap(); // same inode
        let second = open_matrix(&H5File::open(&path).unwrap(), "X").unwrap();
        assert_eq!((second.nrows, second.ncols), (2, 3));
        drop(first);
    }

    #[test]
    fn empty_dense_matrix_shapes() {
        let dir = tempfile::tempdir().unwrap();
        for (r, c) in [(0, 4), (5, 0)] {
            let path = dir.path().join(format!("e{r}x{c}.h5ad"));
            write_dense(&path, r, c);
            let m = open_matrix(&H5File::open(&path).unwrap(), "X").unwrap();
            assert_eq!((m.nrows, m.ncols), (r as u64, c as u64));
            let rows: Vec<u64> = (0..r as u64).collect();
            let b = m.read_rows(&rows).unwrap();
            assert_eq!((b.nrows(), b.ncols()), (r, c));
        }
    }
}
