//! Corrupted files: flipping bytes anywhere in a valid file must give an
//! error or a (possibly different) matrix, never a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use oom_core::plan::View;
use oom_core::storage::{open_matrix, Container, H5File};

use crate::fixtures::{dense_matrix, write_sparse, Opts};

/// A small deterministic generator (xorshift) so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn read_all(path: &std::path::Path) -> oom_core::Result<()> {
    let f = H5File::open(path)?;
    f.ensure_anndata()?;
    let v = View::new(Arc::new(open_matrix(&f, "X")?));
    for (a, b) in v.blocks(64)? {
        v.read(a, b)?;
    }
    Ok(())
}

#[test]
fn flipped_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.h5ad");
    write_sparse(
        &good,
        &dense_matrix(120, 40),
        &Opts {
            csc: false,
            gzip: true,
            chunk: 32,
            indptr64: false,
        },
    );
    let bytes = std::fs::read(&good).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let bad = dir.path().join("bad.h5ad");
    for case in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..(1 + rng.next() % 8) {
            let at = usize::try_from(rng.next() % b.len() as u64).unwrap();
            b[at] ^= u8::try_from(1 + rng.next() % 255).unwrap();
        }
        std::fs::write(&bad, &b).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| read_all(&bad)));
        assert!(
            outcome.is_ok(),
            "case {case}: a corrupted file made the reader panic"
        );
    }
}

#[test]
fn truncation_at_every_tenth_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.h5ad");
    write_sparse(
        &good,
        &dense_matrix(300, 60),
        &Opts {
            csc: true,
            gzip: true,
            chunk: 50,
            indptr64: true,
        },
    );
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.h5ad");
    for k in 1..10 {
        std::fs::write(&cut, &bytes[..bytes.len() * k / 10]).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| read_all(&cut)));
        assert!(
            matches!(outcome, Ok(Err(_))),
            "cut at {k}/10 must fail cleanly"
        );
    }
}

/// Every seed of the fuzz corpus and every saved crasher (`fuzz/`) reads
/// without panicking; the seeds read without error.
#[test]
fn fuzz_corpus_and_regressions_never_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for (sub, must_read) in [("corpus/read_h5ad", true), ("regressions/read_h5ad", false)] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let outcome = catch_unwind(AssertUnwindSafe(|| read_all(&path)));
            match outcome {
                Ok(r) => assert!(!must_read || r.is_ok(), "{}: {:?}", path.display(), r.err()),
                Err(_) => panic!("{}: the reader panicked", path.display()),
            }
            n += 1;
        }
    }
    assert!(n >= 5, "fuzz corpus missing");
}

/// Sizes taken from a corrupt file must give an error, not an allocation
/// failure (which aborts the process): a huge number of columns.
#[test]
fn absurd_shape_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.h5ad");
    crate::fixtures::write_raw_csr(&p, (2, 1 << 45), &[0, 1, 1], &[0], &[1.0]);
    let f = H5File::open(&p).unwrap();
    assert!(open_matrix(&f, "X").is_err());
}
