//! Row concatenation: parts that keep no column are not read.

use std::path::Path;
use std::sync::Arc;

use oom_core::block::Dtype;
use oom_core::plan::{Concat, ConcatPart, View};
use oom_core::storage::origin::{Layout, Origin};

use crate::fixtures::{dense_matrix, write_sparse, Opts};
use crate::io::to_dense;

fn stored(path: &Path, rows: usize, cols: usize) -> View {
    let o = Opts {
        csc: false,
        gzip: true,
        chunk: 4,
        indptr64: false,
    };
    write_sparse(path, &dense_matrix(rows, cols), &o);
    let origin = Origin::new(path, "X", Layout::AnnData).unwrap();
    View::new(Arc::new(origin.open().unwrap()))
}

#[test]
fn a_part_keeping_no_column_gives_fill_rows_without_reading() {
    let dir = tempfile::tempdir().unwrap();
    let kept = stored(&dir.path().join("kept.h5ad"), 5, 3);
    let gone_path = dir.path().join("gone.h5ad");
    let gone = stored(&gone_path, 4, 6);
    // the stand-in's data is destroyed: reading it now fails
    std::fs::File::create(&gone_path).unwrap();
    assert!(gone.read(0, 4).is_err(), "the truncated file still reads");
    for (sparse, fill) in [(true, 0.0), (true, 2.5), (false, 0.0), (false, f64::NAN)] {
        let parts = vec![
            ConcatPart {
                view: kept.clone(),
                colmap: vec![0, 1, 2],
            },
            ConcatPart {
                view: gone.clone(),
                colmap: vec![-1; 6],
            },
        ];
        let stack = View::new(Concat::new(parts, 3, Dtype::F64, sparse, fill).unwrap());
        let got = to_dense(&stack.read(0, 9).unwrap());
        let want = to_dense(&kept.read(0, 5).unwrap());
        assert_eq!(got[..5], want[..], "sparse={sparse} fill={fill}");
        for row in &got[5..] {
            for &v in row {
                assert!(v == fill || (v.is_nan() && fill.is_nan()), "{v} != {fill}");
            }
        }
        let rows = to_dense(
            &stack
                .subset(Some(&[7, 1, 8]), None)
                .unwrap()
                .read(0, 3)
                .unwrap(),
        );
        assert_eq!(rows[1], want[1]);
        assert_eq!(rows[0].len(), 3);
    }
}
