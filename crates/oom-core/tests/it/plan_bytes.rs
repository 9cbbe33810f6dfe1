//! Plans as bytes: every op and source rebuilds into a view that reads the
//! same values, and damaged, foreign or stale plans are refused.

use std::path::Path;
use std::sync::Arc;

use oom_core::block::Dtype;
use oom_core::plan::{
    wire, Combat, Concat, ConcatPart, Design, Downsample, Log1p, Multiply, Normalize, Op, Pearson,
    Power, Regress, Scale, Sqrt, View,
};
use oom_core::storage::origin::{Layout, Origin};
use oom_core::storage::{open_matrix, H5File};
use oom_core::OomError;

use crate::fixtures::{dense_matrix, write_dense, write_sparse, Opts};
use crate::io::to_dense;

const ROWS: usize = 23;
const COLS: usize = 9;

fn stored(path: &Path, dense: bool) -> View {
    let o = Opts {
        csc: false,
        gzip: true,
        chunk: 5,
        indptr64: false,
    };
    let m = dense_matrix(ROWS, COLS);
    if dense {
        write_dense(path, &m, &o);
    } else {
        write_sparse(path, &m, &o);
    }
    let origin = Origin::new(path, "X", Layout::AnnData).unwrap();
    View::new(Arc::new(origin.open().unwrap()))
}

fn per_row(n: usize, f: impl Fn(usize) -> f64) -> Arc<Vec<f64>> {
    Arc::new((0..n).map(f).collect())
}

/// One op of every kind, with parameters for a view of `n` rows and `COLS` columns.
fn every_op(n: usize) -> Vec<Op> {
    let coef = |w: usize| {
        (0..w * COLS)
            .map(|i| (i % 5) as f64 * 0.1)
            .collect::<Vec<_>>()
    };
    let groups = Design::Groups {
        ngroups: 2,
        codes: Arc::new((0..n).map(|r| (r % 2) as u32).collect()),
    };
    let design = Design::Dense {
        k: 2,
        values: Arc::new((0..n).flat_map(|r| [1.0, r as f64 * 0.01]).collect()),
    };
    vec![
        Downsample {
            target: Arc::new((0..n).map(|r| (r % 4) as u64 * 3).collect()),
            key: Arc::new((0..n as u64).collect()),
            seed: 7,
            replace: false,
            always: false,
        }
        .into(),
        Normalize {
            divisor: per_row(n, |r| 1.0 + r as f64 / 7.0),
        }
        .into(),
        Log1p { base: Some(2.0) }.into(),
        Sqrt.into(),
        Power {
            p: 1.5,
            dtype: Dtype::F64,
        }
        .into(),
        Multiply {
            scalar: 2.0,
            row: Some(per_row(n, |r| 1.0 + (r % 3) as f64)),
            col: Some(per_row(COLS, |c| 0.5 + c as f64)),
            dtype: Dtype::F64,
        }
        .into(),
        Regress::new(groups, coef(2), Dtype::F64, n as u64, COLS as u64)
            .unwrap()
            .into(),
        Regress::new(design.clone(), coef(2), Dtype::F32, n as u64, COLS as u64)
            .unwrap()
            .into(),
        Combat {
            design,
            coef: Arc::new(coef(2)),
            batch: Arc::new((0..n).map(|r| (r % 3) as u32).collect()),
            n_batches: 3,
            sd: per_row(COLS, |c| 1.0 + c as f64),
            gamma: per_row(3 * COLS, |i| (i % 4) as f64 * 0.1),
            delta_sqrt: per_row(3 * COLS, |i| 1.0 + (i % 3) as f64 * 0.2),
        }
        .into(),
        Pearson::new(
            (0..n).map(|r| 5.0 + r as f64).collect(),
            (0..COLS).map(|c| 3.0 + c as f64).collect(),
            500.0,
            100.0,
            4.0,
            Dtype::F64,
            n as u64,
            COLS as u64,
        )
        .unwrap()
        .into(),
        Scale {
            mean: per_row(COLS, |c| c as f64 * 0.1),
            std: per_row(COLS, |c| 1.0 + c as f64),
            zero_center: true,
            max_value: Some(3.0),
            mask: Some(Arc::new((0..n).map(|r| r % 5 != 0).collect())),
        }
        .into(),
    ]
}

fn same(a: &View, b: &View, what: &str) {
    assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()), "{what}");
    assert_eq!(a.dtype(), b.dtype(), "{what}");
    assert_eq!(a.is_sparse(), b.is_sparse(), "{what}");
    let (x, y) = (a.read(0, a.nrows()).unwrap(), b.read(0, b.nrows()).unwrap());
    assert_eq!(x.dtype(), y.dtype(), "{what}");
    assert_eq!(to_dense(&x), to_dense(&y), "{what}");
}

fn round_trip(v: &View) -> View {
    wire::decode(&wire::encode(v).unwrap()).unwrap()
}

#[test]
fn every_op_and_selection_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for dense in [false, true] {
        let base = stored(&dir.path().join(format!("m{dense}.h5ad")), dense);
        let rows: Vec<u64> = vec![22, 0, 3, 3, 9, 1, 14];
        let cols: Vec<u64> = vec![8, 0, 2, 5, 6, 1, 3, 4, 7];
        for sel in [None, Some(&rows)] {
            let mut v = base.subset(sel.map(Vec::as_slice), None).unwrap();
            for op in every_op(v.nrows() as usize) {
                let name = op.name();
                v = v.with_op(op);
                let what = format!("dense={dense} rows={} after {name}", sel.is_some());
                same(&v, &round_trip(&v), &what);
            }
            // ops kept in output coordinates survive a later selection
            let sub = v.subset(Some(&[1, 0, 1]), Some(&cols)).unwrap();
            same(&sub, &round_trip(&sub), "subset after every op");
            let cast = sub.with_cast(Some(Dtype::F32));
            same(&cast, &round_trip(&cast), "cast");
            let cast_then_op = cast.with_op(Multiply {
                scalar: 3.0,
                row: None,
                col: None,
                dtype: Dtype::F64,
            });
            same(
                &cast_then_op,
                &round_trip(&cast_then_op),
                "cast, then an op",
            );
        }
    }
}

#[test]
fn concat_sources_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let a = stored(&dir.path().join("a.h5ad"), false);
    let b = stored(&dir.path().join("b.h5ad"), false)
        .subset(Some(&[4, 2]), Some(&[1, 0, 3]))
        .unwrap()
        .with_op(Log1p { base: None });
    for (sparse, fill) in [(true, 0.0), (true, 2.5), (false, f64::NAN)] {
        let parts = vec![
            ConcatPart {
                view: a.clone(),
                colmap: (0..COLS as i64).collect(),
            },
            ConcatPart {
                view: b.clone(),
                colmap: vec![2, -1, 10],
            },
        ];
        let stack = View::new(Concat::new(parts, 11, Dtype::F64, sparse, fill).unwrap());
        let v = stack.subset(Some(&[24, 0, 23]), None).unwrap();
        let back = round_trip(&v);
        assert_eq!(wire::encode(&back).unwrap(), wire::encode(&v).unwrap());
        if fill.is_nan() {
            // NaN fills compare by bits
            let bits = |v: &View| {
                to_dense(&v.read(0, v.nrows()).unwrap())
                    .concat()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&v), bits(&back));
        } else {
            same(&v, &back, &format!("concat sparse={sparse} fill={fill}"));
        }
    }
}

#[test]
fn an_op_after_a_cast_sees_the_cast_values() {
    let dir = tempfile::tempdir().unwrap();
    let halves = stored(&dir.path().join("m.h5ad"), true)
        .with_op(Multiply {
            scalar: 0.5,
            row: None,
            col: None,
            dtype: Dtype::F64,
        })
        .with_cast(Some(Dtype::I32));
    let v = halves.with_op(Normalize {
        divisor: per_row(ROWS, |_| 4.0),
    });
    // integers normalize to float32; the cast's truncation comes first
    assert_eq!(v.dtype(), Dtype::F32);
    let got = to_dense(&v.read(0, v.nrows()).unwrap());
    let want: Vec<Vec<f64>> = dense_matrix(ROWS, COLS)
        .iter()
        .map(|row| row.iter().map(|x| (x * 0.5).trunc() / 4.0).collect())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_cast_after_a_cast_keeps_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let v = stored(&dir.path().join("m.h5ad"), false)
        .with_op(Multiply {
            scalar: 0.5,
            row: None,
            col: None,
            dtype: Dtype::F64,
        })
        .with_cast(Some(Dtype::I32))
        .with_cast(Some(Dtype::F64));
    assert_eq!(v.dtype(), Dtype::F64);
    let got = to_dense(&v.read(0, v.nrows()).unwrap());
    let want: Vec<Vec<f64>> = dense_matrix(ROWS, COLS)
        .iter()
        .map(|row| row.iter().map(|x| (x * 0.5).trunc()).collect())
        .collect();
    assert_eq!(got, want);
    same(&v, &round_trip(&v), "two casts");
}

fn value_error(r: Result<View, OomError>) -> String {
    match r {
        Err(OomError::Value(msg)) => msg,
        Err(e) => panic!("expected a value error, got {e}"),
        Ok(_) => panic!("expected a value error, got a view"),
    }
}

#[test]
fn damaged_foreign_and_stale_plans_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.h5ad");
    let v = stored(&path, false).with_op(Sqrt);
    let bytes = wire::encode(&v).unwrap();

    assert!(value_error(wire::decode(b"")).contains("header"));
    assert!(value_error(wire::decode(b"PK\x03\x04 not a plan at all")).contains("header"));
    assert!(value_error(wire::decode(&bytes[..bytes.len() - 3])).contains("checksum"));
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    assert!(value_error(wire::decode(&flipped)).contains("checksum"));
    let mut future = bytes.clone();
    future[8] = 99;
    assert!(value_error(wire::decode(&future)).contains("format 99"));

    // the file replaced by one of another shape
    std::fs::remove_file(&path).unwrap();
    write_sparse(
        &path,
        &dense_matrix(ROWS + 1, COLS),
        &Opts {
            csc: false,
            gzip: false,
            chunk: 0,
            indptr64: false,
        },
    );
    assert!(value_error(wire::decode(&bytes)).contains("changed"));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(wire::decode(&bytes), Err(OomError::NotFound(_))));
}

#[test]
fn a_matrix_not_opened_from_a_file_has_no_plan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.h5ad");
    stored(&path, false);
    // opened without an origin, as the MatrixMarket spill files are
    let f = H5File::open(&path).unwrap();
    let v = View::new(Arc::new(open_matrix(&f, "X").unwrap()));
    match wire::encode(&v) {
        Err(OomError::Value(msg)) => assert!(msg.contains("temporary files"), "{msg}"),
        _ => panic!("expected a value error"),
    }
}
