//! Neighbourhood graphs of an in-memory representation (e.g. `X_pca`):
//! the kNN search and UMAP's fuzzy connectivities, in scanpy's layout.
//!
//! - [`scan`]: GEMM distance blocks and per-query top-k lists.
//! - [`kmeans`]: the seeded coarse quantiser of the IVF search.
//! - [`knn`]: exact (small n) or IVF + neighbours-of-neighbours search.
//! - [`fuzzy`]: umap-learn's fuzzy simplicial set of a kNN graph.

pub mod fuzzy;
pub mod kmeans;
pub mod knn;
pub mod scan;
