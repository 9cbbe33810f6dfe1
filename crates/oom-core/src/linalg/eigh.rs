//! Symmetric eigendecomposition of a small dense matrix with faer, and the
//! deterministic sign convention of PCA loadings.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{self_adjoint_evd, self_adjoint_evd_scratch, ComputeEigenvectors};
use faer::{Mat, MatRef, Par};

use crate::error::{OomError, Result};

/// The `k` largest eigenpairs of the symmetric `a` (only its lower
/// triangle is read), eigenvalues in decreasing order, eigenvectors as the
/// columns of a p × k matrix. Parallel (rayon) for large matrices only:
/// small ones run on the calling thread (no spinning worker barriers).
pub fn top_eigh(a: MatRef<'_, f64>, k: usize) -> Result<(Vec<f64>, Mat<f64>)> {
    let p = a.nrows();
    let k = k.min(p);
    if a.col_iter().any(|c| c.iter().any(|x| !x.is_finite())) {
        return Err(OomError::Value(
            "the covariance matrix has NaN or infinite entries (does the data contain NaN or inf?)"
                .into(),
        ));
    }
    let par = if p >= 1024 { Par::rayon(0) } else { Par::Seq };
    let mut s = Diag::<f64>::zeros(p);
    let mut u = Mat::<f64>::zeros(p, p);
    let scratch =
        self_adjoint_evd_scratch::<f64>(p, ComputeEigenvectors::Yes, par, Default::default());
    self_adjoint_evd(
        a,
        s.as_mut(),
        Some(u.as_mut()),
        par,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    )
    .map_err(|e| OomError::Value(format!("eigendecomposition did not converge: {e:?}")))?;
    let s = s.column_vector();
    // faer sorts ascending: take the last k, reversed.
    let values: Vec<f64> = (0..k).map(|i| s[p - 1 - i]).collect();
    let vectors = Mat::from_fn(p, k, |r, c| u[(r, p - 1 - c)]);
    Ok((values, vectors))
}

/// Flip each column so that its largest-|value| entry is positive (the
/// first such entry on ties), making loadings independent of the solver.
pub fn fix_signs(v: &mut Mat<f64>) {
    for j in 0..v.ncols() {
        let col = v.col_as_slice_mut(j);
        let mut best = 0.0f64;
        let mut sign = 1.0;
        for &x in col.iter() {
            if x.abs() > best {
                best = x.abs();
                sign = x.signum();
            }
        }
        if sign < 0.0 {
            col.iter_mut().for_each(|x| *x = -*x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_pairs_of_a_known_matrix() {
        // Diagonal plus a rank-one bump: eigenvalues known.
        let p = 6;
        let a = Mat::from_fn(p, p, |i, j| if i == j { (i + 1) as f64 } else { 0.0 });
        let (vals, mut vecs) = top_eigh(a.as_ref(), 3).unwrap();
        assert_eq!(vals, vec![6.0, 5.0, 4.0]);
        fix_signs(&mut vecs);
        for (c, row) in [5usize, 4, 3].iter().enumerate() {
            assert!((vecs[(*row, c)] - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn signs_are_deterministic() {
        let mut v = Mat::from_fn(3, 2, |i, j| [[0.1, -0.9], [-0.5, 0.2], [0.3, 0.1]][i][j]);
        fix_signs(&mut v);
        assert!(v[(1, 0)] > 0.0 && v[(0, 1)] > 0.0);
    }
}
