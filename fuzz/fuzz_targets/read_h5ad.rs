//! Fuzz target: arbitrary bytes as an `.h5ad` file. Opening it and reading
//! every block of X (header parsing, indptr/indices validation, chunk
//! decoding, CSC transposition) must return Ok or Err, never panic, abort or
//! hang.
#![no_main]

use std::io::Write;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use oom_core::plan::View;
use oom_core::storage::array::Array1;
use oom_core::storage::{open_matrix, Container, H5File};

/// Work a tiny input may legitimately ask for is capped: a few KB can
/// declare a huge matrix whose chunks are unwritten (read as zeros), and
/// indptr is held in memory by design. Such inputs are skipped rather than
/// reported as timeouts or out-of-memory.
const MAX_ROWS: u64 = 1 << 20;
const MAX_VALUES: u64 = 1 << 24;

fn too_big(f: &H5File, key: &str) -> bool {
    if let Ok(ptr) = f.array1(&format!("{key}/indptr")) {
        return ptr.len() > MAX_ROWS + 1;
    }
    match f.dense(key) {
        Ok(d) => d.nrows > MAX_ROWS || d.nrows.saturating_mul(d.ncols) > MAX_VALUES,
        Err(_) => false,
    }
}

fn read_all(path: &std::path::Path) -> oom_core::Result<()> {
    let f = H5File::open(path)?;
    f.ensure_anndata()?;
    for key in ["X", "layers/counts", "raw/X"] {
        if too_big(&f, key) {
            continue;
        }
        let Ok(m) = open_matrix(&f, key) else { continue };
        if m.stored_nnz().unwrap_or(0) > MAX_VALUES || m.nrows > MAX_ROWS || m.ncols > MAX_ROWS {
            continue;
        }
        let v = View::new(Arc::new(m));
        for (a, b) in v.blocks(256)?.into_iter().take(256) {
            v.read(a, b)?;
        }
        // Row subsets in a scrambled order (the gather path).
        let n = v.nrows();
        if n > 0 {
            let rows: Vec<u64> = (0..n.min(64)).map(|i| (i * 7919) % n).collect();
            v.subset(Some(&rows), None)?.read(0, rows.len() as u64)?;
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    // One temp file per process, rewritten for every input.
    thread_local! {
        static FILE: tempfile::NamedTempFile = tempfile::NamedTempFile::new().expect("temp file");
    }
    FILE.with(|t| {
        let mut f = std::fs::File::create(t.path()).expect("rewrite temp file");
        f.write_all(data).expect("write input");
        drop(f);
        let _ = read_all(t.path());
    });
});
