//! Writing a matrix into a Zarr store (v2 or v3, optionally sharded) in
//! anndata's layout, streamed block by block: a sparse view becomes a
//! `csr_matrix` group (data, indices, indptr), a dense view a 2-D array.
//! Chunks are encoded on all cores; metadata is stored last, so an
//! interrupted write never looks like a complete array.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use zarrs::array::{Array, ArrayBytes, ArrayMetadata, ArraySubset};
use zarrs::filesystem::FilesystemStore;

use super::as_bytes;
use crate::block::{Block, Dtype};
use crate::ctx::Ctx;
use crate::error::{OomError, Result};
use crate::exec::{for_each_block_in_order, BLOCK_TARGET};
use crate::plan::View;
use crate::storage::array::to_usize;

type Store = FilesystemStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZarrFormat {
    V2,
    V3,
}

/// Layout of the arrays written.
#[derive(Debug, Clone, Copy)]
pub struct ZarrWriteOptions {
    pub format: ZarrFormat,
    /// Values per chunk (1-D arrays; dense matrices get rows × all columns of about this size).
    pub chunk: u64,
    /// Chunks per shard (v3 only); `None` writes unsharded arrays.
    pub shard: Option<u64>,
}

/// Chunks written per call, so that encoding runs on all cores.
fn flush_chunks() -> u64 {
    2 * rayon::current_num_threads().max(1) as u64
}

fn dtype_names(d: Dtype) -> (&'static str, &'static str) {
    match d {
        Dtype::F32 => ("<f4", "float32"),
        Dtype::F64 => ("<f8", "float64"),
        Dtype::I8 => ("|i1", "int8"),
        Dtype::I16 => ("<i2", "int16"),
        Dtype::I32 => ("<i4", "int32"),
        Dtype::I64 => ("<i8", "int64"),
        Dtype::U8 => ("|u1", "uint8"),
        Dtype::U16 => ("<u2", "uint16"),
        Dtype::U32 => ("<u4", "uint32"),
        Dtype::U64 => ("<u8", "uint64"),
    }
}

/// The codecs zarr-python uses by default for each format: blosc/lz4 with
/// shuffle for v2, zstd for v3.
fn array_metadata(
    o: &ZarrWriteOptions,
    shape: &[u64],
    chunks: &[u64],
    dtype: Dtype,
    attrs: Map<String, Value>,
) -> Value {
    let (v2, v3) = dtype_names(dtype);
    match o.format {
        ZarrFormat::V2 => json!({
            "zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": v2, "order": "C",
            "compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0},
            "fill_value": 0, "filters": null, "dimension_separator": ".", "attributes": attrs,
        }),
        ZarrFormat::V3 => {
            let bytes_zstd = json!([
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "zstd", "configuration": {"level": 0, "checksum": false}},
            ]);
            let (grid, codecs) = match o.shard {
                None => (chunks.to_vec(), bytes_zstd),
                Some(k) => {
                    let mut shard = chunks.to_vec();
                    shard[0] *= k;
                    let index = json!([{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]);
                    let sharding = json!([{"name": "sharding_indexed", "configuration": {
                        "chunk_shape": chunks, "codecs": bytes_zstd, "index_codecs": index, "index_location": "end",
                    }}]);
                    (shard, sharding)
                }
            };
            json!({
                "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": v3,
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": 0, "codecs": codecs, "attributes": attrs,
            })
        }
    }
}

struct Writer {
    root: PathBuf,
    store: Arc<Store>,
    opts: ZarrWriteOptions,
}

impl Writer {
    fn err(&self, key: &str, e: impl std::error::Error) -> OomError {
        let path = self.root.join(key);
        let context = format!("cannot write Zarr element '{}'", path.display());
        OomError::os_source(&e, &context)
            .unwrap_or_else(|| OomError::io(&path, format!("cannot write Zarr element: {e}")))
    }

    fn group(&self, key: &str, attrs: Value) -> Result<()> {
        let dir = self.root.join(key);
        std::fs::create_dir_all(&dir).map_err(|e| self.err(key, e))?;
        let files = match self.opts.format {
            ZarrFormat::V2 => vec![(".zgroup", json!({"zarr_format": 2})), (".zattrs", attrs)],
            ZarrFormat::V3 => vec![(
                "zarr.json",
                json!({"zarr_format": 3, "node_type": "group", "attributes": attrs}),
            )],
        };
        for (name, v) in files {
            let text = serde_json::to_vec_pretty(&v).map_err(|e| self.err(key, e))?;
            std::fs::write(dir.join(name), text).map_err(|e| self.err(key, e))?;
        }
        Ok(())
    }

    fn array(
        &self,
        key: &str,
        shape: &[u64],
        chunks: &[u64],
        dtype: Dtype,
        attrs: Map<String, Value>,
    ) -> Result<Appender> {
        let meta: ArrayMetadata =
            serde_json::from_value(array_metadata(&self.opts, shape, chunks, dtype, attrs))
                .map_err(|e| self.err(key, e))?;
        let array = Array::new_with_metadata(Arc::clone(&self.store), &format!("/{key}"), meta)
            .map_err(|e| self.err(key, e))?;
        let row_len: u64 = shape[1..].iter().product();
        let grid_rows = array
            .chunk_shape(&vec![0; shape.len()])
            .map_err(|e| self.err(key, e))?[0]
            .get();
        Ok(Appender {
            key: key.to_string(),
            array,
            row_len,
            grid_rows,
            elem: dtype.size(),
            buf: Vec::new(),
            done: 0,
        })
    }
}

/// A Zarr array filled along its first axis, whole chunk rows at a time.
struct Appender {
    key: String,
    array: Array<Store>,
    /// Values per row (1 for 1-D arrays).
    row_len: u64,
    /// Rows per chunk (or shard) of the grid.
    grid_rows: u64,
    elem: usize,
    buf: Vec<u8>,
    done: u64,
}

impl Appender {
    fn err(&self, e: impl std::error::Error) -> OomError {
        let context = format!("cannot write Zarr array '{}'", self.key);
        OomError::os_source(&e, &context)
            .unwrap_or_else(|| OomError::Value(format!("{context}: {e}")))
    }

    fn buffered_rows(&self) -> u64 {
        (self.buf.len() / self.elem) as u64 / self.row_len.max(1)
    }

    fn push(&mut self, bytes: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(bytes);
        let full = self.buffered_rows() / self.grid_rows;
        if full >= flush_chunks() {
            self.store(full * self.grid_rows)?;
        }
        Ok(())
    }

    fn store(&mut self, rows: u64) -> Result<()> {
        let end = self.done + rows;
        let mut shape = self.array.shape().to_vec();
        shape[0] = end;
        if let Err(e) = self.array.set_shape(shape.clone()) {
            return Err(self.err(e));
        }
        let ranges: Vec<_> = std::iter::once(self.done..end)
            .chain(shape[1..].iter().map(|&n| 0..n))
            .collect();
        let n = to_usize(rows * self.row_len) * self.elem;
        let bytes = ArrayBytes::new_flen(&self.buf[..n]);
        self.array
            .store_array_subset(&ArraySubset::new_with_ranges(&ranges), bytes)
            .map_err(|e| self.err(e))?;
        self.buf.drain(..n);
        self.done = end;
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        let rest = self.buffered_rows();
        if rest > 0 {
            self.store(rest)?;
        }
        self.array.store_metadata().map_err(|e| self.err(e))
    }
}

fn enc(kind: &str, version: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("encoding-type".into(), kind.into());
    m.insert("encoding-version".into(), version.into());
    m
}

/// Write `view` as element `key` (e.g. `X`, `layers/counts`) of the Zarr
/// store at `root`, whose parent groups must exist.
pub fn write_matrix(
    ctx: &Ctx,
    view: &View,
    root: &Path,
    key: &str,
    opts: &ZarrWriteOptions,
) -> Result<()> {
    if opts.chunk == 0 || opts.shard == Some(0) {
        return Err(OomError::Value(
            "chunk and shard sizes must be positive".into(),
        ));
    }
    if opts.shard.is_some() && opts.format == ZarrFormat::V2 {
        return Err(OomError::Value("sharding needs Zarr format 3".into()));
    }
    let store = FilesystemStore::new(root)
        .map_err(|e| OomError::io(root, format!("cannot open Zarr store: {e}")))?;
    let w = Writer {
        root: root.to_path_buf(),
        store: Arc::new(store),
        opts: *opts,
    };
    let (n, m) = (view.nrows(), view.ncols());
    let dtype = view.dtype();
    if view.is_sparse() {
        write_csr(ctx, &w, view, key, dtype)
    } else {
        let rows = (opts.chunk / m.max(1)).clamp(1, n.max(1));
        if m == 0 {
            // No values to append rows by; Zarr forbids a chunk side of 0.
            return w
                .array(key, &[n, 0], &[rows, 1], dtype, enc("array", "0.2.0"))?
                .finish();
        }
        let mut out = w.array(key, &[0, m], &[rows, m], dtype, enc("array", "0.2.0"))?;
        for_each_block_in_order(ctx, view, BLOCK_TARGET, |_, _, block| match block {
            Block::Dense(d) => out.push(d.data.bytes()),
            Block::Csr(c) => out.push(c.to_dense().data.bytes()),
        })?;
        out.finish()
    }
}

fn write_csr(ctx: &Ctx, w: &Writer, view: &View, key: &str, dtype: Dtype) -> Result<()> {
    let (n, m) = (view.nrows(), view.ncols());
    let mut attrs = enc("csr_matrix", "0.1.0");
    attrs.insert("shape".into(), json!([n, m]));
    w.group(key, Value::Object(attrs))?;
    let idx_dtype = if m <= i32::MAX as u64 {
        Dtype::I32
    } else {
        Dtype::I64
    };
    let c = w.opts.chunk;
    let mut data = w.array(&format!("{key}/data"), &[0], &[c], dtype, Map::new())?;
    let mut indices = w.array(&format!("{key}/indices"), &[0], &[c], idx_dtype, Map::new())?;
    let mut indptr: Vec<i64> = Vec::with_capacity(to_usize(n) + 1);
    indptr.push(0);
    for_each_block_in_order(ctx, view, BLOCK_TARGET, |_, _, block| {
        let Block::Csr(b) = block else {
            return Err(OomError::Value(
                "a sparse view produced a dense block".into(),
            ));
        };
        let base = *indptr.last().expect("starts with 0");
        indptr.extend(b.indptr[1..].iter().map(|p| base + p));
        data.push(b.data.bytes())?;
        if idx_dtype == Dtype::I32 {
            indices.push(as_bytes(&b.indices))
        } else {
            let wide: Vec<i64> = b.indices.iter().map(|&i| i64::from(i)).collect();
            indices.push(as_bytes(&wide))
        }
    })?;
    data.finish()?;
    indices.finish()?;
    let narrow = *indptr.last().expect("starts with 0") <= i64::from(i32::MAX);
    let mut ptr = w.array(
        &format!("{key}/indptr"),
        &[0],
        &[c],
        if narrow { Dtype::I32 } else { Dtype::I64 },
        Map::new(),
    )?;
    if narrow {
        let narrow: Vec<i32> = indptr.iter().map(|&p| p as i32).collect();
        ptr.push(as_bytes(&narrow))?;
    } else {
        ptr.push(as_bytes(&indptr))?;
    }
    ptr.finish()
}
