//! Reading stored matrices: every storage variant against the matrix that
//! was written, every row/column selection form, and malformed input.

use std::sync::Arc;

use oom_core::block::Block;
use oom_core::plan::View;
use oom_core::storage::{open_matrix, Container, H5File};
use oom_core::OomError;

use crate::fixtures::{dense_matrix, write_dense, write_raw_csr, write_sparse, Opts};

pub fn to_dense(b: &Block) -> Vec<Vec<f64>> {
    let mut out = vec![vec![0.0; b.ncols()]; b.nrows()];
    for (r, row) in out.iter_mut().enumerate() {
        b.for_row(r, |c, v| row[c] += v);
    }
    out
}

fn open(path: &std::path::Path) -> View {
    let f = H5File::open(path).unwrap();
    View::new(Arc::new(open_matrix(&f, "X").unwrap()))
}

fn variants() -> Vec<(&'static str, Opts, bool)> {
    vec![
        (
            "csr",
            Opts {
                csc: false,
                gzip: false,
                chunk: 0,
                indptr64: false,
            },
            false,
        ),
        (
            "csr_gzip_small_chunks",
            Opts {
                csc: false,
                gzip: true,
                chunk: 7,
                indptr64: true,
            },
            false,
        ),
        (
            "csc_gzip",
            Opts {
                csc: true,
                gzip: true,
                chunk: 16,
                indptr64: false,
            },
            false,
        ),
        (
            "csc",
            Opts {
                csc: true,
                gzip: false,
                chunk: 0,
                indptr64: true,
            },
            false,
        ),
        (
            "dense",
            Opts {
                csc: false,
                gzip: false,
                chunk: 0,
                indptr64: false,
            },
            true,
        ),
        (
            "dense_gzip_chunked",
            Opts {
                csc: false,
                gzip: true,
                chunk: 5,
                indptr64: false,
            },
            true,
        ),
    ]
}

#[test]
fn every_layout_reads_back_exactly() {
    let m = dense_matrix(23, 17);
    let dir = tempfile::tempdir().unwrap();
    for (name, o, dense) in variants() {
        let p = dir.path().join(format!("{name}.h5ad"));
        if dense {
            write_dense(&p, &m, &o)
        } else {
            write_sparse(&p, &m, &o)
        }
        let v = open(&p);
        assert_eq!((v.nrows(), v.ncols()), (23, 17), "{name}");
        assert_eq!(to_dense(&v.read(0, 23).unwrap()), m, "{name}: whole read");
        // Every block split must give the same rows.
        for (a, b) in v.blocks(10).unwrap() {
            assert_eq!(
                to_dense(&v.read(a, b).unwrap()),
                m[a as usize..b as usize].to_vec(),
                "{name}: block {a}..{b}"
            );
        }
    }
}

#[test]
fn selections_match_fancy_indexing() {
    let m = dense_matrix(30, 12);
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<u64> = vec![29, 0, 5, 5, 1, 17, 16, 2];
    let cols: Vec<u64> = vec![11, 3, 3, 0, 2];
    for (name, o, dense) in variants() {
        let p = dir.path().join(format!("{name}.h5ad"));
        if dense {
            write_dense(&p, &m, &o)
        } else {
            write_sparse(&p, &m, &o)
        }
        let v = open(&p).subset(Some(&rows), Some(&cols)).unwrap();
        let want: Vec<Vec<f64>> = rows
            .iter()
            .map(|&r| cols.iter().map(|&c| m[r as usize][c as usize]).collect())
            .collect();
        assert_eq!(to_dense(&v.read(0, v.nrows()).unwrap()), want, "{name}");
        // Increasing rows with gaps (what a filter leaves) take the no-gather path.
        let kept: Vec<u64> = (0..30).filter(|r| r % 7 != 3).collect();
        let f = open(&p).subset(Some(&kept), None).unwrap();
        let want_kept: Vec<Vec<f64>> = kept.iter().map(|&r| m[r as usize].clone()).collect();
        assert_eq!(
            to_dense(&f.read(0, f.nrows()).unwrap()),
            want_kept,
            "{name}: filtered rows"
        );
        for (a, b) in f.blocks(5).unwrap() {
            assert_eq!(
                to_dense(&f.read(a, b).unwrap()),
                want_kept[a as usize..b as usize].to_vec(),
                "{name}: filtered block {a}..{b}"
            );
        }
        // No rows at all is an empty block, not one row.
        let none = open(&p).subset(Some(&[]), None).unwrap();
        assert_eq!(none.read(0, 0).unwrap().nrows(), 0, "{name}: no rows");
        // A subset of a subset composes.
        let vv = v.subset(Some(&[3, 0]), Some(&[4, 0])).unwrap();
        let want2 = vec![vec![want[3][4], want[3][0]], vec![want[0][4], want[0][0]]];
        assert_eq!(to_dense(&vv.read(0, 2).unwrap()), want2, "{name}: nested");
        // Columns of a CSR block come out sorted even for unsorted selections.
        if let Block::Csr(c) = v.read(0, v.nrows()).unwrap() {
            for r in 0..c.nrows {
                let (a, b) = c.row_range(r);
                assert!(
                    c.indices[a..b].windows(2).all(|w| w[0] < w[1]),
                    "{name}: row {r} sorted"
                );
            }
        }
    }
}

#[test]
fn out_of_range_selection_is_an_index_error() {
    let m = dense_matrix(4, 3);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.h5ad");
    write_sparse(
        &p,
        &m,
        &Opts {
            csc: false,
            gzip: false,
            chunk: 0,
            indptr64: false,
        },
    );
    let v = open(&p);
    assert!(matches!(
        v.subset(Some(&[4]), None),
        Err(OomError::Index(_))
    ));
    assert!(matches!(
        v.subset(None, Some(&[3])),
        Err(OomError::Index(_))
    ));
}

#[test]
fn unsorted_and_duplicate_entries_are_canonicalised() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dup.h5ad");
    // Row 0: columns 2, 0, 2 (duplicate); row 1: empty; row 2: column 1.
    write_raw_csr(
        &p,
        (3, 3),
        &[0, 3, 3, 4],
        &[2, 0, 2, 1],
        &[1.0, 2.0, 3.0, 4.0],
    );
    let b = open(&p).read(0, 3).unwrap();
    let Block::Csr(c) = &b else { panic!("sparse") };
    assert_eq!(c.indices, vec![0, 2, 1]);
    assert_eq!(
        to_dense(&b),
        vec![vec![2.0, 0.0, 4.0], vec![0.0; 3], vec![0.0, 4.0, 0.0]]
    );
}

#[test]
fn malformed_structure_gives_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = |name: &str, ptr: &[i64], idx: &[i32], data: &[f32]| {
        let p = dir.path().join(name);
        write_raw_csr(&p, (2, 3), ptr, idx, data);
        let h = H5File::open(&p).unwrap();
        open_matrix(&h, "X").map(|m| View::new(Arc::new(m)))
    };
    // indptr too short for the shape.
    assert!(matches!(
        f("short.h5ad", &[0, 1], &[0], &[1.0]),
        Err(OomError::Corrupt(_))
    ));
    // indptr decreasing.
    assert!(matches!(
        f("dec.h5ad", &[0, 2, 1], &[0, 1], &[1.0, 1.0]),
        Err(OomError::Corrupt(_))
    ));
    // indptr beyond the data.
    assert!(matches!(
        f("long.h5ad", &[0, 1, 5], &[0], &[1.0]),
        Err(OomError::Corrupt(_))
    ));
    // A column index out of range fails when the block is read.
    let v = f("oob.h5ad", &[0, 1, 2], &[0, 7], &[1.0, 1.0]).unwrap();
    assert!(matches!(v.read(0, 2), Err(OomError::Corrupt(_))));
}

#[test]
fn non_hdf5_inputs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        H5File::open(&dir.path().join("missing.h5ad")),
        Err(OomError::NotFound(_))
    ));
    assert!(matches!(H5File::open(dir.path()), Err(OomError::Io { .. })));
    let empty = dir.path().join("empty.h5ad");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(H5File::open(&empty), Err(OomError::Io { .. })));
    let junk = dir.path().join("junk.h5ad");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    assert!(matches!(H5File::open(&junk), Err(OomError::Io { .. })));
    // A valid file cut in half.
    let full = dir.path().join("full.h5ad");
    write_sparse(
        &full,
        &dense_matrix(200, 50),
        &Opts {
            csc: false,
            gzip: true,
            chunk: 64,
            indptr64: false,
        },
    );
    let bytes = std::fs::read(&full).unwrap();
    let half = dir.path().join("half.h5ad");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let res = H5File::open(&half).and_then(|h| {
        let m = open_matrix(&h, "X")?;
        View::new(Arc::new(m)).read(0, 200).map(|_| ())
    });
    assert!(
        matches!(
            res,
            Err(OomError::Io { .. } | OomError::Format { .. } | OomError::Value(_))
        ),
        "{res:?}"
    );
}

#[test]
fn hdf5_without_anndata_is_a_format_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("other.h5");
    let f = hdf5::File::create(&p).unwrap();
    f.new_dataset_builder()
        .with_data(&[1.0f64, 2.0])
        .create("values")
        .unwrap();
    drop(f);
    let h = H5File::open(&p).unwrap();
    assert!(matches!(h.ensure_anndata(), Err(OomError::Format { .. })));
}
