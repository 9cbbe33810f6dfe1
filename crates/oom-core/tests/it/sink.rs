//! The `.h5ad` sink: every view (CSR, dense, subsets, empty) written with
//! every compression reads back exactly through our reader, and the index
//! arrays follow the int32/int64 rule.

use std::path::Path;
use std::sync::Arc;

use oom_core::plan::View;
use oom_core::sink::{write_h5ad_matrix, Compression, H5adWriteOptions};
use oom_core::storage::{open_matrix, H5File};
use oom_core::{Ctx, OomError};

use crate::fixtures::{dense_matrix, write_dense, write_sparse, Opts};
use crate::io::to_dense;

/// A gzip source file with `chunk`-entry chunks (small ones put chunk
/// boundaries everywhere in a small matrix).
fn source(dir: &Path, kind: &str, m: &[Vec<f64>], chunk: usize) -> View {
    let path = dir.join(format!("src_{kind}.h5ad"));
    let o = Opts {
        csc: kind == "csc",
        gzip: true,
        chunk,
        indptr64: false,
    };
    if kind == "dense" {
        write_dense(&path, m, &o);
    } else {
        write_sparse(&path, m, &o);
    }
    open(&path, "X")
}

fn open(path: &Path, key: &str) -> View {
    let f = H5File::open(path).unwrap();
    View::new(Arc::new(open_matrix(&f, key).unwrap()))
}

fn options(compression: Compression, chunk: u64) -> H5adWriteOptions {
    H5adWriteOptions {
        compression,
        chunk,
        ..H5adWriteOptions::default()
    }
}

const COMPRESSIONS: [Compression; 4] = [
    Compression::None,
    Compression::Gzip(4),
    Compression::Gzip(0),
    Compression::Lzf,
];

#[test]
fn sink_round_trips_every_layout_and_compression() {
    let m = dense_matrix(41, 13);
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<u64> = vec![40, 0, 5, 5, 1, 17, 16, 2];
    let cols: Vec<u64> = vec![12, 0, 2, 7];
    for kind in ["csr", "csc", "dense"] {
        let src = source(dir.path(), kind, &m, 9);
        let sub = src.subset(Some(&rows), Some(&cols)).unwrap();
        let want_sub: Vec<Vec<f64>> = rows
            .iter()
            .map(|&r| cols.iter().map(|&c| m[r as usize][c as usize]).collect())
            .collect();
        for (i, c) in COMPRESSIONS.iter().enumerate() {
            for chunk in [7, 1 << 16] {
                let out = dir.path().join(format!("{kind}_{i}_{chunk}.h5ad"));
                let o = options(*c, chunk);
                write_h5ad_matrix(&Ctx::new(), &src, &out, "X", &o).unwrap();
                write_h5ad_matrix(&Ctx::new(), &sub, &out, "layers/sub", &o).unwrap();
                let back = open(&out, "X");
                assert_eq!(back.is_sparse(), kind != "dense", "{kind} {c:?}");
                assert_eq!(
                    to_dense(&back.read(0, 41).unwrap()),
                    m,
                    "{kind} {c:?} {chunk}"
                );
                let back = open(&out, "layers/sub");
                assert_eq!(
                    to_dense(&back.read(0, back.nrows()).unwrap()),
                    want_sub,
                    "{kind} {c:?} {chunk} subset"
                );
            }
        }
    }
}

#[test]
fn sink_writes_empty_matrices() {
    let dir = tempfile::tempdir().unwrap();
    let none: Vec<u64> = Vec::new();
    for kind in ["csr", "dense"] {
        let src = source(dir.path(), kind, &dense_matrix(10, 10), 9);
        for (rows, cols) in [
            (Some(&none), None),
            (None, Some(&none)),
            (Some(&none), Some(&none)),
        ] {
            let view = src
                .subset(rows.map(Vec::as_slice), cols.map(Vec::as_slice))
                .unwrap();
            let (r, c) = (view.nrows(), view.ncols());
            for (i, comp) in COMPRESSIONS.iter().enumerate() {
                let out = dir.path().join(format!("e{r}x{c}_{kind}_{i}.h5ad"));
                write_h5ad_matrix(&Ctx::new(), &view, &out, "X", &options(*comp, 7)).unwrap();
                let back = open(&out, "X");
                assert_eq!(
                    (back.nrows(), back.ncols(), back.is_sparse()),
                    (r, c, kind == "csr")
                );
                let block = back.read(0, r).unwrap();
                assert_eq!((block.nrows(), block.ncols()), (r as usize, c as usize));
            }
        }
    }
    // stored values all zero: empty data and indices, a full indptr
    let m = vec![vec![0.0; 6]; 9];
    let out = dir.path().join("nnz0.h5ad");
    let src = source(dir.path(), "csr", &m, 9);
    write_h5ad_matrix(
        &Ctx::new(),
        &src,
        &out,
        "X",
        &options(Compression::Gzip(4), 4),
    )
    .unwrap();
    assert_eq!(to_dense(&open(&out, "X").read(0, 9).unwrap()), m);
}

/// Byte width of each index array of the CSR group `key`.
fn index_widths(path: &Path, key: &str) -> (usize, usize) {
    let f = hdf5::File::open(path).unwrap();
    let width = |name: &str| {
        f.dataset(&format!("{key}/{name}"))
            .unwrap()
            .dtype()
            .unwrap()
            .size()
    };
    (width("indices"), width("indptr"))
}

#[test]
fn sink_index_width_rule() {
    let m = dense_matrix(20, 11);
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "csr", &m, 9);
    for (limit, want) in [
        (1 << 31, (4, 4)),
        (20 * 11 + 1, (4, 4)),
        (20 * 11, (4, 8)),
        (11, (8, 8)),
    ] {
        let out = dir.path().join(format!("idx{limit}.h5ad"));
        let o = H5adWriteOptions {
            compression: Compression::Lzf,
            chunk: 5,
            index32_limit: limit,
        };
        write_h5ad_matrix(&Ctx::new(), &src, &out, "X", &o).unwrap();
        assert_eq!(index_widths(&out, "X"), want, "limit {limit}");
        assert_eq!(to_dense(&open(&out, "X").read(0, 20).unwrap()), m);
    }
}

#[test]
fn sink_streams_many_blocks_in_order() {
    // about 4.5M stored values: more than one block of the driver
    let m = dense_matrix(4500, 3000);
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "csr", &m, 1 << 16);
    drop(m);
    assert!(src.blocks(oom_core::exec::BLOCK_TARGET).unwrap().len() > 1);
    // Whole chunks go straight from each block to the file, the rest through
    // the buffer: chunk sizes that do and do not divide a block, with and
    // without compression, give the same matrix.
    for (k, (compression, chunk)) in [
        (Compression::Gzip(1), 1 << 16),
        (Compression::None, 1 << 16),
        (Compression::None, 100_003),
        (Compression::Lzf, 4_099),
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.path().join(format!("big{k}.h5ad"));
        write_h5ad_matrix(&Ctx::new(), &src, &out, "X", &options(compression, chunk)).unwrap();
        let back = open(&out, "X");
        assert_eq!(
            back.read(0, 4500).unwrap(),
            src.read(0, 4500).unwrap(),
            "{compression:?} {chunk}"
        );
        // a row range that starts and ends inside chunks
        assert_eq!(
            back.read(1234, 3321).unwrap(),
            src.read(1234, 3321).unwrap()
        );
    }
}

#[test]
fn sink_bad_options_and_targets_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "csr", &dense_matrix(4, 3), 9);
    let out = dir.path().join("o.h5ad");
    for o in [
        options(Compression::None, 0),
        H5adWriteOptions {
            index32_limit: (1 << 31) + 1,
            ..H5adWriteOptions::default()
        },
    ] {
        assert!(matches!(
            write_h5ad_matrix(&Ctx::new(), &src, &out, "X", &o),
            Err(OomError::Value(_))
        ));
    }
    let o = H5adWriteOptions::default();
    assert!(matches!(
        write_h5ad_matrix(&Ctx::new(), &src, &out, "", &o),
        Err(OomError::Value(_))
    ));
    write_h5ad_matrix(&Ctx::new(), &src, &out, "X", &o).unwrap();
    assert!(matches!(
        write_h5ad_matrix(&Ctx::new(), &src, &out, "X", &o),
        Err(OomError::Io { .. })
    ));
    // the system's reason, for the directory (not the file name, a temp name in real use)
    let missing = dir.path().join("no").join("o.h5ad");
    match write_h5ad_matrix(&Ctx::new(), &src, &missing, "X", &o) {
        Err(OomError::Os { errno: 2, msg }) => {
            assert!(
                msg.contains("cannot write in") && msg.contains("No such file"),
                "{msg}"
            )
        }
        other => panic!("expected an OS error ENOENT, got {other:?}"),
    }
    assert!(Compression::from_h5py(Some("gzip"), Some(10)).is_err());
    assert!(Compression::from_h5py(Some("lzf"), Some(1)).is_err());
    assert!(Compression::from_h5py(Some("szip"), None).is_err());
    assert_eq!(
        Compression::from_h5py(Some("gzip"), None).unwrap(),
        Compression::Gzip(4)
    );
    assert_eq!(
        Compression::from_h5py(None, Some(3)).unwrap(),
        Compression::None
    );
}

#[test]
fn sink_counts_progress_and_honours_cancel() {
    let m = dense_matrix(41, 13);
    let dir = tempfile::tempdir().unwrap();
    let o = H5adWriteOptions::default();
    for kind in ["csr", "dense"] {
        let src = source(dir.path(), kind, &m, 9);
        let ctx = Ctx::new();
        write_h5ad_matrix(
            &ctx,
            &src,
            &dir.path().join(format!("p_{kind}.h5ad")),
            "X",
            &o,
        )
        .unwrap();
        assert_eq!(ctx.progress(), (41, 41));
        let stopped = Ctx::new();
        stopped.cancel();
        assert!(matches!(
            write_h5ad_matrix(
                &stopped,
                &src,
                &dir.path().join(format!("c_{kind}.h5ad")),
                "X",
                &o
            ),
            Err(OomError::Interrupted)
        ));
    }
}
