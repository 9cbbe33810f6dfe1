//! A chunked HDF5 dataset filled front to back with HDF5's direct chunk
//! write: whole chunks are compressed on the rayon pool, outside HDF5 (the
//! bundled library serialises every call behind one lock), and only the
//! finished bytes go through the library. The dataset declares the same
//! filter pipeline, so every reader (h5py, ours) decompresses them.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::error::{OomError, Result};

/// The compressions h5py offers that a reader without plugins can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// zlib's deflate at this level (0–9), HDF5 filter 1.
    Gzip(u8),
    /// h5py's LZF filter (id 32000).
    Lzf,
}

impl Compression {
    /// h5py's `compression` / `compression_opts` rules: gzip defaults to
    /// level 4 and takes 0–9, lzf takes no options, and options without a
    /// compression are ignored (as the Python writer always did).
    pub fn from_h5py(name: Option<&str>, opts: Option<i64>) -> Result<Self> {
        match (name, opts) {
            (None, _) => Ok(Self::None),
            (Some("gzip"), None) => Ok(Self::Gzip(4)),
            (Some("gzip"), Some(level)) => match u8::try_from(level) {
                Ok(l) if l <= 9 => Ok(Self::Gzip(l)),
                _ => Err(OomError::Value(format!(
                    "gzip compression_opts must be an integer from 0 to 9, got {level}"
                ))),
            },
            (Some("lzf"), None) => Ok(Self::Lzf),
            (Some("lzf"), Some(_)) => Err(OomError::Value(
                "lzf compression accepts no compression_opts".into(),
            )),
            (Some(other), _) => Err(OomError::Value(format!(
                "unknown compression '{other}' (use 'gzip', 'lzf' or None)"
            ))),
        }
    }

    /// Declare this compression on a dataset being created.
    pub(crate) fn declare(self, b: hdf5::DatasetBuilder) -> hdf5::DatasetBuilder {
        match self {
            Self::None => b,
            Self::Gzip(level) => b.deflate(level),
            Self::Lzf => b.lzf(),
        }
    }

    /// One chunk as stored, and the filter mask HDF5 records with it. LZF
    /// gives up on chunks it cannot shrink; h5py's filter (optional, like
    /// ours) then stores them raw with the filter's bit set, and so do we.
    fn encode(self, raw: &[u8]) -> (Cow<'_, [u8]>, u32) {
        match self {
            Self::None => (Cow::Borrowed(raw), 0),
            Self::Gzip(level) => {
                // libdeflate: ~0.7× zlib-rs's time at level 4 on h5ad chunks.
                let level = libdeflater::CompressionLvl::new(i32::from(level))
                    .expect("gzip levels 0-9 are libdeflate levels");
                let mut z = libdeflater::Compressor::new(level);
                let mut out = vec![0u8; z.zlib_compress_bound(raw.len())];
                let n = z
                    .zlib_compress(raw, &mut out)
                    .expect("the compress bound always fits");
                out.truncate(n);
                (Cow::Owned(out), 0)
            }
            Self::Lzf => match lzf::compress(raw) {
                Ok(c) => (Cow::Owned(c), 0),
                Err(_) => (Cow::Borrowed(raw), 1),
            },
        }
    }
}

/// Chunks compressed per flush: enough for every thread to have two.
fn flush_chunks() -> usize {
    2 * rayon::current_num_threads().max(1)
}

/// Appends bytes to a chunked dataset along its first axis. `chunk_rows`
/// rows of `row_bytes` bytes make one chunk; a 1-D dataset has 1-value rows.
pub(crate) struct ChunkAppender {
    pub ds: hdf5::Dataset,
    pub name: String,
    pub compression: Compression,
    pub chunk_rows: u64,
    pub row_bytes: usize,
    /// The dataset grows as chunks are written (1-D, unlimited) instead of
    /// having its final shape from the start (2-D dense).
    pub grows: bool,
    buf: Vec<u8>,
    /// Rows written so far.
    done: u64,
}

impl ChunkAppender {
    pub fn new(
        ds: hdf5::Dataset,
        name: &str,
        compression: Compression,
        chunk_rows: u64,
        row_bytes: usize,
        grows: bool,
    ) -> Self {
        ChunkAppender {
            ds,
            name: name.to_string(),
            compression,
            chunk_rows,
            row_bytes,
            grows,
            buf: Vec::new(),
            done: 0,
        }
    }

    fn chunk_bytes(&self) -> usize {
        usize::try_from(self.chunk_rows).expect("chunk fits in memory") * self.row_bytes
    }

    fn err(&self, e: &hdf5::Error, at: &str) -> OomError {
        let context = format!("cannot write HDF5 dataset '{}'{at}", self.name);
        OomError::os_cause(e, &context)
            .unwrap_or_else(|| OomError::Value(format!("{context}: {e}")))
    }

    /// Append `bytes`. Whole chunks are written straight from `bytes` when
    /// there are enough of them to keep every thread busy; only the rest
    /// (and small pushes) is copied into the buffer.
    pub fn push(&mut self, bytes: &[u8]) -> Result<()> {
        let cb = self.chunk_bytes().max(1);
        // Complete the buffered partial chunk first.
        let partial = self.buf.len() % cb;
        let fill = if partial == 0 {
            0
        } else {
            (cb - partial).min(bytes.len())
        };
        let (head, rest) = bytes.split_at(fill);
        self.buf.extend_from_slice(head);
        let direct = rest.len() / cb;
        if direct >= flush_chunks() {
            // `rest` is not empty, so the buffer now holds whole chunks only.
            let full = self.buf.len() / cb;
            if full > 0 {
                let buffered = std::mem::take(&mut self.buf);
                self.write_raw(&buffered, full, None)?;
            }
            let (whole, tail) = rest.split_at(direct * cb);
            self.write_raw(whole, direct, None)?;
            self.buf.extend_from_slice(tail);
        } else {
            self.buf.extend_from_slice(rest);
            let full = self.buf.len() / cb;
            if full >= flush_chunks() {
                self.write_chunks(full, None)?;
            }
        }
        Ok(())
    }

    /// Write the first `n` chunks of the buffer; `last_rows` marks the
    /// final, partial chunk (padded with zeros to a whole chunk, as HDF5
    /// stores edge chunks).
    fn write_chunks(&mut self, n: usize, last_rows: Option<u64>) -> Result<()> {
        let cb = self.chunk_bytes();
        // The rest (less than a chunk) is copied out; the chunks keep the buffer.
        let rest = self.buf.split_off((n * cb).min(self.buf.len()));
        let mut raw = std::mem::replace(&mut self.buf, rest);
        raw.resize(n * cb, 0);
        self.write_raw(&raw, n, last_rows)
    }

    /// Compress the `n` whole chunks of `raw` in parallel and write them in
    /// order after those already written.
    fn write_raw(&mut self, raw: &[u8], n: usize, last_rows: Option<u64>) -> Result<()> {
        let cb = self.chunk_bytes();
        debug_assert_eq!(raw.len(), n * cb);
        let c = self.compression;
        let encoded: Vec<(Cow<[u8]>, u32)> = if c == Compression::None {
            raw.chunks(cb).map(|ch| c.encode(ch)).collect()
        } else {
            raw.par_chunks(cb).map(|ch| c.encode(ch)).collect()
        };
        let rows = match last_rows {
            Some(r) => (n as u64 - 1) * self.chunk_rows + r,
            None => n as u64 * self.chunk_rows,
        };
        let first_chunk = self.done / self.chunk_rows;
        let end = self.done + rows;
        hdf5::sync::sync(|| -> Result<()> {
            if self.grows {
                self.ds
                    .resize(usize::try_from(end).expect("fits"))
                    .map_err(|e| self.err(&e, ""))?;
            }
            let rank = self.ds.ndim();
            for (i, (bytes, mask)) in encoded.iter().enumerate() {
                let mut offset = vec![0u64; rank];
                offset[0] = (first_chunk + i as u64) * self.chunk_rows;
                // SAFETY: `offset` has the dataset's rank and `bytes` outlives
                // the call; HDF5 copies the chunk before returning.
                let status = unsafe {
                    hdf5_sys::h5d::H5Dwrite_chunk(
                        self.ds.id(),
                        hdf5_sys::h5p::H5P_DEFAULT,
                        *mask,
                        offset.as_ptr(),
                        bytes.len(),
                        bytes.as_ptr().cast(),
                    )
                };
                if status < 0 {
                    let at = format!(" at row {}", offset[0]);
                    return Err(match hdf5::Error::query() {
                        Ok(e) => self.err(&e, &at),
                        Err(e) => OomError::Value(format!("{}{at}: {e}", self.name)),
                    });
                }
            }
            Ok(())
        })?;
        self.done = end;
        Ok(())
    }

    /// Write what is buffered (the last chunk padded) and return the rows written.
    pub fn finish(mut self) -> Result<u64> {
        let cb = self.chunk_bytes().max(1);
        let full = self.buf.len() / cb;
        if full > 0 {
            self.write_chunks(full, None)?;
        }
        if !self.buf.is_empty() {
            let rows = (self.buf.len() / self.row_bytes) as u64;
            self.write_chunks(1, Some(rows))?;
        }
        Ok(self.done)
    }
}
