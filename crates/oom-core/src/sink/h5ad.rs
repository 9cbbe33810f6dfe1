//! Writing a matrix into an `.h5ad` (HDF5) file in anndata's layout,
//! streamed block by block: a sparse view becomes a `csr_matrix` group
//! (`data`, `indices`, `indptr`), a dense view a 2-D `array` dataset. The
//! layout and index dtypes are the ones the Python writer used, so files
//! look the same to every reader; only the chunk bytes are made elsewhere
//! (see [`super::h5chunks`]).

use std::path::Path;

use hdf5::types::{FloatSize, IntSize, TypeDescriptor, VarLenUnicode};

use super::as_bytes;
use super::h5chunks::{ChunkAppender, Compression};
use crate::block::{Block, Csr, Dtype};
use crate::ctx::Ctx;
use crate::error::{OomError, Result};
use crate::exec::{map_blocks_in_order, BLOCK_TARGET};
use crate::plan::View;

/// How the arrays are stored.
#[derive(Debug, Clone, Copy)]
pub struct H5adWriteOptions {
    pub compression: Compression,
    /// Values per chunk (dense matrices: whole rows of about this many values).
    pub chunk: u64,
    /// Index arrays switch from int32 to int64 at this many columns
    /// (`indices`) or rows × columns (`indptr`): 2^31, as the Python writer
    /// and anndata's readers expect; smaller only in tests.
    pub index32_limit: u64,
}

impl Default for H5adWriteOptions {
    /// h5py-like chunks of 64k values, no compression.
    fn default() -> Self {
        H5adWriteOptions {
            compression: Compression::None,
            chunk: 1 << 16,
            index32_limit: 1 << 31,
        }
    }
}

fn type_of(d: Dtype) -> TypeDescriptor {
    match d {
        Dtype::F32 => TypeDescriptor::Float(FloatSize::U4),
        Dtype::F64 => TypeDescriptor::Float(FloatSize::U8),
        Dtype::I8 => TypeDescriptor::Integer(IntSize::U1),
        Dtype::I16 => TypeDescriptor::Integer(IntSize::U2),
        Dtype::I32 => TypeDescriptor::Integer(IntSize::U4),
        Dtype::I64 => TypeDescriptor::Integer(IntSize::U8),
        Dtype::U8 => TypeDescriptor::Unsigned(IntSize::U1),
        Dtype::U16 => TypeDescriptor::Unsigned(IntSize::U2),
        Dtype::U32 => TypeDescriptor::Unsigned(IntSize::U4),
        Dtype::U64 => TypeDescriptor::Unsigned(IntSize::U8),
    }
}

struct Target<'a> {
    path: &'a Path,
    key: &'a str,
    opts: H5adWriteOptions,
    writeback: Writeback,
}

impl Target<'_> {
    fn err(&self, e: hdf5::Error) -> OomError {
        let context = format!("cannot write HDF5 element '{}'", self.key);
        OomError::os_cause(&e, &context)
            .unwrap_or_else(|| OomError::io(self.path, format!("{context}: {e}")))
    }

    fn str_attr(&self, loc: &hdf5::Location, name: &str, value: &str) -> Result<()> {
        let v: VarLenUnicode = value
            .parse()
            .map_err(|e| OomError::Value(format!("attribute '{name}' of '{}': {e}", self.key)))?;
        loc.new_attr::<VarLenUnicode>()
            .create(name)
            .and_then(|a| a.write_scalar(&v))
            .map_err(|e| self.err(e))
    }

    fn encoding(&self, loc: &hdf5::Location, kind: &str, version: &str) -> Result<()> {
        self.str_attr(loc, "encoding-type", kind)?;
        self.str_attr(loc, "encoding-version", version)
    }

    /// A 1-D chunked dataset, empty and growable, filled by an appender.
    fn vector(&self, g: &hdf5::Group, name: &str, dtype: Dtype) -> Result<ChunkAppender> {
        let c = self.opts.chunk;
        let b = g
            .new_dataset_builder()
            .chunk(usize::try_from(c).expect("fits"));
        let ds = self
            .opts
            .compression
            .declare(b)
            .empty_as(type_of(dtype))
            .shape(0..)
            .create(name)
            .map_err(|e| self.err(e))?;
        let full = format!("{}/{name}", self.key);
        Ok(ChunkAppender::new(
            ds,
            &full,
            self.opts.compression,
            c,
            dtype.size(),
            true,
        ))
    }
}

/// Open (or create) the HDF5 file at `path` for writing. The library's
/// strong close degree makes dropping the file close every object in it, so
/// h5py can open the file as soon as a write returns.
fn open_rw(path: &Path) -> Result<hdf5::File> {
    let r = hdf5::sync::sync(|| {
        let mut b = hdf5::File::with_options();
        b.with_fapl(|p| p.fclose_degree(hdf5::file::FileCloseDegree::Strong));
        if path.exists() {
            b.open_rw(path)
        } else {
            b.create_excl(path)
        }
    });
    r.map_err(|e| {
        // the file is a temp name the user never gave: the directory is what to fix
        let dir = path.parent().unwrap_or(path).display();
        OomError::os_cause(&e, &format!("cannot write in '{dir}'")).unwrap_or_else(|| {
            OomError::io(path, format!("cannot open HDF5 file for writing: {e}"))
        })
    })
}

/// Starts the kernel writing the file's dirty pages back while later
/// blocks are still being produced: every file this sink writes is fsynced
/// before its atomic rename, and that fsync then finds little left to write
/// (0.2 s of a 0.5 GiB file at the end of a concatenation otherwise). A
/// hint only: a file that cannot be opened or a failed call changes nothing.
struct Writeback(Option<std::fs::File>);

impl Writeback {
    fn new(path: &Path) -> Self {
        Writeback(std::fs::File::open(path).ok())
    }

    fn start(&self) {
        #[cfg(target_os = "linux")]
        if let Some(f) = &self.0 {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid descriptor; the call only schedules I/O of the
            // file's pages (offset 0, length 0: the whole file).
            unsafe {
                libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
    }
}

/// Write `view` as element `key` (e.g. `X`, `raw/X`, `layers/counts`) of
/// the HDF5 file at `path`, creating the file and missing parent groups.
pub fn write_matrix(
    ctx: &Ctx,
    view: &View,
    path: &Path,
    key: &str,
    opts: &H5adWriteOptions,
) -> Result<()> {
    if opts.chunk == 0 {
        return Err(OomError::Value("chunk size must be positive".into()));
    }
    if opts.index32_limit == 0 || opts.index32_limit > 1 << 31 {
        return Err(OomError::Value(format!(
            "index32_limit must be in 1..=2^31, got {}",
            opts.index32_limit
        )));
    }
    let key = key.trim_matches('/');
    if key.is_empty() {
        return Err(OomError::Value("an element key must not be empty".into()));
    }
    let file = open_rw(path)?;
    let t = Target {
        path,
        key,
        opts: *opts,
        // after open_rw: the file exists now
        writeback: Writeback::new(path),
    };
    let (parent, name) = match t.key.rsplit_once('/') {
        Some((p, n)) => {
            let g = hdf5::sync::sync(|| match file.group(p) {
                Ok(g) => Ok(g),
                Err(_) => file
                    .create_group_builder()
                    .create_intermediate_group(true)
                    .create(p),
            })
            .map_err(|e| t.err(e))?;
            (g, n)
        }
        None => (hdf5::Group::clone(&file), t.key),
    };
    if view.is_sparse() {
        write_csr(ctx, &t, view, &parent, name)
    } else {
        write_dense(ctx, &t, view, &parent, name)
    }
}

fn write_dense(ctx: &Ctx, t: &Target, view: &View, g: &hdf5::Group, name: &str) -> Result<()> {
    let (n, m) = (view.nrows(), view.ncols());
    let dtype = view.dtype();
    let shape = [
        usize::try_from(n).expect("fits"),
        usize::try_from(m).expect("fits"),
    ];
    if n == 0 || m == 0 {
        // No chunk can have a zero side: an empty matrix is a plain,
        // unfiltered dataset, as h5py writes it.
        let ds = hdf5::sync::sync(|| {
            g.new_dataset_builder()
                .empty_as(type_of(dtype))
                .shape(shape)
                .create(name)
        })
        .map_err(|e| t.err(e))?;
        return hdf5::sync::sync(|| t.encoding(&ds, "array", "0.2.0"));
    }
    let rows = (t.opts.chunk / m).clamp(1, n);
    let ds = hdf5::sync::sync(|| {
        let b = g
            .new_dataset_builder()
            .chunk([usize::try_from(rows).expect("fits"), shape[1]]);
        t.opts
            .compression
            .declare(b)
            .empty_as(type_of(dtype))
            .shape(shape)
            .create(name)
    })
    .map_err(|e| t.err(e))?;
    hdf5::sync::sync(|| t.encoding(&ds, "array", "0.2.0"))?;
    let row_bytes = usize::try_from(m).expect("fits") * dtype.size();
    let mut out = ChunkAppender::new(ds, t.key, t.opts.compression, rows, row_bytes, false);
    map_blocks_in_order(
        ctx,
        view,
        BLOCK_TARGET,
        |_, _, block| {
            Ok(match block {
                Block::Dense(d) => d.data,
                Block::Csr(c) => c.to_dense().data,
            })
        },
        |_, _, values| {
            out.push(values.bytes())?;
            t.writeback.start();
            Ok(())
        },
    )?;
    out.finish().map(drop)
}

fn write_csr(ctx: &Ctx, t: &Target, view: &View, g: &hdf5::Group, name: &str) -> Result<()> {
    let (n, m) = (view.nrows(), view.ncols());
    let limit = t.opts.index32_limit;
    let wide_indices = m >= limit;
    let wide_indptr = u128::from(n) * u128::from(m) >= u128::from(limit);
    let idx = if wide_indices { Dtype::I64 } else { Dtype::I32 };
    let ptr = if wide_indptr { Dtype::I64 } else { Dtype::I32 };
    let (grp, mut data, mut indices) = hdf5::sync::sync(|| -> Result<_> {
        let grp = g.create_group(name).map_err(|e| t.err(e))?;
        t.encoding(&grp, "csr_matrix", "0.1.0")?;
        let shape = [
            i64::try_from(n).expect("fits"),
            i64::try_from(m).expect("fits"),
        ];
        grp.new_attr::<i64>()
            .shape(2)
            .create("shape")
            .and_then(|a| a.write_raw(&shape))
            .map_err(|e| t.err(e))?;
        let data = t.vector(&grp, "data", view.dtype())?;
        let indices = t.vector(&grp, "indices", idx)?;
        Ok((grp, data, indices))
    })?;
    let mut indptr: Vec<i64> = Vec::with_capacity(usize::try_from(n).expect("fits") + 1);
    indptr.push(0);
    map_blocks_in_order(
        ctx,
        view,
        BLOCK_TARGET,
        |_, _, block| {
            let Block::Csr(b) = block else {
                return Err(OomError::Value(
                    "a sparse view produced a dense block".into(),
                ));
            };
            let wide = wide_indices.then(|| b.indices.iter().map(|&i| i64::from(i)).collect());
            Ok((b, wide))
        },
        |_, _, (b, wide): (Csr, Option<Vec<i64>>)| {
            let base = *indptr.last().expect("starts with 0");
            indptr.extend(b.indptr[1..].iter().map(|p| base + p));
            data.push(b.data.bytes())?;
            match &wide {
                Some(w) => indices.push(as_bytes(w))?,
                None => indices.push(as_bytes(&b.indices))?,
            }
            t.writeback.start();
            Ok(())
        },
    )?;
    data.finish()?;
    indices.finish()?;
    let mut out = hdf5::sync::sync(|| t.vector(&grp, "indptr", ptr))?;
    if wide_indptr {
        out.push(as_bytes(&indptr))?;
    } else {
        // nnz ≤ n·m < index32_limit ≤ 2^31: every offset fits.
        let narrow: Vec<i32> = indptr.iter().map(|&p| p as i32).collect();
        out.push(as_bytes(&narrow))?;
    }
    out.finish().map(drop)
}
