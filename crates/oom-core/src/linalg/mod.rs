//! Dense linear algebra on small results: the PCA eigen-solvers.
//!
//! - [`eigh`]: full symmetric eigendecomposition (faer) of a p × p matrix.
//! - [`krylov`]: thick-restart block Lanczos for the top eigenpairs of a
//!   symmetric operator applied block-wise (in memory or by streaming X).
//! - [`pca`]: the PCA driver (exact Gram + eigh, or streamed Krylov) and
//!   the projection pass.

pub mod eigh;
pub mod krylov;
pub mod pca;
