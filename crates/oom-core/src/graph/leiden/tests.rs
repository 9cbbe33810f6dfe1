//! Leiden against brute force: the move gain equals the change of
//! modularity computed from scratch, aggregation keeps every weight, and a
//! planted partition (stochastic block model) is found exactly.

use super::*;
use crate::ctx::Ctx;

/// A stochastic block model: `k` blocks of `size` nodes, edge probability
/// `p_in` inside a block and `p_out` between blocks, weights in (0.5, 1].
fn sbm(k: usize, size: usize, p_in: f64, p_out: f64, seed: u64) -> (Vec<i64>, Vec<i32>, Vec<f32>) {
    let n = k * size;
    let mut rng = Rng::new(seed);
    let mut rows: Vec<Vec<(i32, f32)>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in (i + 1)..n {
            let p = if i / size == j / size { p_in } else { p_out };
            if uniform(&mut rng) < p {
                let w = (0.5 + 0.5 * uniform(&mut rng)) as f32;
                rows[i].push((j as i32, w));
                rows[j].push((i as i32, w));
            }
        }
    }
    let mut indptr = vec![0i64];
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    for r in &mut rows {
        r.sort_by_key(|e| e.0);
        for &(j, w) in r.iter() {
            indices.push(j);
            data.push(w);
        }
        indptr.push(indices.len() as i64);
    }
    (indptr, indices, data)
}

fn graph(k: usize, size: usize, p_in: f64, p_out: f64, seed: u64) -> Graph<f32> {
    let (indptr, indices, data) = sbm(k, size, p_in, p_out, seed);
    Graph::from_csr(k * size, &indptr, &indices, &data).unwrap()
}

fn params(resolution: f64, seed: u64) -> LeidenParams {
    LeidenParams {
        resolution,
        objective: Objective::Modularity,
        beta: 0.01,
        n_iterations: -1,
        seed,
    }
}

#[test]
fn gain_matches_brute_force_modularity_change() {
    let g = graph(3, 12, 0.5, 0.1, 1);
    let degrees = g.degrees();
    let total: f64 = degrees.iter().sum();
    let mut rng = Rng::new(7);
    let membership: Vec<u32> = (0..g.n()).map(|_| rng.below(4) as u32).collect();
    for resolution in [1.0, 0.5, 2.0] {
        let gamma = resolution / total;
        let before = modularity(&g, &membership, resolution);
        for v in 0..g.n() {
            let old = membership[v];
            let mut a = [0f64; 4];
            let mut w = [0f64; 4];
            for u in 0..g.n() {
                if u != v {
                    a[membership[u] as usize] += degrees[u];
                }
            }
            for (u, x) in g.row(v) {
                if u != v {
                    w[membership[u] as usize] += x;
                }
            }
            for c in 0..4u32 {
                let mut moved = membership.clone();
                moved[v] = c;
                let brute = modularity(&g, &moved, resolution) - before;
                let o = old as usize;
                let formula = 2.0
                    * (gain(w[c as usize], degrees[v], a[c as usize], gamma)
                        - gain(w[o], degrees[v], a[o], gamma))
                    / total;
                assert!(
                    (brute - formula).abs() < 1e-12,
                    "v={v} c={c}: brute {brute} formula {formula}"
                );
            }
        }
    }
}

#[test]
fn aggregation_keeps_total_weight_degrees_and_modularity() {
    let g = graph(4, 10, 0.4, 0.05, 2);
    let mut rng = Rng::new(3);
    let group: Vec<u32> = (0..g.n()).map(|_| rng.below(7) as u32).collect();
    let k = 7;
    let agg = g.aggregate(&group, k);
    let total = |d: Vec<f64>| d.iter().sum::<f64>();
    assert!((total(g.degrees()) - total(agg.degrees())).abs() < 1e-9);
    let deg = g.degrees();
    let agg_deg = agg.degrees();
    assert_eq!(agg_deg.len(), k);
    for (c, got) in agg_deg.iter().enumerate() {
        let want: f64 = (0..g.n())
            .filter(|&v| group[v] as usize == c)
            .map(|v| deg[v])
            .sum();
        assert!((got - want).abs() < 1e-9);
    }
    // A partition of the groups has the same modularity on both graphs.
    let of_group: Vec<u32> = (0..k as u32).map(|c| c % 3).collect();
    let lifted: Vec<u32> = group.iter().map(|&c| of_group[c as usize]).collect();
    assert!((modularity(&g, &lifted, 1.0) - modularity(&agg, &of_group, 1.0)).abs() < 1e-12);
}

#[test]
fn asymmetric_input_becomes_a_plus_a_transpose() {
    // 0→1 (2.0), 1→0 (1.0), 2→0 (3.0), self-loop 1 (0.5), an explicit zero 2→1.
    let indptr = [0i64, 1, 3, 5];
    let indices = [1i32, 0, 1, 0, 1];
    let data = [2.0f64, 1.0, 0.5, 3.0, 0.0];
    let g = Graph::from_csr(3, &indptr, &indices, &data).unwrap();
    let rows: Vec<Vec<(usize, f64)>> = (0..3).map(|v| g.row(v).collect()).collect();
    assert_eq!(rows[0], vec![(1, 3.0), (2, 3.0)]);
    assert_eq!(rows[1], vec![(0, 3.0), (1, 1.0)]);
    assert_eq!(rows[2], vec![(0, 3.0)]);
}

#[test]
fn bad_arrays_are_errors() {
    let bad = |indptr: &[i64], indices: &[i32], data: &[f64]| {
        Graph::from_csr(2, indptr, indices, data).is_err()
    };
    assert!(bad(&[0, 1], &[1], &[1.0]));
    assert!(bad(&[0, 1, 1], &[2], &[1.0]));
    assert!(bad(&[0, 1, 1], &[-1], &[1.0]));
    assert!(bad(&[0, 1, 1], &[1], &[-1.0]));
    assert!(bad(&[0, 1, 1], &[1], &[f64::NAN]));
    assert!(bad(&[0, 2, 1], &[1], &[1.0]));
    assert!(bad(&[0, 1, 2], &[1], &[1.0]));
    let g = Graph::from_csr(2, &[0, 1, 2], &[1, 0], &[1.0f64, 1.0]).unwrap();
    assert!(leiden(&Ctx::new(), &g, &params(-1.0, 0)).is_err());
}

#[test]
fn planted_blocks_are_recovered_exactly() {
    let (k, size) = (5, 40);
    let g = graph(k, size, 0.3, 0.01, 4);
    for seed in [0, 1, 2] {
        let r = leiden(&Ctx::new(), &g, &params(1.0, seed)).unwrap();
        assert_eq!(r.n_clusters, k);
        for b in 0..k {
            let c = r.membership[b * size];
            assert!(r.membership[b * size..(b + 1) * size]
                .iter()
                .all(|&x| x == c));
        }
        let planted: Vec<u32> = (0..k * size).map(|v| (v / size) as u32).collect();
        assert!((r.quality - modularity(&g, &planted, 1.0)).abs() < 1e-12);
    }
}

#[test]
fn same_seed_same_labels_and_sizes_descend() {
    let g = graph(6, 30, 0.15, 0.03, 5);
    let a = leiden(&Ctx::new(), &g, &params(1.0, 11)).unwrap();
    let b = leiden(&Ctx::new(), &g, &params(1.0, 11)).unwrap();
    assert_eq!(a.membership, b.membership);
    let mut size = vec![0usize; a.n_clusters];
    for &c in &a.membership {
        size[c as usize] += 1;
    }
    assert!(size.windows(2).all(|w| w[0] >= w[1]));
}

#[test]
fn communities_are_connected_and_locally_optimal() {
    let g = graph(5, 30, 0.12, 0.04, 6);
    let r = leiden(&Ctx::new(), &g, &params(1.0, 9)).unwrap();
    // Leiden's guarantee: every community is connected.
    for c in 0..r.n_clusters as u32 {
        let nodes: Vec<usize> = (0..g.n()).filter(|&v| r.membership[v] == c).collect();
        let mut seen = vec![false; g.n()];
        let mut stack = vec![nodes[0]];
        seen[nodes[0]] = true;
        let mut reached = 0;
        while let Some(v) = stack.pop() {
            reached += 1;
            for (u, _) in g.row(v) {
                if !seen[u] && r.membership[u] == c {
                    seen[u] = true;
                    stack.push(u);
                }
            }
        }
        assert_eq!(reached, nodes.len(), "community {c} is disconnected");
    }
    // No single node move improves modularity.
    let q = modularity(&g, &r.membership, 1.0);
    for v in 0..g.n() {
        for c in 0..=r.n_clusters as u32 {
            let mut m = r.membership.clone();
            m[v] = c;
            assert!(modularity(&g, &m, 1.0) <= q + 1e-12);
        }
    }
}

#[test]
fn isolated_nodes_and_empty_graph() {
    // Two triangles and two isolated nodes.
    let indptr = [0i64, 2, 4, 6, 8, 10, 12, 12, 12];
    let indices = [1i32, 2, 0, 2, 0, 1, 4, 5, 3, 5, 3, 4];
    let data = [1.0f32; 12];
    let g = Graph::from_csr(8, &indptr, &indices, &data).unwrap();
    let r = leiden(&Ctx::new(), &g, &params(1.0, 0)).unwrap();
    assert_eq!(r.n_clusters, 4);
    assert_eq!(&r.membership[..6], &[0, 0, 0, 1, 1, 1]);
    let empty = Graph::from_csr(3, &[0i64, 0, 0, 0], &[], &[] as &[f32]).unwrap();
    assert_eq!(
        leiden(&Ctx::new(), &empty, &params(1.0, 0))
            .unwrap()
            .n_clusters,
        3
    );
}
