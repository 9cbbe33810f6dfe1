//! kNN search and fuzzy connectivities against brute force.

use oom_core::graph::fuzzy::fuzzy_graph;
use oom_core::graph::knn::{knn, KnnOptions};
use oom_core::rng::Rng;
use oom_core::Ctx;

/// Points around a few centres, in `d` dimensions (a seeded cloud).
fn cloud(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    let centres: Vec<f64> = (0..8 * d).map(|_| 4.0 * r.normal()).collect();
    let mut x = Vec::with_capacity(n * d);
    for _ in 0..n {
        let c = usize::try_from(r.below(8)).unwrap();
        for j in 0..d {
            x.push((centres[c * d + j] + r.normal()) as f32);
        }
    }
    x
}

/// Exact neighbours by a direct loop: itself first, then (distance, index).
fn naive(x: &[f32], d: usize, k: usize) -> Vec<Vec<(f64, u32)>> {
    let n = x.len() / d;
    (0..n)
        .map(|i| {
            let mut all: Vec<(f64, u32)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let s: f64 = (0..d)
                        .map(|t| (f64::from(x[i * d + t]) - f64::from(x[j * d + t])).powi(2))
                        .sum();
                    (s, u32::try_from(j).unwrap())
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            all.truncate(k - 1);
            all
        })
        .collect()
}

#[test]
fn exact_path_equals_brute_force() {
    let (n, d, k) = (700, 12, 10);
    let x = cloud(n, d, 1);
    let g = knn(
        &Ctx::new(),
        &x,
        d,
        &KnnOptions {
            k,
            ..KnnOptions::default()
        },
    )
    .unwrap();
    let want = naive(&x, d, k);
    assert_eq!(want.len(), n);
    for (i, want_i) in want.iter().enumerate() {
        assert_eq!(g.indices[i * k] as usize, i);
        assert!(g.sqdist[i * k] == 0.0);
        for (t, &(s, j)) in want_i.iter().enumerate() {
            assert_eq!(g.indices[i * k + 1 + t], j, "row {i} rank {t}");
            assert!((g.sqdist[i * k + 1 + t] - s).abs() <= 1e-9 * s.max(1.0));
        }
    }
}

#[test]
fn ivf_path_recall_and_thread_independence() {
    let (n, d, k) = (4000, 16, 15);
    let x = cloud(n, d, 2);
    let o = KnnOptions {
        k,
        exact_max: 0,
        nlist: 40,
        nprobe: 3,
        ..KnnOptions::default()
    };
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| knn(&Ctx::new(), &x, d, &o).unwrap())
    };
    let g = run(2);
    assert_eq!(g, run(1));
    let want = naive(&x, d, k);
    let mut hit = 0usize;
    assert_eq!(want.len(), n);
    for (i, want_i) in want.iter().enumerate() {
        assert_eq!(g.indices[i * k] as usize, i);
        let row = &g.indices[i * k + 1..(i + 1) * k];
        hit += want_i.iter().filter(|p| row.contains(&p.1)).count();
    }
    let recall = hit as f64 / (n * (k - 1)) as f64;
    assert!(recall >= 0.95, "recall {recall}");
}

#[test]
fn bad_inputs_are_errors() {
    let x = cloud(50, 4, 3);
    assert!(knn(
        &Ctx::new(),
        &x,
        4,
        &KnnOptions {
            k: 1,
            ..KnnOptions::default()
        }
    )
    .is_err());
    assert!(knn(
        &Ctx::new(),
        &x,
        4,
        &KnnOptions {
            k: 51,
            ..KnnOptions::default()
        }
    )
    .is_err());
    let mut y = x.clone();
    y[17] = f32::NAN;
    assert!(knn(&Ctx::new(), &y, 4, &KnnOptions::default()).is_err());
    assert!(knn(&Ctx::new(), &x, 3, &KnnOptions::default()).is_err());
}

#[test]
fn fuzzy_graph_is_symmetric_without_self_loops() {
    let (n, d, k) = (300, 6, 8);
    let x = cloud(n, d, 4);
    let g = knn(
        &Ctx::new(),
        &x,
        d,
        &KnnOptions {
            k,
            ..KnnOptions::default()
        },
    )
    .unwrap();
    let dist: Vec<f32> = g.distances().iter().map(|&v| v as f32).collect();
    let f = fuzzy_graph(&Ctx::new(), &g.indices, &dist, k).unwrap();
    let get = |i: usize, j: i32| {
        let (a, b) = (
            usize::try_from(f.indptr[i]).unwrap(),
            usize::try_from(f.indptr[i + 1]).unwrap(),
        );
        f.indices[a..b]
            .iter()
            .position(|&c| c == j)
            .map(|p| f.data[a + p])
    };
    for i in 0..n {
        let (a, b) = (
            usize::try_from(f.indptr[i]).unwrap(),
            usize::try_from(f.indptr[i + 1]).unwrap(),
        );
        assert!(f.indices[a..b].windows(2).all(|w| w[0] < w[1]));
        for p in a..b {
            let j = f.indices[p];
            assert_ne!(usize::try_from(j).unwrap(), i);
            assert!(f.data[p] > 0.0 && f.data[p] <= 1.0 + 2.0 * f32::EPSILON);
            assert_eq!(
                get(usize::try_from(j).unwrap(), i32::try_from(i).unwrap()),
                Some(f.data[p])
            );
        }
        // the nearest neighbour has weight 1 (distance = rho), up to the
        // f32 rounding of 1 + b − b in the union
        let nn = i32::try_from(g.indices[i * k + 1]).unwrap();
        assert!((get(i, nn).unwrap() - 1.0).abs() <= 2.0 * f32::EPSILON);
    }
    assert!(fuzzy_graph(&Ctx::new(), &[0, 5], &[0.0, 1.0], 2).is_err());
}
