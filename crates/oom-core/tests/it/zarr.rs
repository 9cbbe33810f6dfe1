//! Zarr stores: every stored layout written by our streaming writer (v2,
//! v3, v3 sharded; chunks smaller than a block) reads back exactly.

use oom_core::Ctx;
use std::path::Path;
use std::sync::Arc;

use oom_core::plan::View;
use oom_core::sink::zarr::{write_matrix, ZarrFormat, ZarrWriteOptions};
use oom_core::storage::zarr::ZarrStore;
use oom_core::storage::{open_matrix, open_store, H5File};
use oom_core::OomError;

use crate::fixtures::{dense_matrix, write_dense, write_sparse, Opts};
use crate::io::to_dense;

fn root_group(root: &Path, format: ZarrFormat) {
    std::fs::create_dir_all(root).unwrap();
    match format {
        ZarrFormat::V2 => std::fs::write(root.join(".zgroup"), r#"{"zarr_format": 2}"#).unwrap(),
        ZarrFormat::V3 => {
            std::fs::write(
                root.join("zarr.json"),
                r#"{"zarr_format": 3, "node_type": "group"}"#,
            )
            .unwrap();
        }
    }
}

fn layouts() -> Vec<ZarrWriteOptions> {
    vec![
        ZarrWriteOptions {
            format: ZarrFormat::V2,
            chunk: 7,
            shard: None,
        },
        ZarrWriteOptions {
            format: ZarrFormat::V3,
            chunk: 7,
            shard: None,
        },
        ZarrWriteOptions {
            format: ZarrFormat::V3,
            chunk: 5,
            shard: Some(3),
        },
        ZarrWriteOptions {
            format: ZarrFormat::V3,
            chunk: 1 << 20,
            shard: None,
        },
    ]
}

#[test]
fn written_stores_read_back_exactly() {
    let m = dense_matrix(41, 13);
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<u64> = vec![40, 0, 5, 5, 1, 17, 16, 2];
    for kind in ["csr", "csc", "dense"] {
        let h5 = dir.path().join(format!("{kind}.h5ad"));
        let o = Opts {
            csc: kind == "csc",
            gzip: true,
            chunk: 9,
            indptr64: false,
        };
        if kind == "dense" {
            write_dense(&h5, &m, &o)
        } else {
            write_sparse(&h5, &m, &o)
        }
        let f = H5File::open(&h5).unwrap();
        let src = View::new(Arc::new(open_matrix(&f, "X").unwrap()));
        for (i, opts) in layouts().iter().enumerate() {
            let root = dir.path().join(format!("{kind}_{i}.zarr"));
            root_group(&root, opts.format);
            write_matrix(&Ctx::new(), &src, &root, "X", opts).unwrap();
            let store = open_store(&root).unwrap();
            store.ensure_anndata().unwrap();
            let v = View::new(Arc::new(open_matrix(&*store, "X").unwrap()));
            assert_eq!(v.is_sparse(), kind != "dense", "{kind} {opts:?}");
            assert_eq!(to_dense(&v.read(0, 41).unwrap()), m, "{kind} {opts:?}");
            for (a, b) in v.blocks(10).unwrap() {
                assert_eq!(
                    to_dense(&v.read(a, b).unwrap()),
                    m[a as usize..b as usize].to_vec()
                );
            }
            let sel = v.subset(Some(&rows), None).unwrap();
            let want: Vec<Vec<f64>> = rows.iter().map(|&r| m[r as usize].clone()).collect();
            assert_eq!(
                to_dense(&sel.read(0, sel.nrows()).unwrap()),
                want,
                "{kind} {opts:?} rows"
            );
        }
    }
}

#[test]
fn bad_options_and_stores_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("a.h5ad");
    write_sparse(
        &h5,
        &dense_matrix(4, 3),
        &Opts {
            csc: false,
            gzip: false,
            chunk: 0,
            indptr64: false,
        },
    );
    let f = H5File::open(&h5).unwrap();
    let v = View::new(Arc::new(open_matrix(&f, "X").unwrap()));
    let root = dir.path().join("o.zarr");
    root_group(&root, ZarrFormat::V2);
    for opts in [
        ZarrWriteOptions {
            format: ZarrFormat::V2,
            chunk: 4,
            shard: Some(2),
        },
        ZarrWriteOptions {
            format: ZarrFormat::V3,
            chunk: 0,
            shard: None,
        },
    ] {
        assert!(matches!(
            write_matrix(&Ctx::new(), &v, &root, "X", &opts),
            Err(OomError::Value(_))
        ));
    }
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    assert!(matches!(ZarrStore::open(&plain), Err(OomError::Io { .. })));
    assert!(matches!(
        ZarrStore::open(&dir.path().join("missing")),
        Err(OomError::NotFound(_))
    ));
}
