//! A scratch copy of the sparse blocks one pass has read, for the pass
//! right after it.
//!
//! PCA's projection needs the same rows, columns and transforms as its Gram
//! pass, but only the selected genes' entries (a tenth of the stored values
//! after an HVG subset). The Gram pass already holds them once decoded,
//! selected and transformed, so it writes them to an unnamed temporary file
//! (nothing is left behind if the process dies) and the projection reads
//! that back instead of the source: a tenth of the bytes and none of the
//! decoding. The file lives in the page cache, not in the process's memory.
//! A spill that cannot be written is dropped; the caller then reads the
//! source again.

use std::fs::File;
use std::io::Write;

use crate::block::{Csr, Dtype, Values};
use crate::error::{OomError, Result};
use crate::storage::array::read_exact_at;
use crate::storage::transpose::{spill_dir, spill_file};

/// Blocks written by one run of a pass, in row order.
pub struct RunSpill {
    file: File,
    /// `(first row, end row, byte offset, byte length, dtype)` of each block.
    blocks: Vec<(u64, u64, u64, u64, Dtype)>,
    ncols: usize,
    /// Column indices fit in two bytes.
    narrow: bool,
}

impl RunSpill {
    /// An empty spill in the spill directory (`OOM_TMPDIR`, else the
    /// system's) for blocks of `ncols` columns; `None` when no temporary
    /// file can be made, or when that directory is memory (tmpfs, as `/tmp`
    /// is on many systems): a spill there would hold a tenth of the matrix
    /// in RAM, so the data is read again instead.
    pub fn create(ncols: usize) -> Option<Self> {
        let file = spill_file().ok()?;
        (!in_memory(&file)).then(|| Self::in_file(file, ncols))
    }

    fn in_file(file: File, ncols: usize) -> Self {
        RunSpill {
            file,
            blocks: Vec::new(),
            ncols,
            narrow: ncols <= usize::from(u16::MAX) + 1,
        }
    }

    /// Append rows `a..b`; an error means the spill is incomplete.
    pub fn push(&mut self, a: u64, b: u64, c: &Csr) -> std::io::Result<()> {
        debug_assert_eq!(c.ncols, self.ncols);
        let mut buf = Vec::with_capacity(c.indptr.len() * 8 + c.nnz() * 6);
        for &p in &c.indptr {
            buf.extend_from_slice(&p.to_le_bytes());
        }
        if self.narrow {
            // Lossless: every index is below ncols ≤ 65,536.
            buf.extend(c.indices.iter().flat_map(|&j| (j as u16).to_le_bytes()));
        } else {
            buf.extend(c.indices.iter().flat_map(|&j| j.to_le_bytes()));
        }
        buf.extend_from_slice(c.data.bytes());
        self.file.write_all(&buf)?;
        let at = self.blocks.last().map_or(0, |&(_, _, at, len, _)| at + len);
        self.blocks
            .push((a, b, at, buf.len() as u64, c.data.dtype()));
        Ok(())
    }

    /// The blocks' row ranges, in order.
    pub fn rows(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.blocks.iter().map(|&(a, b, ..)| (a, b))
    }

    /// Block `i` as it was pushed.
    pub fn read(&self, i: usize) -> Result<Csr> {
        let (a, b, at, len, dtype) = self.blocks[i];
        let mut buf = vec![0u8; usize::try_from(len).expect("a block fits in memory")];
        read_exact_at(&self.file, &mut buf, at).map_err(|e| io_err(&e))?;
        let nrows = usize::try_from(b - a).expect("fits");
        let word = |k: usize| u64::from_le_bytes(buf[k * 8..k * 8 + 8].try_into().expect("8"));
        let indptr: Vec<i64> = (0..=nrows).map(|r| word(r) as i64).collect();
        let nnz = usize::try_from(indptr[nrows]).expect("fits");
        let rest = &buf[(1 + nrows) * 8..];
        let (indices, values): (Vec<i32>, &[u8]) = if self.narrow {
            let (ix, v) = rest.split_at(nnz * 2);
            let ix = ix
                .chunks_exact(2)
                .map(|b| i32::from(u16::from_le_bytes([b[0], b[1]])))
                .collect();
            (ix, v)
        } else {
            let (ix, v) = rest.split_at(nnz * 4);
            let ix = ix
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (ix, v)
        };
        Ok(Csr {
            nrows,
            ncols: self.ncols,
            indptr,
            indices,
            data: Values::from_le_bytes(dtype, values),
        })
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

/// Whether `file` lives on a memory file system (tmpfs, ramfs).
#[cfg(target_os = "linux")]
pub(crate) fn in_memory(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero statfs is a valid value to be overwritten.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid open descriptor and a statfs to fill.
    let ok = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } == 0;
    // TMPFS_MAGIC, RAMFS_MAGIC (linux/magic.h); f_type's width varies by platform.
    ok && matches!(st.f_type as u64 & 0xffff_ffff, 0x0102_1994 | 0x8584_58f6)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn in_memory(_: &File) -> bool {
    false
}

fn io_err(e: &std::io::Error) -> OomError {
    OomError::Io {
        path: spill_dir().display().to_string(),
        msg: format!("reading back a temporary copy of the data: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_come_back_as_pushed() {
        for (ncols, dtype) in [(7usize, Dtype::F32), (70_000, Dtype::F64), (3, Dtype::I16)] {
            let c = Csr {
                nrows: 3,
                ncols,
                indptr: vec![0, 2, 2, 3],
                indices: vec![1, i32::try_from(ncols - 1).unwrap(), 0],
                data: match dtype {
                    Dtype::F32 => Values::F32(vec![0.5, -2.0, 3.25]),
                    Dtype::F64 => Values::F64(vec![0.5, -2.0, 1e300]),
                    _ => Values::I16(vec![1, -7, 300]),
                },
            };
            let dir = env!("CARGO_MANIFEST_DIR");
            let mut s = RunSpill::in_file(tempfile::tempfile_in(dir).unwrap(), ncols);
            s.push(10, 13, &c).unwrap();
            s.push(13, 16, &c).unwrap();
            assert_eq!(s.len(), 2);
            assert_eq!(s.rows().collect::<Vec<_>>(), vec![(10, 13), (13, 16)]);
            for i in 0..2 {
                let back = s.read(i).unwrap();
                assert_eq!(
                    (&back.indptr, &back.indices, back.nrows, back.ncols),
                    (&c.indptr, &c.indices, c.nrows, c.ncols)
                );
                assert_eq!(back.data.bytes(), c.data.bytes());
                assert_eq!(back.data.dtype(), dtype);
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn memory_file_systems_are_told_apart_from_disks() {
        let disk = tempfile::tempfile_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert!(!in_memory(&disk));
        if let Ok(shm) = tempfile::tempfile_in("/dev/shm") {
            assert!(in_memory(&shm), "/dev/shm is tmpfs on Linux");
        }
    }
}
