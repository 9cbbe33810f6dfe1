//! An undirected weighted graph in CSR form, both directions stored, built
//! from a sparse adjacency (scipy CSR arrays) the way scanpy hands it to
//! igraph: every stored entry (i, j, w) is an undirected edge, so the graph
//! is A + Aᵀ, and a self-loop counts twice in its node's degree.
//! A symmetric A (scanpy's connectivities) is taken as is: A + Aᵀ = 2A
//! and modularity does not change when all weights are scaled.

use rayon::prelude::*;

use crate::error::Result;
use crate::{oom_bail, oom_ensure};

/// Weights are kept in the input's type (float32 for scanpy's graphs: 4
/// bytes less per stored entry); aggregated graphs hold float64 sums.
pub struct Graph<W = f64> {
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub weights: Vec<W>,
}

/// A weight type of the input arrays (scipy's float32 or float64 data).
pub trait Weight: Copy + Send + Sync + std::ops::AddAssign {
    const ZERO: Self;
    fn get(self) -> f64;
}
impl Weight for f32 {
    const ZERO: Self = 0.0;
    fn get(self) -> f64 {
        f64::from(self)
    }
}
impl Weight for f64 {
    const ZERO: Self = 0.0;
    fn get(self) -> f64 {
        self
    }
}

impl<W: Weight> Graph<W> {
    pub fn n(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Neighbours of `v` with edge weights (a self-loop appears once).
    pub fn row(&self, v: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let (a, b) = (self.indptr[v], self.indptr[v + 1]);
        self.indices[a..b]
            .iter()
            .map(|&u| u as usize)
            .zip(self.weights[a..b].iter().map(|w| w.get()))
    }

    /// Weighted degree of every node (row sums; the stored diagonal is the
    /// self-loop counted twice, as igraph's strength counts it).
    pub fn degrees(&self) -> Vec<f64> {
        (0..self.n())
            .into_par_iter()
            .map(|v| self.row(v).map(|(_, w)| w).sum())
            .collect()
    }

    /// The graph of `n × n` scipy CSR arrays. Checks the arrays (every bad
    /// value is a `Value`/`Index` error, never a panic) and drops explicit
    /// zeros as scanpy's `adjacency.nonzero()` does.
    pub fn from_csr(n: usize, indptr: &[i64], indices: &[i32], data: &[W]) -> Result<Self> {
        oom_ensure!(
            u32::try_from(n).is_ok(),
            Value,
            "the graph has {n} nodes; at most 2^32 - 1 are supported"
        );
        oom_ensure!(
            indptr.len() == n + 1,
            Value,
            "indptr has {} entries for {n} rows (expected {})",
            indptr.len(),
            n + 1
        );
        oom_ensure!(
            indices.len() == data.len(),
            Value,
            "indices ({}) and data ({}) differ in length",
            indices.len(),
            data.len()
        );
        oom_ensure!(indptr[0] == 0, Value, "indptr must start at 0");
        oom_ensure!(
            usize::try_from(indptr[n]).ok() == Some(indices.len()),
            Value,
            "indptr ends at {} but there are {} stored entries",
            indptr[n],
            indices.len()
        );
        if indptr.windows(2).any(|w| w[1] < w[0]) {
            oom_bail!(Value, "indptr is not non-decreasing");
        }
        if let Some(&j) = indices.par_iter().find_any(|&&j| j < 0 || j as usize >= n) {
            oom_bail!(
                Index,
                "column index {j} is out of range for a graph of {n} nodes"
            );
        }
        if let Some(w) = data
            .par_iter()
            .map(|w| w.get())
            .find_any(|w| !w.is_finite())
        {
            oom_bail!(Value, "the graph has a non-finite edge weight ({w})");
        }
        if let Some(w) = data.par_iter().map(|w| w.get()).find_any(|&w| w < 0.0) {
            oom_bail!(
                Value,
                "the graph has a negative edge weight ({w}); Leiden needs weights >= 0"
            );
        }
        let span = |i: usize| indptr[i] as usize..indptr[i + 1] as usize;
        let sorted = (0..n)
            .into_par_iter()
            .all(|i| indices[span(i)].windows(2).all(|w| w[0] < w[1]));
        let weight_at = |i: usize, j: usize| -> Option<f64> {
            let r = span(i);
            let k = indices[r.clone()].binary_search(&(j as i32)).ok()?;
            Some(data[r.start + k].get())
        };
        let symmetric = sorted
            && (0..n)
                .into_par_iter()
                .all(|i| span(i).all(|k| weight_at(indices[k] as usize, i) == Some(data[k].get())));
        if symmetric {
            Ok(Self::copy_nonzero(n, &span, indices, data))
        } else {
            Ok(Self::symmetrize(n, &span, indices, data))
        }
    }

    fn copy_nonzero(
        n: usize,
        span: &(impl Fn(usize) -> std::ops::Range<usize> + Sync),
        indices: &[i32],
        data: &[W],
    ) -> Self {
        let nnz = data.iter().filter(|w| w.get() != 0.0).count();
        let mut g = Graph {
            indptr: Vec::with_capacity(n + 1),
            indices: Vec::with_capacity(nnz),
            weights: Vec::with_capacity(nnz),
        };
        g.indptr.push(0);
        for i in 0..n {
            for k in span(i) {
                if data[k].get() != 0.0 {
                    g.indices.push(indices[k] as u32);
                    g.weights.push(data[k]);
                }
            }
            g.indptr.push(g.indices.len());
        }
        g
    }

    /// A + Aᵀ for an asymmetric (or unsorted) A: both directions of every
    /// entry are bucketed by row, then each row is sorted and duplicates summed.
    fn symmetrize(
        n: usize,
        span: &(impl Fn(usize) -> std::ops::Range<usize> + Sync),
        indices: &[i32],
        data: &[W],
    ) -> Self {
        let mut count = vec![0usize; n + 1];
        for i in 0..n {
            for k in span(i) {
                if data[k].get() != 0.0 {
                    count[i + 1] += 1;
                    let j = indices[k] as usize;
                    count[j + 1] += 1;
                }
            }
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        let total = count[n];
        let mut fill = count.clone();
        let mut pairs = vec![(0u32, W::ZERO); total];
        for i in 0..n {
            for k in span(i) {
                let w = data[k];
                if w.get() != 0.0 {
                    let j = indices[k] as usize;
                    pairs[fill[i]] = (j as u32, w);
                    fill[i] += 1;
                    pairs[fill[j]] = (i as u32, w);
                    fill[j] += 1;
                }
            }
        }
        drop(fill);
        let mut g = Graph {
            indptr: Vec::with_capacity(n + 1),
            indices: Vec::new(),
            weights: Vec::new(),
        };
        g.indptr.push(0);
        for i in 0..n {
            let row = &mut pairs[count[i]..count[i + 1]];
            row.sort_unstable_by_key(|p| p.0);
            for &(j, w) in row.iter() {
                if g.indices.len() > g.indptr[i] && *g.indices.last().expect("non-empty") == j {
                    *g.weights.last_mut().expect("non-empty") += w;
                } else {
                    g.indices.push(j);
                    g.weights.push(w);
                }
            }
            g.indptr.push(g.indices.len());
        }
        g
    }

    /// The graph of the `k` groups of `group` (`group[v] < k`): the weight
    /// between two groups is the sum over their members' edges, and a group's
    /// self-loop holds its internal weight (both directions), so every degree
    /// and the total weight are kept.
    pub fn aggregate(&self, group: &[u32], k: usize) -> Graph<f64> {
        let mut start = vec![0usize; k + 1];
        for &c in group {
            start[c as usize + 1] += 1;
        }
        for c in 0..k {
            start[c + 1] += start[c];
        }
        let mut members = vec![0u32; group.len()];
        let mut fill = start.clone();
        for (v, &c) in group.iter().enumerate() {
            members[fill[c as usize]] = v as u32;
            fill[c as usize] += 1;
        }
        let mut acc = vec![0f64; k];
        let mut seen = vec![false; k];
        let mut touched: Vec<u32> = Vec::new();
        let mut g = Graph {
            indptr: Vec::with_capacity(k + 1),
            indices: Vec::new(),
            weights: Vec::new(),
        };
        g.indptr.push(0);
        for c in 0..k {
            for &v in &members[start[c]..start[c + 1]] {
                for (u, w) in self.row(v as usize) {
                    let d = group[u];
                    if !seen[d as usize] {
                        seen[d as usize] = true;
                        touched.push(d);
                    }
                    acc[d as usize] += w;
                }
            }
            touched.sort_unstable();
            for &d in &touched {
                g.indices.push(d);
                g.weights.push(acc[d as usize]);
                acc[d as usize] = 0.0;
                seen[d as usize] = false;
            }
            touched.clear();
            g.indptr.push(g.indices.len());
        }
        g
    }
}
