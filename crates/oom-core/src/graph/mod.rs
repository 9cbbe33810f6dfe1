//! Graph algorithms on the kNN graph of cells (scanpy's `obsp` matrices).
//!
//! - [`weighted`]: the undirected weighted graph (CSR) built from a scipy
//!   adjacency as scanpy builds igraph's, and its aggregation.
//! - [`leiden`]: Leiden community detection (modularity or CPM).

pub mod leiden;
pub mod weighted;
