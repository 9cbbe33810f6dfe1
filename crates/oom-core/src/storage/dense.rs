//! Dense 2-D datasets read by row ranges, decoding chunks on all cores.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use super::array::{pread, to_usize, Layout};
use super::container::DenseRows;
use super::filters::decode_chunk;
use crate::block::{Dtype, Values};
use crate::error::{OomError, Result};
use crate::values_of;

pub struct H5Dense {
    pub(crate) path: PathBuf,
    pub(crate) key: String,
    pub(crate) file: Arc<File>,
    pub nrows: u64,
    pub ncols: u64,
    pub dtype: Dtype,
    pub(crate) chunk_shape: Option<Vec<u64>>,
    pub(crate) layout: Layout,
}

impl H5Dense {
    fn err(&self, msg: impl Into<String>) -> OomError {
        OomError::format(&self.path, &self.key, msg)
    }
}

impl DenseRows for H5Dense {
    fn nrows(&self) -> u64 {
        self.nrows
    }

    fn ncols(&self) -> u64 {
        self.ncols
    }

    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn read_rows(&self, r0: u64, r1: u64) -> Result<Values> {
        if r1 > self.nrows || r0 > r1 {
            return Err(self.err(format!("rows {r0}..{r1} outside {} rows", self.nrows)));
        }
        let elem = self.dtype.size() as u64;
        let row_bytes = self.ncols * elem;
        match &self.layout {
            Layout::Contiguous { addr } => {
                let bytes = pread(&self.file, &self.path, addr + r0 * row_bytes, (r1 - r0) * row_bytes)?;
                Ok(Values::from_le_bytes(self.dtype, &bytes))
            }
            Layout::Chunked { table, pipeline, .. } => {
                let shape = self.chunk_shape.as_deref().unwrap_or(&[1, 1]);
                let (cr, cc) = (shape[0], shape.get(1).copied().unwrap_or(1));
                let gcols = self.ncols.div_ceil(cc);
                let chunk_bytes = to_usize(cr * cc * elem);
                let ids: Vec<(u64, u64)> = if r1 > r0 {
                    (r0 / cr..=(r1 - 1) / cr).flat_map(|i| (0..gcols).map(move |j| (i, j))).collect()
                } else {
                    Vec::new()
                };
                let decoded: Vec<Vec<u8>> = ids
                    .par_iter()
                    .map(|&(i, j)| match crate::exec::check_cancel().map(|()| table.get(to_usize(i * gcols + j)).copied().flatten())? {
                        None => Ok(vec![0u8; chunk_bytes]),
                        Some(loc) => {
                            let raw = pread(&self.file, &self.path, loc.addr, loc.size)?;
                            if pipeline.is_empty() {
                                Ok(raw)
                            } else {
                                decode_chunk(raw, pipeline, loc.mask, chunk_bytes).map_err(|m| self.err(m))
                            }
                        }
                    })
                    .collect::<Result<_>>()?;
                let mut out = vec![0u8; to_usize((r1 - r0) * row_bytes)];
                for (&(i, j), bytes) in ids.iter().zip(&decoded) {
                    let c0 = j * cc;
                    let width = (self.ncols - c0).min(cc);
                    for r in (i * cr).max(r0)..((i + 1) * cr).min(r1) {
                        let src = to_usize(((r - i * cr) * cc) * elem);
                        let dst = to_usize((r - r0) * row_bytes + c0 * elem);
                        let n = to_usize(width * elem);
                        out[dst..dst + n].copy_from_slice(&bytes[src..src + n]);
                    }
                }
                Ok(Values::from_le_bytes(self.dtype, &out))
            }
            Layout::Library(ds) => {
                let (a, b) = (to_usize(r0), to_usize(r1));
                let is_2d = self.chunk_shape.as_ref().map_or(true, |c| c.len() == 2) && ds.ndim() == 2;
                hdf5::sync::sync(|| -> hdf5::Result<Values> {
                    Ok(if is_2d {
                        values_of!(self.dtype, T => ds.read_slice_2d::<T, _>(ndarray::s![a..b, ..])?.iter().copied().collect())
                    } else {
                        values_of!(self.dtype, T => ds.read_slice_1d::<T, _>(a..b)?.to_vec())
                    })
                })
                .map_err(|e| self.err(format!("HDF5 read failed: {e}")))
            }
        }
    }
}
