//! The lazy transforms and the preprocessing kernels over real files
//! (sparse and dense), against direct computations on the dense matrix.

#[allow(dead_code)]
#[path = "it/fixtures.rs"]
mod fixtures;

use oom_core::Ctx;
use std::sync::Arc;

use fixtures::{dense_matrix, write_dense, write_sparse, Opts};
use oom_core::block::Block;
use oom_core::kernels::moments::{moments, residual_variances, MomentParams, ResidualParams, SKIP};
use oom_core::kernels::qc::{qc_metrics, QcParams, RARE_KEEP};
use oom_core::plan::{Log1p, Normalize, Scale, View};
use oom_core::storage::{open_matrix, H5File};

const R: usize = 40;
const C: usize = 12;

fn views() -> (tempfile::TempDir, Vec<View>) {
    let dir = tempfile::tempdir().unwrap();
    let m = dense_matrix(R, C);
    let o = Opts {
        csc: false,
        gzip: true,
        chunk: 7,
        indptr64: false,
    };
    let mut out = Vec::new();
    for (name, sparse) in [("s.h5ad", true), ("d.h5ad", false)] {
        let p = dir.path().join(name);
        if sparse {
            write_sparse(&p, &m, &o);
        } else {
            write_dense(&p, &m, &o);
        }
        let f = H5File::open(&p).unwrap();
        out.push(View::new(Arc::new(open_matrix(&f, "X").unwrap())));
    }
    (dir, out)
}

fn to_rows(b: &Block) -> Vec<Vec<f64>> {
    (0..b.nrows())
        .map(|r| {
            let mut row = vec![0.0; b.ncols()];
            b.for_row(r, |c, v| row[c] = v);
            row
        })
        .collect()
}

#[test]
fn transform_chain_then_subset() {
    let m = dense_matrix(R, C);
    let div: Vec<f64> = (0..R).map(|r| 1.0 + r as f64 / 10.0).collect();
    let mean: Vec<f64> = (0..C).map(|c| c as f64 / 5.0).collect();
    let std: Vec<f64> = (0..C).map(|c| 0.5 + c as f64 / 7.0).collect();
    let f = |r: usize, c: usize| {
        let y = ((m[r][c] / div[r]) as f32 as f64).ln_1p() as f32 as f64;
        (((y - mean[c]) / std[c]).clamp(-2.0, 2.0)) as f32 as f64
    };
    for v in views().1 {
        let v = v
            .with_op(Normalize {
                divisor: Arc::new(div.clone()),
            })
            .with_op(Log1p { base: None })
            .with_op(Scale {
                mean: Arc::new(mean.clone()),
                std: Arc::new(std.clone()),
                zero_center: true,
                max_value: Some(2.0),
                mask: None,
            });
        assert!(!v.is_sparse());
        let rows = [39u64, 0, 5, 5, 17];
        let cols = [11u64, 2, 0, 0];
        let s = v.subset(Some(&rows), Some(&cols)).unwrap();
        let got = to_rows(&s.read(1, 5).unwrap());
        for (i, &r) in rows[1..5].iter().enumerate() {
            for (j, &c) in cols.iter().enumerate() {
                let want = f(r as usize, c as usize);
                assert!(
                    (got[i][j] - want).abs() < 1e-6,
                    "({r}, {c}): {} vs {want}",
                    got[i][j]
                );
            }
        }
    }
}

#[test]
fn qc_moments_residuals_match_direct() {
    let m = dense_matrix(R, C);
    let groups: Vec<u32> = (0..R as u32)
        .map(|r| if r % 5 == 0 { SKIP } else { r % 2 })
        .collect();
    for v in views().1 {
        let (rows, st) = qc_metrics(
            &Ctx::new(),
            &v,
            &QcParams {
                top: vec![1, 3],
                masks: vec![(0..C).map(|c| c < 4).collect()],
            },
        )
        .unwrap();
        for (r, row) in m.iter().enumerate() {
            let mut vals: Vec<f64> = row.iter().copied().filter(|&x| x != 0.0).collect();
            vals.sort_by(|a, b| b.total_cmp(a));
            assert_eq!(rows.total[r], row.iter().sum::<f64>());
            assert_eq!(rows.n_nonzero[r], vals.len() as u64);
            assert_eq!(rows.top_cum[2 * r + 1], vals.iter().take(3).sum::<f64>());
            assert_eq!(rows.mask_sum[r], row[..4].iter().sum::<f64>());
        }
        assert_eq!(st.cols.sum[3], (0..R).map(|r| m[r][3]).sum::<f64>());
        // each column's first non-zeros, in row order, across blocks and threads
        for c in 0..C {
            let first: Vec<(u64, f64)> = m
                .iter()
                .enumerate()
                .filter(|(_, row)| row[c] != 0.0)
                .map(|(r, row)| (r as u64, row[c]))
                .take(RARE_KEEP)
                .collect();
            let at = c * RARE_KEEP..c * RARE_KEEP + first.len();
            let kept: Vec<(u64, f64)> = st.rare.rows[at.clone()]
                .iter()
                .copied()
                .zip(st.rare.vals[at].iter().copied())
                .collect();
            assert_eq!(kept, first, "column {c}");
        }

        let p = MomentParams {
            groups: Some(Arc::new(groups.clone())),
            n_groups: 2,
            ..Default::default()
        };
        let (mo, row_sum) = moments(&Ctx::new(), &v, &p).unwrap();
        let (mean, var) = mo.finalize();
        for g in 0..2u32 {
            let sel: Vec<usize> = (0..R).filter(|&r| groups[r] == g).collect();
            let n = sel.len() as f64;
            // `c` is a column: it indexes every selected row of `m`, not one slice.
            #[allow(clippy::needless_range_loop)]
            for c in 0..C {
                let mu = sel.iter().map(|&r| m[r][c]).sum::<f64>() / n;
                let s2 = sel.iter().map(|&r| (m[r][c] - mu).powi(2)).sum::<f64>() / (n - 1.0);
                let k = g as usize * C + c;
                assert!((mean[k] - mu).abs() < 1e-12 && (var[k] - s2).abs() < 1e-9);
            }
        }

        let rp = ResidualParams {
            groups: Some(Arc::new(groups.clone())),
            n_groups: 2,
            row_sum: Arc::new(row_sum.clone()),
            col_sum: Arc::new(mo.sum.clone()),
            total: (0..2)
                .map(|g| mo.sum[g * C..(g + 1) * C].iter().sum())
                .collect(),
            theta: 100.0,
            clip: 3.0,
            f32_product: false,
        };
        let rv = residual_variances(&Ctx::new(), &v, &rp).unwrap();
        for g in 0..2usize {
            let sel: Vec<usize> = (0..R).filter(|&r| groups[r] == g as u32).collect();
            for c in 0..C {
                let gs = rp.col_sum[g * C + c];
                if gs == 0.0 {
                    assert_eq!(rv[g * C + c], 0.0);
                    continue;
                }
                let res: Vec<f64> = sel
                    .iter()
                    .map(|&r| {
                        let mu = gs * row_sum[r] / rp.total[g];
                        ((m[r][c] - mu) / (mu + mu * mu / 100.0).sqrt()).clamp(-3.0, 3.0)
                    })
                    .collect();
                let mm = res.iter().sum::<f64>() / res.len() as f64;
                let want = res.iter().map(|x| (x - mm).powi(2)).sum::<f64>() / res.len() as f64;
                // a cell without counts makes the residuals NaN, as in scanpy
                let ok = (rv[g * C + c] - want).abs() < 1e-12
                    || (want.is_nan() && rv[g * C + c].is_nan());
                assert!(ok, "{} vs {want}", rv[g * C + c]);
            }
        }
    }
}

#[test]
fn sliced_reads_are_reads_of_each_slice() {
    let (_dir, views) = views();
    let div: Vec<f64> = (0..R).map(|r| 1.0 + r as f64 / 10.0).collect();
    for v in views {
        let dense = !v.is_sparse();
        let rows: Vec<u64> = (0..R as u64).rev().step_by(2).collect();
        let v = v
            .with_op(Normalize {
                divisor: Arc::new(div.clone()),
            })
            .with_op(Log1p { base: None })
            .subset(Some(&rows), Some(&[11, 2, 3, 7]))
            .unwrap();
        let n = v.nrows();
        let mut seen = Vec::new();
        // A slice of 3 stored entries: most rows of the selection alone.
        v.read_sliced(2, n, 3, |a, b, block| {
            assert_eq!(to_rows(&block), to_rows(&v.read(a, b).unwrap()));
            seen.push((a, b));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.first().map(|s| s.0), Some(2));
        assert_eq!(seen.last().map(|s| s.1), Some(n));
        assert!(seen.windows(2).all(|w| w[0].1 == w[1].0));
        // Sparse rows come in several slices; a dense block in one.
        assert_eq!(seen.len() == 1, dense, "{seen:?}");
    }
}
