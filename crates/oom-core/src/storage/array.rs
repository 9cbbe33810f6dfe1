//! One-dimensional stored arrays read by ranges. HDF5 datasets are mapped
//! once (contiguous address or chunk table) and then read with positioned
//! reads and decoded on all cores without touching the HDF5 library.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::filters::{decode_chunk, Filter};
use crate::block::{Dtype, Values};
use crate::error::{OomError, Result};
use crate::values_of;

/// A stored 1-D array of one dtype.
// `len` is the stored length that reads are checked against; nothing asks a
// stored array whether it is empty, so no `is_empty` beside it.
#[allow(clippy::len_without_is_empty)]
pub trait Array1: Send + Sync {
    fn len(&self) -> u64;
    fn dtype(&self) -> Dtype;
    /// Read sorted, disjoint `ranges` and return their concatenation.
    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Values>;

    fn read_range(&self, range: Range<u64>) -> Result<Values> {
        self.read_ranges(std::slice::from_ref(&range))
    }
}

/// Where a dataset's bytes live.
pub(crate) enum Layout {
    /// One run of bytes at a file address.
    Contiguous { addr: u64 },
    /// Fixed-size chunks, indexed by chunk number; `None` = never written (fill 0).
    Chunked {
        chunk: u64,
        table: Vec<Option<ChunkLoc>>,
        pipeline: Vec<Filter>,
    },
    /// Anything else (compact storage, foreign filters, big-endian): ask HDF5.
    Library(hdf5::Dataset),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkLoc {
    pub addr: u64,
    pub size: u64,
    pub mask: u32,
}

/// A 1-D dataset in an HDF5 file.
pub struct H5Array1 {
    pub(crate) path: PathBuf,
    pub(crate) key: String,
    pub(crate) file: Arc<File>,
    pub(crate) len: u64,
    pub(crate) dtype: Dtype,
    pub(crate) layout: Layout,
}

impl H5Array1 {
    fn err(&self, msg: impl Into<String>) -> OomError {
        OomError::format(&self.path, &self.key, msg)
    }

    fn elem(&self) -> u64 {
        self.dtype.size() as u64
    }

    /// Decode chunks `ids` (in parallel) and hand back their bytes in order.
    fn chunks(
        &self,
        ids: &[u64],
        chunk: u64,
        table: &[Option<ChunkLoc>],
        pipeline: &[Filter],
    ) -> Result<Vec<Vec<u8>>> {
        let elem = self.elem();
        ids.par_iter()
            .map(|&id| {
                let expected = usize::try_from(chunk * elem).expect("chunk fits in memory");
                let Some(loc) = table
                    .get(usize::try_from(id).unwrap_or(usize::MAX))
                    .copied()
                    .flatten()
                else {
                    return Ok(vec![0u8; expected]);
                };
                let raw = pread(&self.file, &self.path, loc.addr, loc.size)?;
                if pipeline.is_empty() {
                    return Ok(raw);
                }
                decode_chunk(raw, pipeline, loc.mask, expected).map_err(|m| self.err(m))
            })
            .collect()
    }
}

impl H5Array1 {
    /// Chunks stored as they are: each piece of a range is read straight
    /// into its place in the result (in parallel), with no chunk buffer.
    fn read_unfiltered(
        &self,
        ranges: &[Range<u64>],
        total: u64,
        chunk: u64,
        table: &[Option<ChunkLoc>],
    ) -> Result<Values> {
        let elem = self.elem();
        let mut values = Values::zeros(self.dtype, to_usize(total));
        // (destination, file address or None for a chunk never written)
        let mut pieces: Vec<(&mut [u8], Option<u64>)> = Vec::new();
        let mut rest = values.bytes_mut();
        for r in ranges {
            let mut pos = r.start;
            while pos < r.end {
                let id = pos / chunk;
                let stop = r.end.min((id + 1) * chunk);
                let (head, tail) =
                    std::mem::take(&mut rest).split_at_mut(to_usize((stop - pos) * elem));
                rest = tail;
                let loc = table
                    .get(usize::try_from(id).unwrap_or(usize::MAX))
                    .copied()
                    .flatten();
                let addr = match loc {
                    Some(loc) => {
                        if loc.size < chunk * elem {
                            return Err(self.err(format!(
                                "chunk {id} holds {} bytes, expected {}",
                                loc.size,
                                chunk * elem
                            )));
                        }
                        Some(loc.addr + (pos - id * chunk) * elem)
                    }
                    None => None,
                };
                pieces.push((head, addr));
                pos = stop;
            }
        }
        pieces
            .into_par_iter()
            .try_for_each(|(buf, addr)| match addr {
                Some(a) => pread_into(&self.file, &self.path, a, buf),
                None => Ok(()),
            })?;
        Ok(values)
    }
}

impl Array1 for H5Array1 {
    fn len(&self) -> u64 {
        self.len
    }

    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Values> {
        for r in ranges {
            if r.end > self.len || r.start > r.end {
                return Err(self.err(format!(
                    "range {}..{} outside dataset of length {}",
                    r.start, r.end, self.len
                )));
            }
        }
        let elem = self.elem();
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        check_alloc(&self.path, total, elem)?;
        match &self.layout {
            Layout::Contiguous { addr } => {
                let mut out = Values::zeros(self.dtype, to_usize(total));
                let mut rest = out.bytes_mut();
                for r in ranges {
                    let (head, tail) = rest.split_at_mut(to_usize((r.end - r.start) * elem));
                    pread_into(&self.file, &self.path, addr + r.start * elem, head)?;
                    rest = tail;
                }
                Ok(out)
            }
            Layout::Chunked {
                chunk,
                table,
                pipeline,
            } => {
                let chunk = *chunk;
                if pipeline.is_empty() {
                    return self.read_unfiltered(ranges, total, chunk, table);
                }
                let mut ids: Vec<u64> = ranges
                    .iter()
                    .filter(|r| r.end > r.start)
                    .flat_map(|r| r.start / chunk..=(r.end - 1) / chunk)
                    .collect();
                ids.dedup();
                check_alloc(&self.path, chunk, elem)?;
                let decoded = self.chunks(&ids, chunk, table, pipeline)?;
                let mut values = Values::zeros(self.dtype, to_usize(total));
                let out = values.bytes_mut();
                let mut at = 0usize;
                for r in ranges {
                    let mut pos = r.start;
                    while pos < r.end {
                        let id = pos / chunk;
                        let k = ids.binary_search(&id).expect("chunk was decoded");
                        let stop = r.end.min((id + 1) * chunk);
                        let a = usize::try_from((pos - id * chunk) * elem).expect("fits");
                        let b = usize::try_from((stop - id * chunk) * elem).expect("fits");
                        out[at..at + (b - a)].copy_from_slice(&decoded[k][a..b]);
                        at += b - a;
                        pos = stop;
                    }
                }
                Ok(values)
            }
            Layout::Library(ds) => {
                let mut out = Values::empty(self.dtype);
                for r in ranges {
                    let (a, b) = (to_usize(r.start), to_usize(r.end));
                    let part = hdf5::sync::sync(|| -> hdf5::Result<Values> {
                        Ok(values_of!(self.dtype, T => ds.read_slice_1d::<T, _>(a..b)?.to_vec()))
                    })
                    .map_err(|e| self.err(format!("HDF5 read failed: {e}")))?;
                    out.extend_from(&part);
                }
                Ok(out)
            }
        }
    }
}

/// Read exactly `len` bytes at `offset`, failing clearly on a short file
/// (checked before allocating: a corrupt size must not abort the process).
pub(crate) fn pread(file: &File, path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
    let size = file
        .metadata()
        .map_err(|e| OomError::io(path, format!("read failed: {e}")))?
        .len();
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(OomError::io(
            path,
            "file is truncated or corrupt (data ends before the stored matrix does)",
        ));
    }
    let mut buf = vec![0u8; to_usize(len)];
    pread_into(file, path, offset, &mut buf)?;
    Ok(buf)
}

/// Fail unless `elems` values of `elem` bytes can be allocated: sizes come
/// from the file, and a failed allocation would abort the process.
pub(crate) fn check_alloc(path: &Path, elems: u64, elem: u64) -> Result<()> {
    let bytes = elems
        .checked_mul(elem)
        .and_then(|b| usize::try_from(b).ok());
    match bytes {
        // Small buffers are not worth a trial allocation.
        Some(b) if b <= 1 << 26 => Ok(()),
        Some(b) if b <= isize::MAX as usize && Vec::<u8>::new().try_reserve_exact(b).is_ok() => {
            Ok(())
        }
        _ => Err(OomError::io(
            path,
            format!("cannot allocate {elems} values of {elem} bytes (corrupt sizes?)"),
        )),
    }
}

/// Fill `buf` from `offset`.
pub(crate) fn pread_into(file: &File, path: &Path, offset: u64, buf: &mut [u8]) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            OomError::io(
                path,
                "file is truncated (data ends before the stored matrix does)",
            )
        } else {
            OomError::io(path, format!("read failed: {e}"))
        }
    })
}

#[inline]
pub(crate) fn to_usize(x: u64) -> usize {
    usize::try_from(x).expect("64-bit platform")
}

/// A 1-D array in a flat little-endian file (our own spill files).
pub struct RawArray1 {
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<File>,
    pub(crate) len: u64,
    pub(crate) dtype: Dtype,
}

impl Array1 for RawArray1 {
    fn len(&self) -> u64 {
        self.len
    }

    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Values> {
        let elem = self.dtype.size() as u64;
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        let mut out = Values::zeros(self.dtype, to_usize(total));
        let mut rest = out.bytes_mut();
        for r in ranges {
            let (head, tail) = rest.split_at_mut(to_usize((r.end - r.start) * elem));
            pread_into(&self.file, &self.path, r.start * elem, head)?;
            rest = tail;
        }
        Ok(out)
    }
}
