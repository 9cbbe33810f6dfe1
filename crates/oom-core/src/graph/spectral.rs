//! Spectral initialisation of UMAP for one connected graph: the
//! eigenvectors of the normalised Laplacian `L = I − D^-½ A D^-½` with the
//! smallest eigenvalues after the trivial one (umap-learn's
//! `spectral_layout`, which calls ARPACK's `eigsh(which="SM")` or LOBPCG;
//! both stall at a million vertices).
//!
//! Here the same vectors are the top eigenvectors of the positive
//! semi-definite `M = (I + D^-½ A D^-½) / 2 = I − L/2`, found by the
//! thick-restart block Lanczos of [`crate::linalg::krylov`] with a fixed
//! budget of sparse products: deterministic for a seed, and it reports
//! whether it reached the tolerance so the caller can fall back. It runs
//! on the graph relabelled in breadth-first order ([`super::order`]), so
//! the sparse product reads neighbours' rows from a narrow window.

use faer::Mat;
use rayon::prelude::*;

use super::order::Relabeled;
use super::Csr;
use crate::ctx::Ctx;
use crate::linalg::eigh::fix_signs;
use crate::linalg::krylov::{top_eigs, KrylovOptions, SymOp};
use crate::{oom_ensure, Result};

/// Rows per parallel task of the sparse product.
const ROWS_PER_TASK: usize = 4096;

/// `M·Q` for the graph's `M = (I + D^-½ A D^-½) / 2`.
struct HalfShifted<'a> {
    ctx: &'a Ctx,
    g: Csr<'a>,
    inv_sqrt_deg: Vec<f64>,
    /// Row-major work buffers reused across products: fresh n × b
    /// buffers cost page faults (zeroing) on every product at 1M rows.
    y: Vec<f64>,
    out: Vec<f64>,
}

impl SymOp for HalfShifted<'_> {
    fn dim(&self) -> usize {
        self.g.n()
    }

    fn apply(&mut self, q: faer::MatRef<'_, f64>) -> Result<Mat<f64>> {
        self.ctx.check()?;
        let (n, b) = (q.nrows(), q.ncols());
        // D^-½ Q, row-major so each neighbour's row is one contiguous read
        let HalfShifted {
            ctx: _,
            g,
            inv_sqrt_deg,
            y,
            out,
        } = self;
        y.resize(n * b, 0.0);
        out.resize(n * b, 0.0);
        y.par_chunks_mut(b).enumerate().for_each(|(i, row)| {
            for (c, x) in row.iter_mut().enumerate() {
                *x = q[(i, c)] * inv_sqrt_deg[i];
            }
        });
        let y = &*y;
        out.par_chunks_mut(ROWS_PER_TASK * b)
            .enumerate()
            .for_each(|(t, chunk)| {
                for (r, row) in chunk.chunks_exact_mut(b).enumerate() {
                    let i = t * ROWS_PER_TASK + r;
                    row.fill(0.0);
                    for e in g.row(i) {
                        let j = g.indices[e] as usize;
                        let w = f64::from(g.data[e]);
                        for (o, x) in row.iter_mut().zip(&y[j * b..(j + 1) * b]) {
                            *o += w * x;
                        }
                    }
                    for (c, o) in row.iter_mut().enumerate() {
                        *o = 0.5 * (q[(i, c)] + *o * inv_sqrt_deg[i]);
                    }
                }
            });
        Ok(Mat::from_fn(n, b, |i, c| out[i * b + c]))
    }
}

/// The spectral layout of a connected graph: `dim` eigenvectors
/// (n × dim, row-major) and the relative residual reached.
pub struct Spectral {
    pub coords: Vec<f64>,
    pub residual: f64,
    pub converged: bool,
}

/// Eigenvectors 2..=dim+1 of `M` (the trivial first one, ∝ √degree, is
/// dropped as umap-learn does). `max_products` bounds the sparse products.
pub fn spectral_layout(
    ctx: &Ctx,
    g: &Csr<'_>,
    dim: usize,
    seed: u64,
    tol: f64,
    max_products: usize,
) -> Result<Spectral> {
    let n = g.n();
    oom_ensure!(
        n > dim + 1,
        Value,
        "spectral layout needs more than {} vertices, got {n}",
        dim + 1
    );
    let relabeled = Relabeled::new(g);
    let g = &relabeled.csr();
    let mut deg = vec![0.0f64; n];
    deg.par_iter_mut()
        .enumerate()
        .for_each(|(i, d)| *d = g.row(i).map(|e| f64::from(g.data[e])).sum());
    oom_ensure!(
        deg.iter().all(|&d| d > 0.0),
        Value,
        "spectral layout: the graph has an isolated vertex"
    );
    let inv_sqrt_deg = deg.iter().map(|d| 1.0 / d.sqrt()).collect();
    let k = dim + 1;
    let block = k + 1;
    let opts = KrylovOptions {
        k,
        block,
        max_basis: 5 * block,
        memory: 0,
        tol,
        max_applies: max_products,
        seed,
    };
    let mut op = HalfShifted {
        ctx,
        g: *g,
        inv_sqrt_deg,
        y: Vec::new(),
        out: Vec::new(),
    };
    let eigs = top_eigs(&mut op, &opts)?;
    let mut v = eigs.vectors.subcols(1, dim).to_owned();
    fix_signs(&mut v);
    let relabeled_coords: Vec<f64> = (0..n)
        .flat_map(|i| (0..dim).map(move |c| (i, c)))
        .map(|(i, c)| v[(i, c)])
        .collect();
    let mut coords = vec![0.0; n * dim];
    relabeled.to_old(&relabeled_coords, dim, &mut coords);
    Ok(Spectral {
        coords,
        residual: eigs.residual,
        converged: eigs.converged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring of `n` vertices: its Laplacian's eigenvectors 2 and 3 are
    /// cos and sin of the angle, so the layout is a circle.
    #[test]
    fn ring_becomes_a_circle() {
        let n = 60usize;
        let (mut indptr, mut indices, mut data) = (vec![0i64], vec![], vec![]);
        for i in 0..n {
            let mut nb = [((i + n - 1) % n) as u32, ((i + 1) % n) as u32];
            nb.sort_unstable();
            indices.extend(nb);
            data.extend([1.0f32, 1.0]);
            indptr.push(indices.len() as i64);
        }
        let g = Csr {
            indptr: &indptr,
            indices: &indices,
            data: &data,
        };
        let s = spectral_layout(&Ctx::new(), &g, 2, 0, 1e-6, 400).unwrap();
        let r: Vec<f64> = (0..n)
            .map(|i| s.coords[2 * i].hypot(s.coords[2 * i + 1]))
            .collect();
        let (lo, hi) = r
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(s.converged, "residual {}", s.residual);
        assert!(hi / lo < 1.01, "radii {lo}..{hi}");
        // deterministic for a seed
        assert_eq!(
            s.coords,
            spectral_layout(&Ctx::new(), &g, 2, 0, 1e-6, 400)
                .unwrap()
                .coords
        );
    }

    #[test]
    fn isolated_vertex_is_an_error() {
        let indptr = [0i64, 1, 2, 2, 3, 4];
        let indices = [1u32, 0, 4, 3];
        let data = [1.0f32; 4];
        let g = Csr {
            indptr: &indptr,
            indices: &indices,
            data: &data,
        };
        assert!(spectral_layout(&Ctx::new(), &g, 2, 0, 1e-4, 50).is_err());
    }
}
