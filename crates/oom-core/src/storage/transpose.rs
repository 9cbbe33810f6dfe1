//! CSC matrices are streamed by rows through a one-off transpose into
//! unnamed temp files (they vanish when closed, even after a crash).
//! Memory stays bounded: rows are placed band by band, each band a full
//! scan of the column-ordered entries, which also leaves every row sorted.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use super::array::{to_usize, Array1, RawArray1};
use super::csr::CsrStore;
use crate::block::Values;
use crate::error::{OomError, Result};
use crate::{values_of, with_values};

/// Entries per band and per streamed read.
const BAND: u64 = 1 << 24;

/// The directory for spill files: `OOM_TMPDIR`, else the system temp dir.
pub fn spill_dir() -> PathBuf {
    std::env::var_os("OOM_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

pub(crate) fn spill_file() -> Result<File> {
    let dir = spill_dir();
    tempfile::tempfile_in(&dir)
        .map_err(|e| OomError::io(&dir, format!("cannot create a temp file: {e}")))
}

/// Transpose a CSC matrix (`nrows` × `ncols`, `col_ptr` over columns).
pub fn csc_to_csr(
    nrows: u64,
    ncols: u64,
    col_ptr: &[u64],
    indices: &dyn Array1,
    data: &dyn Array1,
    what: &str,
) -> Result<CsrStore> {
    let nnz = *col_ptr.last().expect("col_ptr is never empty");
    let row_of = |v: &Values| -> Result<Vec<u64>> {
        let rows: Vec<u64> = with_values!(v, x => x.iter().map(|r| crate::block::Scalar::to_f64(*r) as u64).collect());
        if let Some(&r) = rows.iter().find(|&&r| r >= nrows) {
            return Err(OomError::Corrupt(format!(
                "{what}: stored row index {r} out of range for {nrows} rows"
            )));
        }
        Ok(rows)
    };
    // Pass 1: entries per row.
    let mut counts = vec![0u64; to_usize(nrows)];
    let mut a = 0;
    while a < nnz {
        let b = (a + BAND).min(nnz);
        for r in row_of(&indices.read_range(a..b)?)? {
            counts[to_usize(r)] += 1;
        }
        a = b;
    }
    let mut indptr = Vec::with_capacity(counts.len() + 1);
    indptr.push(0u64);
    for c in &counts {
        indptr.push(indptr.last().expect("nonempty") + c);
    }
    drop(counts);

    let dtype = data.dtype();
    let mut idx_file = spill_file()?;
    let mut val_file = spill_file()?;
    let io_err =
        |e: std::io::Error| OomError::io(&spill_dir(), format!("cannot write a temp file: {e}"));
    // Pass 2: one band of rows at a time.
    let mut r0 = 0u64;
    while r0 < nrows {
        let mut r1 = r0 + 1;
        while r1 < nrows && indptr[to_usize(r1 + 1)] - indptr[to_usize(r0)] <= BAND {
            r1 += 1;
        }
        let base = indptr[to_usize(r0)];
        let band_nnz = to_usize(indptr[to_usize(r1)] - base);
        let mut cursor: Vec<u64> = indptr[to_usize(r0)..to_usize(r1)]
            .iter()
            .map(|p| p - base)
            .collect();
        let mut cols = vec![0u32; band_nnz];
        let mut vals = Values::zeros(dtype, band_nnz);
        let mut c0 = 0usize;
        while c0 < to_usize(ncols) {
            let mut c1 = c0 + 1;
            while c1 < to_usize(ncols) && col_ptr[c1 + 1] - col_ptr[c0] <= BAND {
                c1 += 1;
            }
            let range = col_ptr[c0]..col_ptr[c1];
            let rows = row_of(&indices.read_range(range.clone())?)?;
            let part = data.read_range(range)?;
            values_of!(dtype, T => {
                let src: &[T] = part.as_slice().expect("dtype");
                let dst: &mut Vec<T> = vals.as_mut_vec().expect("dtype");
                let mut k = 0usize;
                for c in c0..c1 {
                    let len = to_usize(col_ptr[c + 1] - col_ptr[c]);
                    for _ in 0..len {
                        let r = rows[k];
                        if r >= r0 && r < r1 {
                            let slot = &mut cursor[to_usize(r - r0)];
                            cols[to_usize(*slot)] = u32::try_from(c).expect("column fits u32");
                            dst[to_usize(*slot)] = src[k];
                            *slot += 1;
                        }
                        k += 1;
                    }
                }
                Vec::<T>::new()
            });
            c0 = c1;
        }
        let idx_bytes: Vec<u8> = cols.iter().flat_map(|c| c.to_le_bytes()).collect();
        idx_file.write_all(&idx_bytes).map_err(io_err)?;
        let val_bytes: Vec<u8> =
            with_values!(&vals, v => v.iter().flat_map(|x| x.to_le_bytes()).collect());
        val_file.write_all(&val_bytes).map_err(io_err)?;
        r0 = r1;
    }
    let dir = spill_dir();
    let indices = RawArray1 {
        path: dir.clone(),
        file: Arc::new(idx_file),
        len: nnz,
        dtype: crate::block::Dtype::U32,
    };
    let data = RawArray1 {
        path: dir,
        file: Arc::new(val_file),
        len: nnz,
        dtype,
    };
    CsrStore::new(
        nrows,
        ncols,
        indptr,
        Box::new(indices),
        Box::new(data),
        what.to_string(),
    )
}
