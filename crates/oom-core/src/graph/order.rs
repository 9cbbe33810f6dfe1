//! A cache-friendly relabelling of a graph's vertices for the UMAP layout
//! and its spectral initialisation.
//!
//! Both walk every vertex's edges and read the neighbour's row of a dense
//! n × d array. In the input order (cells as they came, often shuffled)
//! neighbours sit anywhere in that array: at a million vertices every
//! such read misses the core's cache, and the per-edge cost doubled from
//! 100k to 1M cells. Breadth-first order (Cuthill–McKee without the
//! degree sort) puts a vertex's neighbours in the previous, same or next
//! level, so the rows an edge loop reads are a narrow window of the array.
//! The relabelled graph is used internally and results are mapped back,
//! so callers see the input order.

use std::collections::VecDeque;

use super::Csr;

/// A graph with its vertices relabelled in breadth-first order.
pub struct Relabeled {
    /// `order[new] = old`.
    order: Vec<u32>,
    indptr: Vec<i64>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

/// Breadth-first order of all vertices (`order[new] = old`): each
/// component from its lowest unvisited vertex, neighbours in row order.
/// Deterministic, O(n + edges).
fn bfs_order(g: &Csr<'_>) -> Vec<u32> {
    let n = g.n();
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut queue = VecDeque::new();
    for root in 0..n {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        queue.push_back(root);
        while let Some(v) = queue.pop_front() {
            order.push(v as u32);
            for e in g.row(v) {
                let w = g.indices[e] as usize;
                if !seen[w] {
                    seen[w] = true;
                    queue.push_back(w);
                }
            }
        }
    }
    order
}

impl Relabeled {
    /// Relabel `g` (already validated) in breadth-first order; each row's
    /// edges are sorted by their new column.
    pub fn new(g: &Csr<'_>) -> Self {
        let order = bfs_order(g);
        let mut new_of = vec![0u32; g.n()];
        for (new, &old) in order.iter().enumerate() {
            new_of[old as usize] = new as u32;
        }
        let mut indptr = Vec::with_capacity(g.n() + 1);
        indptr.push(0i64);
        let (mut indices, mut data) = (
            Vec::with_capacity(g.indices.len()),
            Vec::with_capacity(g.data.len()),
        );
        let mut row = Vec::new();
        for &old in &order {
            row.clear();
            row.extend(
                g.row(old as usize)
                    .map(|e| (new_of[g.indices[e] as usize], g.data[e])),
            );
            row.sort_by_key(|&(j, _)| j);
            indices.extend(row.iter().map(|&(j, _)| j));
            data.extend(row.iter().map(|&(_, w)| w));
            indptr.push(indices.len() as i64);
        }
        Relabeled {
            order,
            indptr,
            indices,
            data,
        }
    }

    /// The relabelled graph.
    pub fn csr(&self) -> Csr<'_> {
        Csr {
            indptr: &self.indptr,
            indices: &self.indices,
            data: &self.data,
        }
    }

    /// The edge weights in the new order, to be transformed in place.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Rows (`dim` values each) of an n × dim row-major array in the new order.
    pub fn to_new<T: Copy>(&self, rows: &[T], dim: usize) -> Vec<T> {
        self.order
            .iter()
            .flat_map(|&old| &rows[old as usize * dim..(old as usize + 1) * dim])
            .copied()
            .collect()
    }

    /// Rows in the new order written back into the input order.
    pub fn to_old<T: Copy>(&self, rows: &[T], dim: usize, out: &mut [T]) {
        for (new, &old) in self.order.iter().enumerate() {
            out[old as usize * dim..(old as usize + 1) * dim]
                .copy_from_slice(&rows[new * dim..(new + 1) * dim]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shuffled path 0–…–n-1 plus a separate edge: BFS makes the path
    /// contiguous, and the relabelled graph is the same graph.
    #[test]
    fn relabelling_round_trips_and_makes_a_path_contiguous() {
        let n = 12usize;
        let label = |i: usize| (i * 3 + 7) % 10; // a permutation of the path's 10 vertices
        let mut rows: Vec<Vec<(u32, f32)>> = vec![vec![]; n];
        for i in 0..9 {
            let (a, b, w) = (label(i), label(i + 1), 1.0 + i as f32);
            rows[a].push((b as u32, w));
            rows[b].push((a as u32, w));
        }
        rows[10].push((11, 0.5));
        rows[11].push((10, 0.5));
        let (indptr, indices, data) = crate::graph::csr_from_rows(rows);
        let g = Csr {
            indptr: &indptr,
            indices: &indices,
            data: &data,
        };
        let r = Relabeled::new(&g);
        let h = r.csr();
        h.validate().unwrap();
        // same edges and weights under the relabelling
        let mut old_edges: Vec<(u32, u32, u32)> = (0..n)
            .flat_map(|v| {
                g.row(v)
                    .map(move |e| (v as u32, g.indices[e], g.data[e].to_bits()))
            })
            .collect();
        let mut new_edges: Vec<(u32, u32, u32)> = (0..n)
            .flat_map(|v| h.row(v).map(move |e| (v, e)))
            .map(|(v, e)| {
                (
                    r.order[v],
                    r.order[h.indices[e] as usize],
                    h.data[e].to_bits(),
                )
            })
            .collect();
        old_edges.sort_unstable();
        new_edges.sort_unstable();
        assert_eq!(old_edges, new_edges);
        // every path edge joins labels at most 2 apart (BFS from an inner vertex
        // alternates the two directions)
        for v in 0..10 {
            for e in h.row(v) {
                assert!(
                    (h.indices[e] as i64 - v as i64).abs() <= 2,
                    "{v} -> {}",
                    h.indices[e]
                );
            }
        }
        // rows round-trip exactly
        let x: Vec<f32> = (0..2 * n).map(|i| i as f32 * 0.25).collect();
        let mut back = vec![0.0f32; 2 * n];
        r.to_old(&r.to_new(&x, 2), 2, &mut back);
        assert_eq!(back, x);
    }
}
