//! Pass states: the states of consecutive row ranges, each folded alone,
//! combine into the state one pass folding the same runs makes (to the
//! bit), travel as checked bytes, and refuse to mix.

use std::sync::Arc;

use oom_core::block::Dtype;
use oom_core::kernels::gram::Precision;
use oom_core::kernels::moments::{moments, MomentParams};
use oom_core::kernels::qc::{count_above, positive_counts, qc_metrics, QcParams};
use oom_core::kernels::regress::regress_pass;
use oom_core::kernels::state::PassState;
use oom_core::linalg::pca::{gram_pass, project};
use oom_core::plan::{Design, View};
use oom_core::storage::origin::{Layout, Origin};
use oom_core::{Ctx, Result};

use crate::fixtures::{dense_matrix, write_sparse, Opts};

const ROWS: usize = 40;
const COLS: usize = 9;
const RUNS: u64 = 3;

fn view(dir: &tempfile::TempDir) -> View {
    let path = dir.path().join("x.h5ad");
    let o = Opts {
        csc: false,
        gzip: true,
        chunk: 7,
        indptr64: false,
    };
    write_sparse(&path, &dense_matrix(ROWS, COLS), &o);
    let origin = Origin::new(&path, "X", Layout::AnnData).unwrap();
    View::new(Arc::new(origin.open().unwrap()))
}

type Kernel = fn(&Ctx, &View, std::ops::Range<usize>) -> Result<PassState>;

/// Every pass kernel, as `oom.distributed` calls it on rows `r` of the view.
fn kernels() -> Vec<Kernel> {
    vec![
        |ctx, v, _| {
            let p = QcParams {
                top: vec![1, 3],
                masks: vec![(0..COLS).map(|c| c % 2 == 0).collect()],
            };
            let (rows, state) = qc_metrics(ctx, v, &p)?;
            Ok(PassState::Qc {
                rows,
                top: 2,
                masks: 1,
                state,
            })
        },
        |ctx, v, _| Ok(PassState::Positive(positive_counts(ctx, v)?)),
        |ctx, v, r| {
            let t: Vec<f64> = (0..ROWS).map(|i| (i % 4) as f64).collect();
            Ok(PassState::CountAbove(count_above(ctx, v, &t[r])?))
        },
        |ctx, v, r| {
            let p = MomentParams {
                groups: Some(Arc::new((r).map(|i| (i % 2) as u32).collect())),
                n_groups: 2,
                unmapped: true,
                ..Default::default()
            };
            let (moments, row_sum) = moments(ctx, v, &p)?;
            Ok(PassState::Moments { moments, row_sum })
        },
        |ctx, v, _| Ok(PassState::Gram(gram_pass(ctx, v, Precision::F32)?)),
        |ctx, v, r| {
            let design = Design::Dense {
                k: 2,
                values: Arc::new(r.flat_map(|i| [1.0, i as f64 * 0.25]).collect()),
            };
            Ok(PassState::Regress(regress_pass(ctx, v, &design)?))
        },
        |ctx, v, _| {
            let c = faer::Mat::from_fn(COLS, 2, |i, j| (i + j) as f64 * 0.1);
            Ok(PassState::Rows {
                ncols: 2,
                values: project(ctx, v, &c, None, Dtype::F32)?,
            })
        },
    ]
}

#[test]
fn combined_runs_are_the_one_pass_state() {
    let dir = tempfile::tempdir().unwrap();
    let v = view(&dir);
    for kernel in kernels() {
        let whole = kernel(&Ctx::new().with_runs(RUNS as usize), &v, 0..ROWS).unwrap();
        let parts: Vec<PassState> = v
            .runs(RUNS)
            .unwrap()
            .into_iter()
            .map(|(a, b)| {
                let rows: Vec<u64> = (a..b).collect();
                let sub = v.subset(Some(&rows), None).unwrap();
                kernel(&Ctx::new().with_runs(1), &sub, a as usize..b as usize).unwrap()
            })
            .collect();
        assert_eq!(parts.len(), RUNS as usize);
        let combined = PassState::combine(parts).unwrap();
        // the serialised payloads are equal exactly when every number is
        assert_eq!(
            combined.to_bytes().unwrap(),
            whole.to_bytes().unwrap(),
            "{}",
            whole.name()
        );
    }
}

#[test]
fn bytes_round_trip_and_damage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = view(&dir);
    for kernel in kernels() {
        let s = kernel(&Ctx::new(), &v, 0..ROWS).unwrap();
        let b = s.to_bytes().unwrap();
        assert_eq!(PassState::from_bytes(&b).unwrap().to_bytes().unwrap(), b);
        let mut bad = b.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        let e = PassState::from_bytes(&bad).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
        let e = PassState::from_bytes(&b[..5]).unwrap_err().to_string();
        assert!(e.contains("header"), "{e}");
    }
}

#[test]
fn states_of_other_kernels_or_shapes_do_not_combine() {
    let dir = tempfile::tempdir().unwrap();
    let v = view(&dir);
    let ctx = Ctx::new();
    let ks = kernels();
    let narrow = v.subset(None, Some(&[0, 1])).unwrap();
    for (i, a) in ks.iter().enumerate() {
        let b = ks[(i + 1) % ks.len()];
        let e = PassState::combine([a(&ctx, &v, 0..ROWS).unwrap(), b(&ctx, &v, 0..ROWS).unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot combine"), "{e}");
        // (a projection's width is its components', not the view's)
        if i + 1 < ks.len() {
            let w = [
                a(&ctx, &v, 0..ROWS).unwrap(),
                a(&ctx, &narrow, 0..ROWS).unwrap(),
            ];
            let e = PassState::combine(w).unwrap_err().to_string();
            assert!(e.contains("columns"), "{e}");
        }
    }
    assert!(PassState::combine([]).is_err());
}
