//! Dense 2-D datasets read by row ranges, decoding chunks on all cores.

use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use super::array::{pread, to_usize, Layout, OpenFile};
use super::container::DenseRows;
use super::filters::decode_chunk;
use crate::block::{Dtype, Values};
use crate::error::{OomError, Result};
use crate::values_of;

pub struct H5Dense {
    pub(crate) path: PathBuf,
    pub(crate) key: String,
    pub(crate) file: Arc<OpenFile>,
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
        self.read_region(r0, r1, 0, self.ncols)
    }
}

impl H5Dense {
    /// Rows `r0..r1` × columns `c0..c1` as row-major values; chunks are
    /// decoded on all cores.
    pub fn read_region(&self, r0: u64, r1: u64, c0: u64, c1: u64) -> Result<Values> {
        self.file.check_unchanged(&self.path)?;
        if r1 > self.nrows || r0 > r1 || c1 > self.ncols || c0 > c1 {
            return Err(self.err(format!(
                "region {r0}..{r1} × {c0}..{c1} outside the {} × {} array",
                self.nrows, self.ncols
            )));
        }
        let elem = self.dtype.size() as u64;
        let row_bytes = self.ncols * elem;
        let out_row = (c1 - c0) * elem;
        match &self.layout {
            Layout::Contiguous { addr } if c0 == 0 && c1 == self.ncols => {
                let bytes = pread(
                    &self.file,
                    &self.path,
                    addr + r0 * row_bytes,
                    (r1 - r0) * row_bytes,
                )?;
                Ok(Values::from_le_bytes(self.dtype, &bytes))
            }
            Layout::Contiguous { addr } => {
                let mut out = vec![0u8; to_usize((r1 - r0) * out_row)];
                for (r, dst) in (r0..r1).zip(out.chunks_exact_mut(to_usize(out_row.max(1)))) {
                    dst.copy_from_slice(&pread(
                        &self.file,
                        &self.path,
                        addr + r * row_bytes + c0 * elem,
                        out_row,
                    )?);
                }
                Ok(Values::from_le_bytes(self.dtype, &out))
            }
            Layout::Chunked {
                table, pipeline, ..
            } => {
                let shape = self.chunk_shape.as_deref().unwrap_or(&[1, 1]);
                let (cr, cc) = (shape[0], shape.get(1).copied().unwrap_or(1));
                let gcols = self.ncols.div_ceil(cc);
                let chunk_bytes = to_usize(cr * cc * elem);
                let ids: Vec<(u64, u64)> = if r1 > r0 && c1 > c0 {
                    (r0 / cr..=(r1 - 1) / cr)
                        .flat_map(|i| (c0 / cc..=(c1 - 1) / cc).map(move |j| (i, j)))
                        .collect()
                } else {
                    Vec::new()
                };
                let decoded: Vec<Vec<u8>> = ids
                    .par_iter()
                    .map(
                        |&(i, j)| match table.get(to_usize(i * gcols + j)).copied().flatten() {
                            None => Ok(vec![0u8; chunk_bytes]),
                            Some(loc) => {
                                let raw = pread(&self.file, &self.path, loc.addr, loc.size)?;
                                if pipeline.is_empty() {
                                    Ok(raw)
                                } else {
                                    decode_chunk(raw, pipeline, loc.mask, chunk_bytes)
                                        .map_err(|m| self.err(m))
                                }
                            }
                        },
                    )
                    .collect::<Result<_>>()?;
                let mut out = vec![0u8; to_usize((r1 - r0) * out_row)];
                for (&(i, j), bytes) in ids.iter().zip(&decoded) {
                    // Columns of chunk (i, j) inside c0..c1.
                    let (a, b) = ((j * cc).max(c0), ((j + 1) * cc).min(c1));
                    let n = to_usize((b - a) * elem);
                    for r in (i * cr).max(r0)..((i + 1) * cr).min(r1) {
                        let src = to_usize(((r - i * cr) * cc + (a - j * cc)) * elem);
                        let dst = to_usize((r - r0) * out_row + (a - c0) * elem);
                        out[dst..dst + n].copy_from_slice(&bytes[src..src + n]);
                    }
                }
                Ok(Values::from_le_bytes(self.dtype, &out))
            }
            Layout::Library(ds) => {
                let (a, b, c, d) = (to_usize(r0), to_usize(r1), to_usize(c0), to_usize(c1));
                let is_2d =
                    self.chunk_shape.as_ref().is_none_or(|c| c.len() == 2) && ds.ndim() == 2;
                hdf5::sync::sync(|| -> hdf5::Result<Values> {
                    Ok(if is_2d {
                        values_of!(self.dtype, T => ds.read_slice_2d::<T, _>(ndarray::s![a..b, c..d])?.iter().copied().collect())
                    } else {
                        values_of!(self.dtype, T => ds.read_slice_1d::<T, _>(a..b)?.to_vec())
                    })
                })
                .map_err(|e| self.err(format!("HDF5 read failed: {e}")))
            }
        }
    }
}
