//! Dense linear algebra on small results (PCA eigen-solvers).
