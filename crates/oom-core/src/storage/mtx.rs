//! MatrixMarket (`.mtx`, optionally gzipped) parsed into a CSR in unnamed
//! spill files, in bounded memory whatever the file size and entry order.
//!
//! One thread decompresses and cuts the text into chunks at line ends; the
//! chunks are parsed on all cores, and every entry is appended to the spill
//! file of its row range ("bucket"). Then each bucket is sorted by (row,
//! column) on its own — duplicates summed as scipy does — and appended to
//! the final `indices`/`data` files. Memory: a few chunks in flight plus one
//! bucket per thread, never the whole matrix.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use rayon::prelude::*;

use super::array::{to_usize, RawArray1};
use super::csr::CsrStore;
use super::matrix::StoredMatrix;
use super::transpose::{spill_dir, spill_file};
use crate::block::{Dtype, Values};
use crate::ctx::Ctx;
use crate::error::{OomError, Result};

mod lines;
mod sorted;

use lines::parse_chunk;

/// Bytes of text per parsed chunk.
const CHUNK: usize = 1 << 21;
/// Entries per bucket the row ranges are sized for (12 bytes each).
const BUCKET_ENTRIES: u64 = 1 << 21;
/// Open spill files at most.
const MAX_BUCKETS: u64 = 256;

/// One parsed entry, in output orientation.
#[derive(Clone, Copy)]
struct Entry {
    row: u32,
    col: u32,
    val: f32,
}

const ENTRY_BYTES: usize = 12;

impl Entry {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.row.to_le_bytes());
        out.extend_from_slice(&self.col.to_le_bytes());
        out.extend_from_slice(&self.val.to_le_bytes());
    }

    fn get(b: &[u8]) -> Self {
        let w = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Entry {
            row: u32::from_le_bytes(w(0)),
            col: u32::from_le_bytes(w(4)),
            val: f32::from_le_bytes(w(8)),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Integer,
    Real,
    Pattern,
}

/// What the header says.
struct Header {
    field: Field,
    nrows: u64,
    ncols: u64,
    nnz: u64,
    /// Lines read so far (header, comments, size line).
    lines: u64,
}

fn bad(path: &Path, line: u64, msg: impl Into<String>) -> OomError {
    OomError::format(path, &format!("line {line}"), msg)
}

fn read_err(path: &Path, e: &std::io::Error) -> OomError {
    OomError::io(path, format!("cannot read (truncated or corrupt?): {e}"))
}

/// Parse the banner, comments and size line.
fn read_header(path: &Path, r: &mut impl BufRead) -> Result<Header> {
    let mut line = String::new();
    let mut n = 0u64;
    let mut next = |line: &mut String| -> Result<bool> {
        line.clear();
        n += 1;
        Ok(r.read_line(line).map_err(|e| read_err(path, &e))? > 0)
    };
    if !next(&mut line)? {
        return Err(bad(path, 1, "empty file, not MatrixMarket"));
    }
    let banner: Vec<String> = line
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    if banner.first().map(String::as_str) != Some("%%matrixmarket")
        || banner.len() != 5
        || banner[1] != "matrix"
    {
        return Err(bad(
            path,
            1,
            format!("not a MatrixMarket matrix header: {:?}", line.trim_end()),
        ));
    }
    if banner[2] != "coordinate" {
        return Err(bad(
            path,
            1,
            format!(
                "only 'coordinate' (sparse) MatrixMarket is supported, not '{}'",
                banner[2]
            ),
        ));
    }
    let field = match banner[3].as_str() {
        "integer" => Field::Integer,
        "real" | "double" => Field::Real,
        "pattern" => Field::Pattern,
        f => {
            return Err(bad(
                path,
                1,
                format!("unsupported MatrixMarket field '{f}' (integer, real or pattern)"),
            ))
        }
    };
    if banner[4] != "general" {
        return Err(bad(
            path,
            1,
            format!(
                "only 'general' MatrixMarket symmetry is supported, not '{}'",
                banner[4]
            ),
        ));
    }
    loop {
        if !next(&mut line)? {
            return Err(bad(path, n, "file ends before the size line"));
        }
        let t = line.trim();
        if t.is_empty() || t.starts_with('%') {
            continue;
        }
        let dims: Vec<u64> = t
            .split_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                bad(
                    path,
                    n,
                    format!("size line must be 3 non-negative integers, is {t:?}"),
                )
            })?;
        let [nrows, ncols, nnz] = dims[..] else {
            return Err(bad(
                path,
                n,
                format!("size line must be 3 non-negative integers, is {t:?}"),
            ));
        };
        if nrows > u64::from(u32::MAX) || ncols > u64::from(u32::MAX) {
            return Err(bad(path, n, format!("shape ({nrows}, {ncols}) too large")));
        }
        return Ok(Header {
            field,
            nrows,
            ncols,
            nnz,
            lines: n,
        });
    }
}

/// Open `path`, decompressing when it starts with the gzip magic bytes.
fn open_text(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let mut f = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => OomError::NotFound(path.display().to_string()),
        _ => OomError::io(path, format!("cannot open: {e}")),
    })?;
    if f.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(OomError::io(
            path,
            "is a directory, not a MatrixMarket file",
        ));
    }
    let mut magic = [0u8; 2];
    let gz = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    f.rewind().map_err(|e| read_err(path, &e))?;
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, f)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, f))
    })
}

/// How rows are split into buckets.
struct Buckets {
    rows_per: u64,
    n: u64,
}

impl Buckets {
    fn new(nrows: u64, nnz: u64, per_bucket: u64) -> Self {
        let n = nnz
            .div_ceil(per_bucket)
            .clamp(1, MAX_BUCKETS)
            .min(nrows.max(1));
        let rows_per = nrows.div_ceil(n).max(1);
        Buckets {
            rows_per,
            n: nrows.div_ceil(rows_per).max(1),
        }
    }

    fn of(&self, row: u32) -> usize {
        to_usize(u64::from(row) / self.rows_per)
    }
}

/// Read `r` in chunks of whole lines on a thread of its own.
fn chunks(
    path: &Path,
    mut r: Box<dyn BufRead + Send>,
) -> std::sync::mpsc::Receiver<Result<Vec<u8>>> {
    let (tx, rx) = sync_channel(2 * rayon::current_num_threads() + 2);
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut carry = Vec::new();
        loop {
            let mut buf = std::mem::take(&mut carry);
            let start = buf.len();
            buf.resize(start + CHUNK, 0);
            let mut filled = start;
            while filled < buf.len() {
                match r.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(k) => filled += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(read_err(&path, &e)));
                        return;
                    }
                }
            }
            buf.truncate(filled);
            let eof = filled == start;
            if eof {
                if !buf.is_empty() {
                    buf.push(b'\n');
                    let _ = tx.send(Ok(buf));
                }
                return;
            }
            if let Some(p) = buf.iter().rposition(|&c| c == b'\n') {
                carry = buf.split_off(p + 1);
                if tx.send(Ok(buf)).is_err() {
                    return;
                }
            } else {
                carry = buf; // a line longer than a chunk: read on
            }
        }
    });
    rx
}

/// The next `batch` chunks of text (fewer at the end; none when done).
fn next_batch(
    ctx: &Ctx,
    rx: &std::sync::mpsc::Receiver<Result<Vec<u8>>>,
    batch: usize,
) -> Result<Vec<Vec<u8>>> {
    ctx.check()?;
    rx.iter().take(batch).collect()
}

/// Sorted, duplicate-summed rows of one bucket: (entries per row, columns, values).
fn sort_bucket(bytes: &[u8], r0: u64, nrows: usize) -> (Vec<u64>, Vec<i32>, Vec<f32>) {
    let mut entries: Vec<Entry> = bytes.chunks_exact(ENTRY_BYTES).map(Entry::get).collect();
    // Stable: duplicates keep file order, so they are summed in that order.
    entries.sort_by_key(|e| (e.row, e.col));
    let mut counts = vec![0u64; nrows];
    let (mut cols, mut vals) = (
        Vec::with_capacity(entries.len()),
        Vec::with_capacity(entries.len()),
    );
    let mut last: Option<(u32, u32)> = None;
    for e in entries {
        if last == Some((e.row, e.col)) {
            *vals.last_mut().expect("a previous entry") += e.val;
            continue;
        }
        last = Some((e.row, e.col));
        counts[to_usize(u64::from(e.row) - r0)] += 1;
        // columns < 2^31 (checked by the caller)
        cols.push(e.col as i32);
        vals.push(e.val);
    }
    (counts, cols, vals)
}

/// Parse the MatrixMarket file at `path` into a CSR with float32 values
/// (as scanpy reads it). `transpose` gives the file's columns as rows
/// (10x's genes × cells files read as cells × genes).
pub fn read_mtx(ctx: &Ctx, path: &Path, transpose: bool) -> Result<StoredMatrix> {
    if let Some(m) = sorted::read_sorted(ctx, path, transpose)? {
        return Ok(m);
    }
    read_mtx_in(ctx, path, transpose, BUCKET_ENTRIES)
}

/// The text after the header, the header, and the result's (rows, columns).
#[allow(clippy::type_complexity)]
fn open_oriented(
    path: &Path,
    transpose: bool,
) -> Result<(Box<dyn BufRead + Send>, Header, u64, u64)> {
    let mut r = open_text(path)?;
    let h = read_header(path, &mut r)?;
    let (nrows, ncols) = if transpose {
        (h.ncols, h.nrows)
    } else {
        (h.nrows, h.ncols)
    };
    if ncols > i32::MAX as u64 {
        return Err(bad(
            path,
            h.lines,
            format!("{ncols} columns do not fit 32-bit indices"),
        ));
    }
    Ok((r, h, nrows, ncols))
}

/// [`read_mtx`] with row ranges sized for `per_bucket` entries.
fn read_mtx_in(ctx: &Ctx, path: &Path, transpose: bool, per_bucket: u64) -> Result<StoredMatrix> {
    let (r, h, nrows, ncols) = open_oriented(path, transpose)?;
    let buckets = Buckets::new(nrows, h.nnz, per_bucket);
    let io_err = spill_err;
    let mut spills: Vec<BufWriter<File>> = (0..buckets.n)
        .map(|_| spill_file().map(|f| BufWriter::with_capacity(1 << 16, f)))
        .collect::<Result<_>>()?;

    // Phase 1: parse in parallel, spill entries by row range.
    let rx = chunks(path, r);
    let (mut line, mut seen) = (h.lines, 0u64);
    let batch = 2 * rayon::current_num_threads();
    loop {
        let texts = next_batch(ctx, &rx, batch)?;
        if texts.is_empty() {
            break;
        }
        let parsed: Vec<_> = texts
            .par_iter()
            .map(|t| parse_chunk(t, &h, transpose, &buckets))
            .collect();
        for p in parsed {
            let p = p.map_err(|e| bad(path, line + e.line, e.msg))?;
            seen += p.entries;
            if seen > h.nnz {
                return Err(too_many(path, line + p.lines, h.nnz));
            }
            line += p.lines;
            for (w, bytes) in spills.iter_mut().zip(&p.by_bucket) {
                w.write_all(bytes).map_err(io_err)?;
            }
        }
    }
    if seen != h.nnz {
        return Err(too_few(path, line, h.nnz, seen));
    }

    // Phase 2: sort each bucket, append to the final arrays in row order.
    let mut files: Vec<File> = spills
        .into_iter()
        .map(|w| w.into_inner().map_err(|e| io_err(e.into_error())))
        .collect::<Result<_>>()?;
    let mut idx_out = BufWriter::with_capacity(1 << 20, spill_file()?);
    let mut val_out = BufWriter::with_capacity(1 << 20, spill_file()?);
    let mut indptr = Vec::with_capacity(to_usize(nrows) + 1);
    indptr.push(0u64);
    let threads = rayon::current_num_threads().max(1);
    for group in files
        .chunks_mut(threads)
        .enumerate()
        .map(|(g, fs)| (g * threads, fs))
    {
        let (first, fs) = group;
        let sorted: Vec<_> = fs
            .par_iter_mut()
            .enumerate()
            .map(|(k, f)| -> Result<_> {
                ctx.check()?;
                let mut bytes = Vec::new();
                f.rewind()
                    .and_then(|()| f.read_to_end(&mut bytes))
                    .map_err(io_err)?;
                let r0 = (first + k) as u64 * buckets.rows_per;
                let r1 = (r0 + buckets.rows_per).min(nrows);
                Ok(sort_bucket(&bytes, r0, to_usize(r1.saturating_sub(r0))))
            })
            .collect::<Result<_>>()?;
        for (counts, cols, vals) in sorted {
            for c in counts {
                indptr.push(indptr.last().expect("nonempty") + c);
            }
            idx_out
                .write_all(Values::I32(cols).bytes())
                .map_err(io_err)?;
            val_out
                .write_all(Values::F32(vals).bytes())
                .map_err(io_err)?;
        }
    }
    indptr.resize(to_usize(nrows) + 1, *indptr.last().expect("nonempty"));
    finish_csr(path, nrows, ncols, indptr, idx_out, val_out)
}

fn spill_err(e: std::io::Error) -> OomError {
    OomError::io(&spill_dir(), format!("cannot write a temp file: {e}"))
}

fn too_many(path: &Path, line: u64, announced: u64) -> OomError {
    bad(
        path,
        line,
        format!("more entries than the {announced} of the header"),
    )
}

fn too_few(path: &Path, line: u64, announced: u64, seen: u64) -> OomError {
    bad(
        path,
        line,
        format!("the header announces {announced} entries but the file has {seen} (truncated?)"),
    )
}

/// The CSR of `indptr` and the `indices`/`data` spill files being written.
fn finish_csr(
    path: &Path,
    nrows: u64,
    ncols: u64,
    indptr: Vec<u64>,
    idx_out: BufWriter<File>,
    val_out: BufWriter<File>,
) -> Result<StoredMatrix> {
    let nnz = *indptr.last().expect("nonempty");
    let raw = |w: BufWriter<File>, dtype| -> Result<RawArray1> {
        let file = w.into_inner().map_err(|e| spill_err(e.into_error()))?;
        Ok(RawArray1 {
            path: spill_dir(),
            file: Arc::new(file),
            len: nnz,
            dtype,
        })
    };
    let what = format!("MatrixMarket file '{}'", path.display());
    let store = CsrStore::new(
        nrows,
        ncols,
        indptr,
        Box::new(raw(idx_out, Dtype::I32)?),
        Box::new(raw(val_out, Dtype::F32)?),
        what,
    )?;
    Ok(StoredMatrix::from_csr(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn parses_unsorted_duplicates_and_transposes() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.mtx", "%%MatrixMarket matrix coordinate integer general\n% c\n3 2 4\n3 1 5\n1 2 1\n3 1 2\n2 2 7\n");
        let m = read_mtx(&Ctx::new(), &p, false).unwrap();
        let b = m.read_rows(&[0, 1, 2]).unwrap();
        let crate::block::Block::Csr(c) = b else {
            panic!("csr")
        };
        assert_eq!(c.indptr, vec![0, 1, 2, 3]);
        assert_eq!(c.indices, vec![1, 1, 0]);
        assert_eq!(c.data, Values::F32(vec![1.0, 7.0, 7.0]));
        let t = read_mtx(&Ctx::new(), &p, true).unwrap();
        assert_eq!((t.nrows, t.ncols), (2, 3));
    }

    /// Many buckets give the same CSR as one: rows split across buckets,
    /// duplicates summed, columns sorted whatever the entry order.
    #[test]
    fn bucket_count_does_not_change_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let mut text =
            String::from("%%MatrixMarket matrix coordinate integer general\n97 31 5000\n");
        let mut x = 12345u64;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            text += &format!(
                "{} {} {}\n",
                (x >> 33) % 97 + 1,
                (x >> 20) % 31 + 1,
                (x >> 50) % 9
            );
        }
        let p = write(dir.path(), "r.mtx", &text);
        let rows: Vec<u64> = (0..97).collect();
        let one = read_mtx_in(&Ctx::new(), &p, false, u64::MAX)
            .unwrap()
            .read_rows(&rows)
            .unwrap();
        let many = read_mtx_in(&Ctx::new(), &p, false, 100)
            .unwrap()
            .read_rows(&rows)
            .unwrap();
        assert_eq!(one, many);
        let crate::block::Block::Csr(c) = one else {
            panic!("csr")
        };
        assert!(c.indptr.windows(2).all(|w| w[0] <= w[1]));
        let rows_t: Vec<u64> = (0..31).collect();
        let t1 = read_mtx_in(&Ctx::new(), &p, true, u64::MAX)
            .unwrap()
            .read_rows(&rows_t)
            .unwrap();
        let t2 = read_mtx_in(&Ctx::new(), &p, true, 7)
            .unwrap()
            .read_rows(&rows_t)
            .unwrap();
        assert_eq!(t1, t2);
    }

    #[test]
    fn reports_the_line_of_bad_entries() {
        let dir = tempfile::tempdir().unwrap();
        let head = "%%MatrixMarket matrix coordinate real general\n2 2 2\n";
        for (body, needle) in [
            ("1 1 1.5\n3 1 2\n", "line 4"),
            ("1 1 x\n2 2 1\n", "line 3"),
            ("1 1 1\n", "announces 2"),
            ("1 1 1\n2 2 2\n1 2 3\n", "more entries"),
        ] {
            let p = write(dir.path(), "b.mtx", &format!("{head}{body}"));
            let e = read_mtx(&Ctx::new(), &p, false)
                .err()
                .expect("an error")
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
