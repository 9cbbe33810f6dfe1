//! Top eigenpairs of a symmetric positive semi-definite operator `A` that is
//! only available block-wise (`A·Q` for a p × b block `Q`), e.g. `XᵀX`
//! applied by streaming X: thick-restart block Lanczos with full
//! reorthogonalisation and Rayleigh–Ritz after every application.
//!
//! References: Wu & Simon (2000), "Thick-restart Lanczos method for large
//! symmetric eigenvalue problems" (SIAM J. Matrix Anal. Appl. 22(2));
//! Musco & Musco (2015), "Randomized block Krylov methods for stronger and
//! faster approximate singular value decomposition" (NeurIPS).
//!
//! Every application of `A` costs one pass over the data, so the basis `K`
//! and `A·K` are both kept (no extra pass for Rayleigh–Ritz or residuals).
//! Iteration stops when every wanted Ritz pair has a residual
//! `‖A·v − θ·v‖ ≤ tol·θ₁`, which bounds the angle to the true eigenvector
//! by `tol·θ₁ / gap`.

use faer::linalg::matmul::matmul;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::eigh::top_eigh;

/// Basis products run as row panels on the rayon pool, each panel a
/// sequential faer GEMM (faer's own parallel GEMM spins its workers at
/// barriers, which costs more than it saves for these thin products).
const PAR: Par = Par::Seq;

/// Rows per panel of the parallel thin products.
const PANEL: usize = 2048;

/// `dst = beta·dst + alpha·lhs·rhs` with `lhs` tall (p × m), split by rows.
fn mul_tall(
    dst: MatMut<'_, f64>,
    beta: Accum,
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    alpha: f64,
) {
    let p = lhs.nrows();
    if p * lhs.ncols() * rhs.ncols() < (1 << 22) {
        matmul(dst, beta, lhs, rhs, alpha, PAR);
        return;
    }
    row_panels(dst).into_par_iter().for_each(|(r0, d)| {
        let h = d.nrows();
        matmul(d, beta, lhs.subrows(r0, h), rhs, alpha, PAR);
    });
}

/// Row panels of `m` ([`PANEL`] rows each), with their first row.
fn row_panels(m: MatMut<'_, f64>) -> Vec<(usize, MatMut<'_, f64>)> {
    let mut panels = Vec::new();
    let (mut rest, mut start) = (m, 0);
    while rest.nrows() > 0 {
        let h = PANEL.min(rest.nrows());
        let (top, bottom) = rest.split_at_row_mut(h);
        panels.push((start, top));
        rest = bottom;
        start += h;
    }
    panels
}

/// `a[:, ..keep] = a[:, ..m] · rot` (`keep = rot.ncols()`) in place: each
/// row's new values depend only on its old ones, so it goes panel by panel
/// with one panel-sized temporary instead of a p × keep one (at a million
/// rows the restart's two copies were 176 MB). Same panels and products as
/// [`mul_tall`], so the same numbers.
fn rotate_in_place(a: MatMut<'_, f64>, m: usize, rot: MatRef<'_, f64>) {
    let (p, keep) = (a.nrows(), rot.ncols());
    if p * m * keep < (1 << 22) {
        let mut tmp = Mat::zeros(p, keep);
        matmul(
            tmp.as_mut(),
            Accum::Replace,
            a.rb().subcols(0, m),
            rot,
            1.0,
            PAR,
        );
        a.subcols_mut(0, keep).copy_from(&tmp);
        return;
    }
    row_panels(a).into_par_iter().for_each(|(_, d)| {
        let mut tmp = Mat::zeros(d.nrows(), keep);
        matmul(
            tmp.as_mut(),
            Accum::Replace,
            d.rb().subcols(0, m),
            rot,
            1.0,
            PAR,
        );
        d.subcols_mut(0, keep).copy_from(&tmp);
    });
}

/// `lhsᵀ·rhs` for tall `lhs` (p × m) and `rhs` (p × b): partial products
/// over row panels, summed in panel order (deterministic).
fn mul_tn(lhs: MatRef<'_, f64>, rhs: MatRef<'_, f64>) -> Mat<f64> {
    let (p, m, b) = (lhs.nrows(), lhs.ncols(), rhs.ncols());
    let mut out = Mat::zeros(m, b);
    if p * m * b < (1 << 22) {
        matmul(out.as_mut(), Accum::Replace, lhs.transpose(), rhs, 1.0, PAR);
        return out;
    }
    let starts: Vec<usize> = (0..p).step_by(4 * PANEL).collect();
    let parts: Vec<Mat<f64>> = starts
        .par_iter()
        .map(|&r0| {
            let h = (4 * PANEL).min(p - r0);
            let mut c = Mat::zeros(m, b);
            matmul(
                c.as_mut(),
                Accum::Replace,
                lhs.subrows(r0, h).transpose(),
                rhs.subrows(r0, h),
                1.0,
                PAR,
            );
            c
        })
        .collect();
    for c in &parts {
        out += c;
    }
    out
}
use crate::error::Result;
use crate::rng::Rng;

/// A symmetric operator applied to blocks of vectors.
pub trait SymOp {
    /// Dimension p of the operator.
    fn dim(&self) -> usize;
    /// `A·q` for a p × b block `q`.
    fn apply(&mut self, q: MatRef<'_, f64>) -> Result<Mat<f64>>;
}

/// A dense symmetric matrix as an operator (only for tests and for
/// eigenpairs of a large in-memory covariance).
pub struct DenseOp<'a>(pub MatRef<'a, f64>);

impl SymOp for DenseOp<'_> {
    fn dim(&self) -> usize {
        self.0.nrows()
    }

    fn apply(&mut self, q: MatRef<'_, f64>) -> Result<Mat<f64>> {
        let mut out = Mat::zeros(self.0.nrows(), q.ncols());
        matmul(out.as_mut(), Accum::Replace, self.0, q, 1.0, Par::rayon(0));
        Ok(out)
    }
}

#[derive(Debug, Clone)]
pub struct KrylovOptions {
    /// Wanted eigenpairs.
    pub k: usize,
    /// Block size (0: k + 10).
    pub block: usize,
    /// Largest basis, in vectors (0: from `memory`).
    pub max_basis: usize,
    /// Bytes allowed for the basis and its image together.
    pub memory: usize,
    /// Relative residual target (see the module docs).
    pub tol: f64,
    /// Most applications of `A` (passes over the data).
    pub max_applies: usize,
    pub seed: u64,
}

impl Default for KrylovOptions {
    fn default() -> Self {
        KrylovOptions {
            k: 50,
            block: 0,
            max_basis: 0,
            memory: 384 << 20,
            tol: 1e-8,
            max_applies: 200,
            seed: 0,
        }
    }
}

/// The result: eigenvalues (decreasing), eigenvectors (p × k columns).
#[derive(Debug)]
pub struct Eigs {
    pub values: Vec<f64>,
    pub vectors: Mat<f64>,
    /// Applications of `A` used (= passes over the data when streamed).
    pub applies: usize,
    /// Largest relative residual of the returned pairs.
    pub residual: f64,
    pub converged: bool,
}

/// `z ← z − b·(bᵀ·z)`.
fn project_out(mut z: MatMut<'_, f64>, b: MatRef<'_, f64>) {
    if b.ncols() == 0 {
        return;
    }
    let c = mul_tn(b, z.rb());
    mul_tall(z.rb_mut(), Accum::Add, b, c.as_ref(), -1.0);
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A random unit vector orthogonal to `basis` and to `z`'s columns `..j`,
/// written into column `j` of `z`.
fn random_column(z: &mut Mat<f64>, j: usize, basis: MatRef<'_, f64>, rng: &mut Rng) {
    // The caller keeps `basis.ncols() + j < p`, so a random vector keeps a
    // part of norm ≳ sqrt((p − m − j)/p) outside the span; a few tries at
    // most.
    for _ in 0..20 {
        for x in z.col_as_slice_mut(j) {
            *x = rng.normal();
        }
        for _ in 0..2 {
            project_out(z.as_mut().subcols_mut(j, 1), basis);
            for i in 0..j {
                let zi = z.col_as_slice(i).to_vec();
                let zj = z.col_as_slice_mut(j);
                let d = dot(&zi, zj);
                zj.iter_mut().zip(&zi).for_each(|(b, a)| *b -= d * a);
            }
        }
        let nrm = dot(z.col_as_slice(j), z.col_as_slice(j)).sqrt();
        let floor = 0.1
            * ((z.nrows() - basis.ncols().min(z.nrows()) - j).max(1) as f64 / z.nrows() as f64)
                .sqrt();
        if nrm > floor.min(1e-3) {
            z.col_as_slice_mut(j).iter_mut().for_each(|x| *x /= nrm);
            return;
        }
    }
    // Unreachable in practice (no room left): a zero column adds nothing.
    z.col_as_slice_mut(j).iter_mut().for_each(|x| *x = 0.0);
}

/// Thin Householder QR `z = Q·R` of a tall p × b block, sequential: faer's
/// `Mat::qr` takes the global (parallel) setting, and its worker threads
/// then spin at barriers while the rayon pool runs the operator — at a
/// million rows that spinning was most of the CPU of a spectral layout.
/// A p × b QR is O(p·b²), a small fraction of one operator application.
fn thin_qr(z: MatRef<'_, f64>) -> (Mat<f64>, Mat<f64>) {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::householder::{
        apply_block_householder_sequence_on_the_left_in_place_scratch as apply_scratch,
        apply_block_householder_sequence_on_the_left_in_place_with_conj as apply,
    };
    use faer::linalg::qr::no_pivoting::factor::{
        qr_in_place, qr_in_place_scratch, recommended_blocksize,
    };

    let (p, b) = z.shape();
    let size = p.min(b);
    let mut qr = z.to_owned();
    let blocksize = recommended_blocksize::<f64>(p, b);
    let mut coeff = Mat::<f64>::zeros(blocksize, size);
    let scratch = qr_in_place_scratch::<f64>(p, b, blocksize, PAR, Default::default());
    qr_in_place(
        qr.as_mut(),
        coeff.as_mut(),
        PAR,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    );
    let r = Mat::from_fn(size, b, |i, j| if i <= j { qr[(i, j)] } else { 0.0 });
    // the Householder basis: unit lower trapezoid (as faer's `Qr` stores it)
    for j in 0..size {
        (0..j).for_each(|i| qr[(i, j)] = 0.0);
        qr[(j, j)] = 1.0;
    }
    let mut q = Mat::<f64>::identity(p, size);
    let scratch = apply_scratch::<f64>(p, blocksize, size);
    apply(
        qr.get(.., ..size),
        coeff.as_ref(),
        faer::Conj::No,
        q.as_mut(),
        PAR,
        MemStack::new(&mut MemBuffer::new(scratch)),
    );
    (q, r)
}

/// Orthonormalise `z` (already orthogonal to `basis`) by Householder QR:
/// returns `(Q, R)` with `z = Q·R`. Columns where the Krylov space is
/// exhausted (`|R_jj|` negligible) get random directions orthogonal to
/// everything (their weight in `R` stays negligible).
fn qr_block(z: &Mat<f64>, basis: MatRef<'_, f64>, rng: &mut Rng) -> (Mat<f64>, Mat<f64>) {
    let b = z.ncols();
    let (mut q, r) = thin_qr(z.as_ref());
    let scale = (0..b)
        .map(|j| dot(z.col_as_slice(j), z.col_as_slice(j)).sqrt())
        .fold(0.0f64, f64::max);
    for j in 0..b {
        if r[(j, j)].abs() <= 1e-10 * scale || scale == 0.0 {
            random_column(&mut q, j, basis, rng);
        }
    }
    (q, r)
}

/// Top `o.k` eigenpairs of `op`.
///
/// The basis `K` (m vectors) keeps the block-Krylov relation
/// `A·K = K·H + Q⁺·R·E_lastᵀ` (H = KᵀAK; Q⁺, R the orthonormalised image
/// of the last block), so the residual of a Ritz pair `(θ, K·s)` is
/// `‖R·s_last‖` and costs nothing; it is confirmed explicitly at the end.
pub fn top_eigs(op: &mut dyn SymOp, o: &KrylovOptions) -> Result<Eigs> {
    let p = op.dim();
    let k = o.k.min(p);
    let b = if o.block > 0 { o.block } else { k + 10 }.min(p);
    let by_memory = (o.memory / (16 * p.max(1))).max(3 * b);
    // Room for one more block outside the basis, always.
    let m_max = if o.max_basis > 0 {
        o.max_basis
    } else {
        by_memory.min(8 * b)
    }
    .min(p.saturating_sub(b));
    let mut rng = Rng::new(o.seed);

    if k == 0 {
        return Ok(Eigs {
            values: vec![],
            vectors: Mat::zeros(p, 0),
            applies: 0,
            residual: 0.0,
            converged: true,
        });
    }
    if m_max < 3 * b || m_max < k + 2 * b {
        return explicit(op, k);
    }

    let mut kb = Mat::<f64>::zeros(p, m_max);
    let mut akb = Mat::<f64>::zeros(p, m_max);
    let mut h = Mat::<f64>::zeros(m_max, m_max);
    let mut m = 0usize;
    let mut applies = 0usize;
    let mut trust_cheap = true;

    // Start block: Gaussian, orthonormalised.
    let g = Mat::from_fn(p, b, |_, _| rng.normal());
    let (mut qn, _) = qr_block(&g, kb.subcols(0, 0), &mut rng);
    loop {
        // Append the new block and apply A to it (one pass).
        let aq = op.apply(qn.as_ref())?;
        applies += 1;
        kb.subcols_mut(m, b).copy_from(&qn);
        akb.subcols_mut(m, b).copy_from(&aq);
        let hc = mul_tn(kb.subcols(0, m + b), aq.as_ref());
        for j in 0..b {
            for i in 0..m + b {
                let v = if i >= m {
                    0.5 * (hc[(i, j)] + hc[(m + j, i - m)])
                } else {
                    hc[(i, j)]
                };
                h[(i, m + j)] = v;
                h[(m + j, i)] = v;
            }
        }
        let last = m;
        m += b;

        // Rayleigh–Ritz on the whole basis.
        let (theta, s) = top_eigh(h.submatrix(0, 0, m, m), m)?;
        let scale = theta[0].abs().max(f64::MIN_POSITIVE);

        // Next block: A·Q_last minus its part in K (= K·H[:, last]), twice.
        let mut z = aq;
        mul_tall(
            z.as_mut(),
            Accum::Add,
            kb.subcols(0, m),
            h.submatrix(0, last, m, b),
            -1.0,
        );
        project_out(z.as_mut(), kb.subcols(0, m));
        let (q_next, r) = qr_block(&z, kb.subcols(0, m), &mut rng);

        // Cheap residuals ‖R·s_last‖.
        let want = k.min(m);
        let cheap = (0..want)
            .map(|j| {
                let mut acc = 0.0;
                for i in 0..b {
                    let v: f64 = (i..b).map(|t| r[(i, t)] * s[(last + t, j)]).sum();
                    acc += v * v;
                }
                acc.sqrt() / scale
            })
            .fold(0.0f64, f64::max);
        let done_by_budget = applies >= o.max_applies || m >= p;
        if want == k && (cheap <= o.tol || !trust_cheap) || done_by_budget {
            let mut v = Mat::zeros(p, want);
            let mut av = Mat::zeros(p, want);
            mul_tall(
                v.as_mut(),
                Accum::Replace,
                kb.subcols(0, m),
                s.subcols(0, want),
                1.0,
            );
            mul_tall(
                av.as_mut(),
                Accum::Replace,
                akb.subcols(0, m),
                s.subcols(0, want),
                1.0,
            );
            let residual = (0..want)
                .map(|j| {
                    let r: f64 = av
                        .col_as_slice(j)
                        .iter()
                        .zip(v.col_as_slice(j))
                        .map(|(a, x)| (a - theta[j] * x).powi(2))
                        .sum();
                    r.sqrt() / scale
                })
                .fold(0.0f64, f64::max);
            let converged = want == k && residual <= o.tol;
            if converged || done_by_budget {
                return Ok(Eigs {
                    values: theta[..want].to_vec(),
                    vectors: v,
                    applies,
                    residual,
                    converged: converged || m >= p,
                });
            }
            // The cheap estimate was wrong (lost structure): check
            // explicitly from now on.
            trust_cheap = false;
        }

        if m + b > m_max {
            // Thick restart: keep the best Ritz vectors and their images.
            let keep = (m_max - b).min(k + (m_max - k) / 2).max(k);
            rotate_in_place(kb.as_mut(), m, s.subcols(0, keep));
            rotate_in_place(akb.as_mut(), m, s.subcols(0, keep));
            for j in 0..m {
                for i in 0..m {
                    h[(i, j)] = if i == j && i < keep { theta[i] } else { 0.0 };
                }
            }
            m = keep;
        }
        qn = q_next;
    }
}

/// Small problems: form `A` by applying it to the identity, then eigh.
fn explicit(op: &mut dyn SymOp, k: usize) -> Result<Eigs> {
    let p = op.dim();
    let eye = Mat::<f64>::identity(p, p);
    let mut a = Mat::zeros(p, p);
    let step = 256;
    let mut applies = 0;
    let mut j = 0;
    while j < p {
        let w = step.min(p - j);
        let out = op.apply(eye.subcols(j, w))?;
        a.subcols_mut(j, w).copy_from(&out);
        applies += 1;
        j += w;
    }
    let sym = Mat::from_fn(p, p, |i, j| 0.5 * (a[(i, j)] + a[(j, i)]));
    let (values, vectors) = top_eigh(sym.as_ref(), k)?;
    Ok(Eigs {
        values,
        vectors,
        applies,
        residual: 0.0,
        converged: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A = U·diag(d)·Uᵀ with a random orthogonal U and slowly decaying d,
    /// including a cluster of close eigenvalues.
    fn test_matrix(p: usize) -> (Mat<f64>, Vec<f64>) {
        let mut rng = Rng::new(7);
        let g = Mat::from_fn(p, p, |_, _| rng.normal());
        let q = g.as_ref().qr().compute_thin_Q();
        let d: Vec<f64> = (0..p)
            .map(|i| 100.0 / (1.0 + i as f64).powf(0.7) + if i == 11 { 0.01 } else { 0.0 })
            .collect();
        let mut a = Mat::zeros(p, p);
        for i in 0..p {
            for j in 0..p {
                a[(i, j)] = (0..p).map(|t| q[(i, t)] * d[t] * q[(j, t)]).sum();
            }
        }
        (a, d)
    }

    /// The sequential thin QR agrees with faer's `Mat::qr`: same R, and Q
    /// orthonormal with Q·R = z (tall block, as the Lanczos basis uses it).
    #[test]
    fn thin_qr_matches_faer_qr() {
        let mut rng = Rng::new(5);
        let z = Mat::from_fn(3000, 6, |_, _| rng.normal());
        let (q, r) = thin_qr(z.as_ref());
        let reference = z.as_ref().qr();
        let (q_ref, r_ref) = (reference.compute_thin_Q(), reference.thin_R().to_owned());
        assert!((&r - &r_ref).norm_max() < 1e-12 * r_ref.norm_max());
        assert!((&q - &q_ref).norm_max() < 1e-12);
        assert!((&q * &r - &z).norm_max() < 1e-12 * z.norm_max());
        assert!((q.transpose() * &q - Mat::<f64>::identity(6, 6)).norm_max() < 1e-12);
    }

    #[test]
    fn matches_full_eigh() {
        let p = 400;
        let (a, d) = test_matrix(p);
        let (ev, evec) = top_eigh(a.as_ref(), 20).unwrap();
        for (x, y) in ev.iter().zip(&d) {
            assert!((x - y).abs() < 1e-9 * d[0]);
        }
        for block in [0, 8] {
            let o = KrylovOptions {
                k: 20,
                block,
                max_basis: if block > 0 { 48 } else { 0 },
                seed: 3,
                ..Default::default()
            };
            let e = top_eigs(&mut DenseOp(a.as_ref()), &o).unwrap();
            assert!(e.converged, "residual {}", e.residual);
            for j in 0..20 {
                assert!((e.values[j] - ev[j]).abs() < 1e-7 * ev[0], "value {j}");
                let c: f64 = (0..p).map(|i| e.vectors[(i, j)] * evec[(i, j)]).sum();
                assert!(c.abs() > 0.99999, "vector {j}: {c}");
            }
        }
    }

    #[test]
    fn low_rank_exhausts_the_krylov_space() {
        // Rank 4 in dimension 90: the second block breaks down and is
        // refilled with random directions; must terminate and be exact.
        let p = 90;
        let mut rng = Rng::new(1);
        let u = Mat::from_fn(p, 4, |_, _| rng.normal());
        let mut a = Mat::zeros(p, p);
        matmul(
            a.as_mut(),
            Accum::Replace,
            u.as_ref(),
            u.transpose(),
            1.0,
            Par::Seq,
        );
        let (ev, _) = top_eigh(a.as_ref(), 3).unwrap();
        let e = top_eigs(
            &mut DenseOp(a.as_ref()),
            &KrylovOptions {
                k: 3,
                block: 4,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(e.converged);
        for j in 0..3 {
            assert!((e.values[j] - ev[j]).abs() < 1e-8 * ev[0]);
        }
    }

    #[test]
    fn small_problems_fall_back_to_eigh() {
        let (a, d) = test_matrix(30);
        let e = top_eigs(
            &mut DenseOp(a.as_ref()),
            &KrylovOptions {
                k: 25,
                ..Default::default()
            },
        )
        .unwrap();
        for j in 0..25 {
            assert!((e.values[j] - d[j]).abs() < 1e-9 * d[0]);
        }
    }
}
