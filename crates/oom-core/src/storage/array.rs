//! One-dimensional stored arrays read by ranges. HDF5 datasets are mapped
//! once (contiguous address or chunk table) and then read with positioned
//! reads and decoded on all cores without touching the HDF5 library.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::convert::Target;
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

    /// [`Array1::read_ranges`] converted to `to`. Stores that decode
    /// pieces themselves convert each piece as it arrives; this default
    /// converts the whole read.
    fn read_ranges_as(&self, ranges: &[Range<u64>], to: Target<'_>) -> Result<Values> {
        to.convert_values(self.read_ranges(ranges)?)
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

/// An HDF5 file open for positioned reads, with the size and modification
/// time it had when opened. Its datasets are read at offsets found then, so
/// a file rewritten in place (the same inode, as `h5py.File(path, "w")`
/// does) would hand them another file's bytes: every read checks first.
pub struct OpenFile {
    file: File,
    stamp: Option<(u64, std::time::SystemTime)>,
}

impl OpenFile {
    pub fn new(file: File) -> Self {
        let stamp = stamp_of(&file);
        OpenFile { file, stamp }
    }

    /// `AnnDataReadError` (an `Io` error) when the file changed since it was opened.
    pub fn check_unchanged(&self, path: &Path) -> Result<()> {
        if self.stamp.is_some() && stamp_of(&self.file) != self.stamp {
            return Err(OomError::io(
                path,
                "the file was changed on disk after it was opened (rewritten by another \
                 program?); open it again",
            ));
        }
        Ok(())
    }
}

fn stamp_of(file: &File) -> Option<(u64, std::time::SystemTime)> {
    let m = file.metadata().ok()?;
    Some((m.len(), m.modified().ok()?))
}

impl std::ops::Deref for OpenFile {
    type Target = File;

    fn deref(&self) -> &File {
        &self.file
    }
}

/// A 1-D dataset in an HDF5 file.
pub struct H5Array1 {
    pub(crate) path: PathBuf,
    pub(crate) key: String,
    pub(crate) file: Arc<OpenFile>,
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

    /// Where element `at` of chunk `id` comes from (`chunk` elements per chunk).
    fn locate(
        &self,
        id: u64,
        at: u64,
        chunk: u64,
        table: &[Option<ChunkLoc>],
        filtered: bool,
    ) -> Result<Src> {
        let loc = table
            .get(usize::try_from(id).unwrap_or(usize::MAX))
            .copied()
            .flatten();
        let Some(loc) = loc else {
            return Ok(Src::Zero);
        };
        if filtered {
            return Ok(Src::Chunk { id, at });
        }
        let elem = self.elem();
        if loc.size < chunk * elem {
            return Err(self.err(format!(
                "chunk {id} holds {} bytes, expected {}",
                loc.size,
                chunk * elem
            )));
        }
        Ok(Src::File(loc.addr + at * elem))
    }

    /// Undo the filters of chunk `id` (present in `table`).
    fn decode(
        &self,
        id: u64,
        chunk: u64,
        table: &[Option<ChunkLoc>],
        pipeline: &[Filter],
    ) -> Result<Vec<u8>> {
        let expected = usize::try_from(chunk * self.elem()).expect("chunk fits in memory");
        let loc = table[to_usize(id)].expect("a chunk that was written");
        let raw = pread(&self.file, &self.path, loc.addr, loc.size)?;
        decode_chunk(raw, pipeline, loc.mask, expected).map_err(|m| self.err(m))
    }

    /// Cut `ranges` into pieces of `out` (elements of `to`): at chunk
    /// boundaries (`chunk` elements; `None` for one contiguous run at
    /// `contiguous`), and stored runs further into [`PIECE`]s so that they
    /// are read and converted on all cores.
    fn plan<'o>(
        &self,
        ranges: &[Range<u64>],
        out: &'o mut [u8],
        to: Target<'_>,
        locate: impl Fn(u64, u64) -> Result<Src>,
        chunk: u64,
    ) -> Result<Vec<Piece<'o>>> {
        let out_elem = to.dtype().size() as u64;
        let mut pieces = Vec::new();
        let mut rest = out;
        for r in ranges {
            let mut pos = r.start;
            while pos < r.end {
                let id = pos / chunk;
                let stop = r.end.min((id + 1).saturating_mul(chunk));
                let src = locate(id, pos - id * chunk)?;
                let step = match src {
                    Src::File(_) => PIECE,
                    Src::Zero | Src::Chunk { .. } => stop - pos,
                };
                let mut a = pos;
                while a < stop {
                    let b = stop.min(a + step);
                    let (head, tail) =
                        std::mem::take(&mut rest).split_at_mut(to_usize((b - a) * out_elem));
                    rest = tail;
                    pieces.push(Piece {
                        dst: head,
                        n: b - a,
                        src: src.advance(a - pos, self.elem()),
                    });
                    a = b;
                }
                pos = stop;
            }
        }
        Ok(pieces)
    }

    /// Fill `pieces` from stored (unfiltered) runs, in parallel: straight
    /// into place when no conversion is asked, else through a small
    /// per-thread buffer converted while it is in cache.
    fn read_stored(&self, pieces: Vec<Piece<'_>>, to: Target<'_>) -> Result<()> {
        let from = self.dtype;
        pieces.into_par_iter().try_for_each(|p| match p.src {
            Src::File(addr) if to.is_copy(from) => pread_into(&self.file, &self.path, addr, p.dst),
            Src::File(addr) => BOUNCE.with(|b| {
                let mut b = b.borrow_mut();
                let len = to_usize(p.n * self.elem());
                if b.len() < len {
                    b.resize(len, 0);
                }
                pread_into(&self.file, &self.path, addr, &mut b[..len])?;
                to.convert(from, &b[..len], p.dst)
            }),
            Src::Zero => to.check_zeros(p.n),
            Src::Chunk { .. } => unreachable!("filtered chunks are decoded"),
        })
    }

    /// Fill `pieces` from filtered chunks: each chunk decoded once (chunks
    /// in parallel) and its pieces converted straight into place.
    fn read_filtered(
        &self,
        pieces: Vec<Piece<'_>>,
        to: Target<'_>,
        chunk: u64,
        table: &[Option<ChunkLoc>],
        pipeline: &[Filter],
    ) -> Result<()> {
        let elem = to_usize(self.elem());
        // Ranges are sorted and disjoint: the pieces of one chunk are adjacent.
        let mut groups: Vec<Vec<Piece<'_>>> = Vec::new();
        for p in pieces {
            match (groups.last_mut(), p.src) {
                (Some(g), Src::Chunk { id, .. }) if matches!(g[0].src, Src::Chunk { id: prev, .. } if prev == id) =>
                {
                    g.push(p);
                }
                _ => groups.push(vec![p]),
            }
        }
        let from = self.dtype;
        groups.into_par_iter().try_for_each(|g| {
            let Src::Chunk { id, .. } = g[0].src else {
                return g.iter().try_for_each(|p| to.check_zeros(p.n));
            };
            let decoded = self.decode(id, chunk, table, pipeline)?;
            g.into_iter().try_for_each(|p| {
                let Src::Chunk { at, .. } = p.src else {
                    unreachable!("one chunk per group")
                };
                let a = to_usize(at) * elem;
                to.convert(from, &decoded[a..a + to_usize(p.n) * elem], p.dst)
            })
        })
    }
}

/// Elements per piece of a stored run read on one thread (512 KiB of int64).
const PIECE: u64 = 1 << 16;

thread_local! {
    /// Stored bytes waiting for conversion, one buffer per thread.
    static BOUNCE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One run of a read: `n` elements for `dst`, from `src`.
struct Piece<'a> {
    dst: &'a mut [u8],
    n: u64,
    src: Src,
}

#[derive(Debug, Clone, Copy)]
enum Src {
    /// Stored as they are, at this file address.
    File(u64),
    /// In a chunk never written: zeros.
    Zero,
    /// From element `at` of the filtered chunk `id`.
    Chunk { id: u64, at: u64 },
}

impl Src {
    /// `k` elements (of `elem` bytes) further on.
    fn advance(self, k: u64, elem: u64) -> Src {
        match self {
            Src::File(a) => Src::File(a + k * elem),
            Src::Zero => Src::Zero,
            Src::Chunk { id, at } => Src::Chunk { id, at: at + k },
        }
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
        self.read_ranges_as(ranges, Target::Values(self.dtype))
    }

    fn read_ranges_as(&self, ranges: &[Range<u64>], to: Target<'_>) -> Result<Values> {
        self.file.check_unchanged(&self.path)?;
        for r in ranges {
            if r.end > self.len || r.start > r.end {
                return Err(self.err(format!(
                    "range {}..{} outside dataset of length {}",
                    r.start, r.end, self.len
                )));
            }
        }
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        check_alloc(&self.path, total, self.elem().max(to.dtype().size() as u64))?;
        if let Layout::Library(ds) = &self.layout {
            let mut out = Values::empty(self.dtype);
            for r in ranges {
                let (a, b) = (to_usize(r.start), to_usize(r.end));
                let part = hdf5::sync::sync(|| -> hdf5::Result<Values> {
                    Ok(values_of!(self.dtype, T => ds.read_slice_1d::<T, _>(a..b)?.to_vec()))
                })
                .map_err(|e| self.err(format!("HDF5 read failed: {e}")))?;
                out.extend_from(&part);
            }
            return to.convert_values(out);
        }
        let mut values = Values::zeros(to.dtype(), to_usize(total));
        let out = values.bytes_mut();
        match &self.layout {
            Layout::Contiguous { addr } => {
                let elem = self.elem();
                let pieces = self.plan(
                    ranges,
                    out,
                    to,
                    |_, at| Ok(Src::File(addr + at * elem)),
                    u64::MAX,
                )?;
                self.read_stored(pieces, to)?;
            }
            Layout::Chunked {
                chunk,
                table,
                pipeline,
            } => {
                let (chunk, filtered) = (*chunk, !pipeline.is_empty());
                if filtered {
                    check_alloc(&self.path, chunk, self.elem())?;
                }
                let locate = |id, at| self.locate(id, at, chunk, table, filtered);
                let pieces = self.plan(ranges, out, to, locate, chunk)?;
                if filtered {
                    self.read_filtered(pieces, to, chunk, table, pipeline)?;
                } else {
                    self.read_stored(pieces, to)?;
                }
            }
            Layout::Library(_) => unreachable!("read above"),
        }
        Ok(values)
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

/// Fill `buf` from `offset` without moving a shared cursor, so threads
/// read one open file at once.
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Fill `buf` from `offset`. Windows has no positioned read that leaves the
/// cursor alone; every caller passes its own offset, so the cursor is unused.
#[cfg(windows)]
pub(crate) fn read_exact_at(
    file: &File,
    mut buf: &mut [u8],
    mut offset: u64,
) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Fill `buf` from `offset`.
pub(crate) fn pread_into(file: &File, path: &Path, offset: u64, buf: &mut [u8]) -> Result<()> {
    read_exact_at(file, buf, offset).map_err(|e| {
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
