//! The common case of a MatrixMarket file whose entries are already in
//! (row, column) order of the result — Cell Ranger's genes × cells files
//! list each cell's genes in order, so read transposed they are — parsed
//! straight into the final `indices`/`data` files: no row-range spill files,
//! no read back, no sort. Chunks are parsed on all cores while the previous
//! batch is written. The first entry out of order (or repeated) gives up;
//! the caller then runs the general bucketed parse from the start, so the
//! result never depends on which path ran.

use std::io::{BufWriter, Write};
use std::path::Path;

use rayon::prelude::*;

use super::{
    bad, chunks, finish_csr, next_batch, open_oriented, parse_chunk, spill_err, too_few, too_many,
    Buckets, Entry, ENTRY_BYTES,
};
use crate::ctx::Ctx;
use crate::error::Result;
use crate::storage::array::to_usize;
use crate::storage::matrix::StoredMatrix;
use crate::storage::transpose::spill_file;

/// One chunk's entries, strictly increasing in (row, column).
struct SortedChunk {
    first: Option<(u32, u32)>,
    last: Option<(u32, u32)>,
    /// Columns as int32 and values as float32, little-endian, in order.
    cols: Vec<u8>,
    vals: Vec<u8>,
    /// Entries per row, as (row, count) runs in row order.
    runs: Vec<(u32, u64)>,
}

/// The chunk's entries if they are strictly increasing, else `None`.
fn in_order(bytes: &[u8]) -> Option<SortedChunk> {
    let n = bytes.len() / ENTRY_BYTES;
    let mut out = SortedChunk {
        first: None,
        last: None,
        cols: Vec::with_capacity(4 * n),
        vals: Vec::with_capacity(4 * n),
        runs: Vec::new(),
    };
    for b in bytes.chunks_exact(ENTRY_BYTES) {
        let e = Entry::get(b);
        let key = (e.row, e.col);
        if out.last.is_some_and(|last| key <= last) {
            return None;
        }
        out.first.get_or_insert(key);
        out.last = Some(key);
        match out.runs.last_mut() {
            Some((row, count)) if *row == e.row => *count += 1,
            _ => out.runs.push((e.row, 1)),
        }
        // columns < 2^31 (checked by the caller)
        #[allow(clippy::cast_possible_wrap)]
        out.cols.extend_from_slice(&(e.col as i32).to_le_bytes());
        out.vals.extend_from_slice(&e.val.to_le_bytes());
    }
    Some(out)
}

/// Parse `path` if its entries are in order; `Ok(None)` when they are not.
/// Malformed files give the errors of the general parse (the same parser,
/// the same line numbers).
pub(super) fn read_sorted(ctx: &Ctx, path: &Path, transpose: bool) -> Result<Option<StoredMatrix>> {
    let (r, h, nrows, ncols) = open_oriented(path, transpose)?;
    let one = Buckets {
        rows_per: nrows.max(1),
        n: 1,
    };
    let io_err = spill_err;
    let mut idx_out = BufWriter::with_capacity(1 << 20, spill_file()?);
    let mut val_out = BufWriter::with_capacity(1 << 20, spill_file()?);
    let mut indptr: Vec<u64> = vec![0];
    let mut total = 0u64;
    let mut last: Option<(u32, u32)> = None;
    let (mut line, mut seen) = (h.lines, 0u64);
    let rx = chunks(path, r);
    let batch = 2 * rayon::current_num_threads();
    let mut pending: Vec<SortedChunk> = Vec::new();
    let write = |pending: Vec<SortedChunk>,
                 idx: &mut BufWriter<std::fs::File>,
                 val: &mut BufWriter<std::fs::File>|
     -> Result<()> {
        for s in pending {
            idx.write_all(&s.cols).map_err(io_err)?;
            val.write_all(&s.vals).map_err(io_err)?;
        }
        Ok(())
    };
    loop {
        let texts = next_batch(ctx, &rx, batch)?;
        if texts.is_empty() {
            break;
        }
        // Write the previous batch while this one is parsed.
        let done = std::mem::take(&mut pending);
        let (written, parsed) = rayon::join(
            || write(done, &mut idx_out, &mut val_out),
            || {
                texts
                    .par_iter()
                    .map(|t| {
                        parse_chunk(t, &h, transpose, &one).map(|p| {
                            let bytes = p.by_bucket.into_iter().next().unwrap_or_default();
                            (in_order(&bytes), p.lines, p.entries)
                        })
                    })
                    .collect::<Vec<_>>()
            },
        );
        written?;
        for p in parsed {
            let (sorted, lines, entries) = p.map_err(|e| bad(path, line + e.line, e.msg))?;
            seen += entries;
            if seen > h.nnz {
                return Err(too_many(path, line + lines, h.nnz));
            }
            line += lines;
            let Some(s) = sorted else { return Ok(None) };
            if let (Some(prev), Some(first)) = (last, s.first) {
                if first <= prev {
                    return Ok(None);
                }
            }
            last = s.last.or(last);
            for &(row, count) in &s.runs {
                indptr.resize(to_usize(u64::from(row)) + 1, total);
                total += count;
            }
            pending.push(s);
        }
    }
    write(pending, &mut idx_out, &mut val_out)?;
    if seen != h.nnz {
        return Err(too_few(path, line, h.nnz, seen));
    }
    indptr.resize(to_usize(nrows) + 1, total);
    finish_csr(path, nrows, ncols, indptr, idx_out, val_out).map(Some)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::super::tests::write;
    use super::*;

    fn all_rows(m: &StoredMatrix) -> crate::block::Block {
        m.read_rows(&(0..m.nrows).collect::<Vec<_>>()).unwrap()
    }

    /// A file of `rows` × 300 with entries in row order over several text
    /// chunks (some rows empty); `swap` exchanges two entries at that line.
    fn big(rows: u64, swap: Option<usize>) -> String {
        let mut lines = Vec::new();
        for r in 1..=rows {
            if r % 7 == 3 {
                continue;
            }
            for c in (1..=300u64).filter(|c| (c * 31 + r) % 5 == 0) {
                lines.push(format!("{r} {c} {}", (r * c) % 97 + 1));
            }
        }
        if let Some(k) = swap {
            lines.swap(k, k + 1);
        }
        let mut text = format!(
            "%%MatrixMarket matrix coordinate integer general\n{rows} 300 {}\n",
            lines.len()
        );
        for l in lines {
            writeln!(text, "{l}").unwrap();
        }
        text
    }

    #[test]
    fn ordered_files_skip_the_buckets_and_give_the_same_matrix() {
        let dir = tempfile::tempdir().unwrap();
        let text = big(9000, None);
        assert!(text.len() > 2 * super::super::CHUNK, "several chunks");
        let p = write(dir.path(), "s.mtx", &text);
        let fast = read_sorted(&Ctx::new(), &p, false)
            .unwrap()
            .expect("in order");
        let general = super::super::read_mtx_in(&Ctx::new(), &p, false, 1000).unwrap();
        assert_eq!(all_rows(&fast), all_rows(&general));
        assert_eq!(fast.nrows, 9000);
        // read transposed, the same file is in column order: the general parse runs
        assert!(read_sorted(&Ctx::new(), &p, true).unwrap().is_none());
    }

    #[test]
    fn entries_out_of_order_or_repeated_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        let head = "%%MatrixMarket matrix coordinate integer general\n3 3 3\n";
        for body in [
            "1 1 1\n2 2 2\n1 3 3\n",
            "1 2 1\n1 1 2\n3 3 3\n",
            "1 1 1\n1 1 2\n2 2 3\n",
        ] {
            let p = write(dir.path(), "u.mtx", &format!("{head}{body}"));
            assert!(
                read_sorted(&Ctx::new(), &p, false).unwrap().is_none(),
                "{body}"
            );
            // read_mtx gives the general result (duplicates summed)
            let m = super::super::read_mtx(&Ctx::new(), &p, false).unwrap();
            let g = super::super::read_mtx_in(&Ctx::new(), &p, false, 1).unwrap();
            assert_eq!(all_rows(&m), all_rows(&g));
        }
        // out of order across text chunks, near the end of the file
        let text = big(9000, Some(400_000));
        let p = write(dir.path(), "late.mtx", &text);
        assert!(read_sorted(&Ctx::new(), &p, false).unwrap().is_none());
        let m = super::super::read_mtx(&Ctx::new(), &p, false).unwrap();
        let g = super::super::read_mtx_in(&Ctx::new(), &p, false, 1000).unwrap();
        assert_eq!(all_rows(&m), all_rows(&g));
    }
}
