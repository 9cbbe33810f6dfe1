//! The cell–cell graph: built from an in-memory representation (e.g.
//! `X_pca`) in scanpy's layout, and the algorithms on it
//! (`obsp['connectivities']`, a symmetric CSR matrix).
//!
//! - [`scan`]: GEMM distance blocks and per-query top-k lists.
//! - [`kmeans`]: the seeded coarse quantiser of the IVF search.
//! - [`knn`]: exact (small n) or IVF + neighbours-of-neighbours search.
//! - [`fuzzy`]: umap-learn's fuzzy simplicial set of a kNN graph.
//! - [`umap`], [`spectral`]: the UMAP layout and its spectral initialisation.
//! - [`order`]: the breadth-first relabelling both run on (cache locality).
//! - [`weighted`]: the undirected weighted graph (CSR) built from a scipy
//!   adjacency as scanpy builds igraph's, and its aggregation.
//! - [`leiden`]: Leiden community detection (modularity or CPM).

pub mod fuzzy;
pub mod kmeans;
pub mod knn;
pub mod leiden;
pub mod order;
pub mod scan;
pub mod spectral;
pub mod umap;
pub mod weighted;

/// A CSR adjacency matrix borrowed from the caller (scipy's layout).
#[derive(Clone, Copy)]
pub struct Csr<'a> {
    pub indptr: &'a [i64],
    pub indices: &'a [u32],
    pub data: &'a [f32],
}

impl Csr<'_> {
    pub fn n(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Check the structure before any loop trusts it.
    pub fn validate(&self) -> crate::Result<()> {
        let n = self.n();
        crate::oom_ensure!(!self.indptr.is_empty(), Value, "graph: indptr is empty");
        crate::oom_ensure!(self.indptr[0] == 0, Value, "graph: indptr must start at 0");
        crate::oom_ensure!(
            self.indptr.windows(2).all(|w| w[0] <= w[1]),
            Value,
            "graph: indptr must not decrease"
        );
        let nnz = usize::try_from(self.indptr[n]).unwrap_or(usize::MAX);
        crate::oom_ensure!(
            nnz == self.indices.len() && nnz == self.data.len(),
            Value,
            "graph: indptr ends at {nnz} but there are {} indices and {} weights",
            self.indices.len(),
            self.data.len()
        );
        crate::oom_ensure!(
            self.indices.iter().all(|&j| (j as usize) < n),
            Index,
            "graph: a column index is out of range"
        );
        crate::oom_ensure!(
            self.data.iter().all(|w| w.is_finite() && *w >= 0.0),
            Value,
            "graph: weights must be finite and non-negative"
        );
        Ok(())
    }

    /// Edge range of vertex `v`.
    pub fn row(&self, v: usize) -> std::ops::Range<usize> {
        let r = self.indptr[v] as usize..self.indptr[v + 1] as usize;
        r
    }
}

/// A CSR graph (`indptr`, `indices`, `data`) from per-row `(column, weight)`
/// lists, each row sorted by column.
#[cfg(test)]
pub(crate) fn csr_from_rows(mut rows: Vec<Vec<(u32, f32)>>) -> (Vec<i64>, Vec<u32>, Vec<f32>) {
    let (mut indptr, mut indices, mut data) = (vec![0i64], vec![], vec![]);
    for r in &mut rows {
        r.sort_by_key(|e| e.0);
        indices.extend(r.iter().map(|e| e.0));
        data.extend(r.iter().map(|e| e.1));
        indptr.push(i64::try_from(indices.len()).expect("fits"));
    }
    (indptr, indices, data)
}
