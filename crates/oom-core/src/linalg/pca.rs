//! PCA of a (lazily transformed) view, out of core.
//!
//! - Gram solver (exact; the default up to [`GRAM_MAX_FEATURES`]): one pass
//!   accumulates the column means and `M2 = Σ(x−μ)(x−μ)ᵀ` in f64
//!   ([`crate::kernels::gram`]); the covariance `M2/(n−1)` (or `XᵀX` when
//!   not zero-centring) is eigendecomposed with faer.
//! - Krylov solver (many features): thick-restart block Lanczos on
//!   `XcᵀXc` where every application streams X once; centring is implicit
//!   (`XcᵀXc·Q = XᵀX·Q − n·μ(μᵀQ)`), so sparse blocks stay sparse.
//!
//! Then a second pass projects: `X_pca = (X − μ)·V` (or `X·V`).
//! Loadings are signed so that each one's largest-|value| entry is positive.
//!
//! Variances follow scikit-learn as scanpy calls it: with centring,
//! `variance = eigenvalues of the covariance (ddof 1)` and
//! `variance_ratio = variance / trace(covariance)` (PCA, arpack); without,
//! `variance = var(X·v, ddof 0)` and the ratio is over `Σ var(X_j, ddof 0)`
//! (TruncatedSVD).

use faer::{Mat, MatRef};

use super::eigh::{fix_signs, top_eigh};
use super::krylov::{top_eigs, KrylovOptions, SymOp};
use crate::block::{Block, Csr, Dtype, Scalar, Values};
use crate::ctx::Ctx;
use crate::error::{OomError, Result};
use crate::exec::map_blocks;
use crate::kernels::gram::{chunk_rows, dense_rows, gram, gram_times, GramState, Precision};
use crate::kernels::sparse_gram::{as_csr, SparseScaled};
use crate::kernels::spill::RunSpill;
use crate::plan::View;
use crate::with_values;

/// Above this many features the Gram matrix (p² f64) is not formed.
pub const GRAM_MAX_FEATURES: usize = 10_000;
/// Above this many features the (in-memory) Gram matrix is solved with
/// Lanczos instead of a full eigendecomposition (same answer, faster).
pub const FULL_EIGH_MAX: usize = 4_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    Auto,
    Gram,
    Krylov,
}

impl Solver {
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "auto" => Solver::Auto,
            "gram" | "covariance_eigh" => Solver::Gram,
            "krylov" => Solver::Krylov,
            other => {
                return Err(OomError::Value(format!(
                    "unknown PCA solver '{other}' (expected 'auto', 'gram' or 'krylov')"
                )))
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct PcaOptions {
    pub n_comps: usize,
    pub zero_center: bool,
    pub solver: Solver,
    /// Arithmetic of the per-chunk Gram products.
    pub precision: Precision,
    pub seed: u64,
    /// Krylov relative residual target.
    pub tol: f64,
    pub max_passes: usize,
    /// Gram solver: full eigendecomposition up to this many features,
    /// in-memory Lanczos above.
    pub full_eigh_max: usize,
    /// Krylov block size (0: n_comps + 10).
    pub block: usize,
}

impl PcaOptions {
    /// Whether `p` features are fitted through the Gram matrix.
    fn uses_gram(&self, p: usize) -> bool {
        match self.solver {
            Solver::Gram => true,
            Solver::Krylov => false,
            Solver::Auto => p <= GRAM_MAX_FEATURES,
        }
    }
}

impl Default for PcaOptions {
    fn default() -> Self {
        PcaOptions {
            n_comps: 50,
            zero_center: true,
            solver: Solver::Auto,
            precision: Precision::F32,
            seed: 0,
            tol: 1e-7,
            max_passes: 200,
            full_eigh_max: FULL_EIGH_MAX,
            block: 0,
        }
    }
}

/// A fitted PCA (everything but the scores).
#[derive(Debug)]
pub struct PcaFit {
    pub n_obs: u64,
    pub zero_center: bool,
    /// p × k, columns are the loadings.
    pub components: Mat<f64>,
    pub variance: Vec<f64>,
    pub variance_ratio: Vec<f64>,
    pub mean: Vec<f64>,
    /// `"gram"`, `"gram+lanczos"` or `"krylov"`.
    pub solver: &'static str,
    /// Passes over the data used by the fit.
    pub passes: usize,
}

/// The streamed operator `A·Q = XcᵀXc·Q` (or `XᵀX·Q`), one pass per call.
struct StreamOp<'v> {
    ctx: &'v Ctx,
    view: &'v View,
    p: usize,
    centered: bool,
    n: u64,
    sum: Vec<f64>,
    sumsq: Vec<f64>,
}

impl SymOp for StreamOp<'_> {
    fn dim(&self) -> usize {
        self.p
    }

    fn apply(&mut self, q: MatRef<'_, f64>) -> Result<Mat<f64>> {
        let (p, b) = (self.p, q.ncols());
        let qr: Vec<f64> = (0..p * b).map(|i| q[(i / b, i % b)]).collect();
        let g = gram_times(self.ctx, self.view, &qr, b)?;
        self.n = g.n;
        self.sum = g.sum;
        self.sumsq = g.sumsq;
        let mut out = Mat::from_fn(p, b, |i, j| g.w[i * b + j]);
        if self.centered && self.n > 0 {
            // −n·μ(μᵀQ) = −s(sᵀQ)/n with s the column sums.
            let inv_n = 1.0 / self.n as f64;
            for j in 0..b {
                let sq: f64 = (0..p).map(|i| self.sum[i] * q[(i, j)]).sum::<f64>() * inv_n;
                for i in 0..p {
                    out[(i, j)] -= self.sum[i] * sq;
                }
            }
        }
        Ok(out)
    }
}

/// The Gram pass of [`fit`]: on the sparse values when `view` is a scale
/// of sparse data and that pays, else on the values as read.
pub fn gram_pass(ctx: &Ctx, view: &View, prec: Precision) -> Result<GramState> {
    match SparseScaled::detect(view).filter(SparseScaled::gram_pays) {
        Some(sp) => Ok(sp.gram(ctx, false)?.0),
        None => gram(ctx, view, prec),
    }
}

/// Fit PCA on every row and column of `view`.
pub fn fit(ctx: &Ctx, view: &View, o: &PcaOptions) -> Result<PcaFit> {
    let n = view.nrows();
    let p = usize::try_from(view.ncols()).expect("fits");
    check_shape(n, p, o)?;
    if o.uses_gram(p) {
        return fit_gram(&gram_pass(ctx, view, o.precision)?, o);
    }
    let nf = n as f64;
    let mut op = StreamOp {
        ctx,
        view,
        p,
        centered: o.zero_center,
        n: 0,
        sum: vec![],
        sumsq: vec![],
    };
    let ko = KrylovOptions {
        k: o.n_comps,
        block: o.block,
        seed: o.seed,
        tol: o.tol,
        max_applies: o.max_passes,
        ..Default::default()
    };
    let e = top_eigs(&mut op, &ko)?;
    if !e.converged {
        return Err(OomError::Value(format!(
            "the Krylov PCA solver did not converge in {} passes (residual {:.2e}); \
             raise max_passes or use fewer components",
            e.applies, e.residual
        )));
    }
    let mean: Vec<f64> = op.sum.iter().map(|s| s / nf).collect();
    let trace_m2: f64 = op
        .sumsq
        .iter()
        .zip(&op.sum)
        .map(|(q, s)| q - s * s / nf)
        .sum();
    let eig = Eig {
        values: e.values,
        vectors: e.vectors,
        mean,
        trace_m2,
    };
    finish(n, eig, o, "krylov", e.applies)
}

/// The fit from a Gram pass's state — one pass in process, or the states
/// of row ranges (workers) combined in row order: the same code either way.
pub fn fit_gram(st: &GramState, o: &PcaOptions) -> Result<PcaFit> {
    let (n, p) = (st.n(), st.ncols());
    check_shape(n, p, o)?;
    let k = o.n_comps;
    let a = st.matrix(o.zero_center, 1.0);
    let trace_m2: f64 = st.matrix(true, 1.0).diagonal().column_vector().iter().sum();
    let (values, vectors, solver) = if p <= o.full_eigh_max {
        let (v, u) = top_eigh(a.as_ref(), k)?;
        (v, u, "gram")
    } else {
        let ko = KrylovOptions {
            k,
            seed: o.seed,
            tol: o.tol.min(1e-10),
            max_applies: 1000,
            ..Default::default()
        };
        let e = top_eigs(&mut super::krylov::DenseOp(a.as_ref()), &ko)?;
        (e.values, e.vectors, "gram+lanczos")
    };
    let eig = Eig {
        values,
        vectors,
        mean: st.mean().to_vec(),
        trace_m2,
    };
    finish(n, eig, o, solver, 1)
}

/// Top eigenpairs of the (centred) Gram matrix, the column means and the
/// total sum of squares about the mean.
struct Eig {
    values: Vec<f64>,
    vectors: Mat<f64>,
    mean: Vec<f64>,
    trace_m2: f64,
}

fn check_shape(n: u64, p: usize, o: &PcaOptions) -> Result<()> {
    if n < 2 {
        return Err(OomError::Value(format!(
            "PCA needs at least 2 observations, got {n}"
        )));
    }
    let k = o.n_comps;
    if k == 0 || k > p || u64::try_from(k).expect("fits") > n {
        return Err(OomError::Value(format!(
            "n_comps={k} must be between 1 and min(n_obs, n_vars) = {}",
            n.min(p as u64)
        )));
    }
    Ok(())
}

/// Signs, variances and ratios of a solved fit (scikit-learn's definitions:
/// ddof 1 with centring, `TruncatedSVD`'s without).
fn finish(n: u64, eig: Eig, o: &PcaOptions, solver: &'static str, passes: usize) -> Result<PcaFit> {
    let Eig {
        values,
        mut vectors,
        mean,
        trace_m2,
    } = eig;
    let nf = n as f64;
    let p = mean.len();
    if values.iter().any(|v| !v.is_finite()) {
        return Err(OomError::Value(
            "PCA produced non-finite eigenvalues (NaN or inf in the data?)".into(),
        ));
    }
    fix_signs(&mut vectors);
    let (variance, variance_ratio): (Vec<f64>, Vec<f64>) = if o.zero_center {
        let var: Vec<f64> = values.iter().map(|v| v / (nf - 1.0)).collect();
        let total = trace_m2 / (nf - 1.0);
        let ratio = var.iter().map(|v| v / total).collect();
        (var, ratio)
    } else {
        let var: Vec<f64> = values
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let mv: f64 = (0..p).map(|i| mean[i] * vectors[(i, j)]).sum();
                v / nf - mv * mv
            })
            .collect();
        let total = trace_m2 / nf;
        let ratio = var.iter().map(|v| v / total).collect();
        (var, ratio)
    };
    Ok(PcaFit {
        n_obs: n,
        zero_center: o.zero_center,
        components: vectors,
        variance,
        variance_ratio,
        mean,
        solver,
        passes,
    })
}

/// `out` row r = `shift + Σ x_rj·V_j` over the stored entries of CSR row r.
fn csr_scores<T: Scalar>(c: &Csr, vals: &[T], v: &[f64], k: usize, shift: &[f64], out: &mut [f64]) {
    #[inline(always)]
    fn rows<T: Scalar>(c: &Csr, vals: &[T], v: &[f64], k: usize, shift: &[f64], out: &mut [f64]) {
        for r in 0..c.nrows {
            let (lo, hi) = c.row_range(r);
            let o = &mut out[r * k..(r + 1) * k];
            o.copy_from_slice(shift);
            for (&j, &val) in c.indices[lo..hi].iter().zip(&vals[lo..hi]) {
                let j = j as usize;
                let x = val.to_f64();
                for (oi, vi) in o.iter_mut().zip(&v[j * k..(j + 1) * k]) {
                    *oi += x * vi;
                }
            }
        }
    }
    // Four lanes instead of SSE2's two; Rust never fuses the multiply and
    // the add, so the numbers are the baseline build's.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn rows_avx2<T: Scalar>(
        c: &Csr,
        vals: &[T],
        v: &[f64],
        k: usize,
        shift: &[f64],
        out: &mut [f64],
    ) {
        rows(c, vals, v, k, shift, out);
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above).
        unsafe { rows_avx2(c, vals, v, k, shift, out) };
        crate::cpu::clear_upper_vector_state();
        return;
    }
    rows(c, vals, v, k, shift, out);
}

/// Scores of one block: `(x − μ)·V` rows, row-major, as f64.
fn project_block(block: &Block, v: &[f64], k: usize, shift: &[f64]) -> Vec<f64> {
    let p = block.ncols();
    let n = block.nrows();
    let mut out = vec![0.0f64; n * k];
    match block {
        Block::Csr(c) => with_values!(&c.data, vals => csr_scores(c, vals, v, k, shift, &mut out)),
        Block::Dense(_) => {
            let step = chunk_rows(p);
            let vm = MatRef::from_row_major_slice(v, p, k);
            let mut buf = Vec::new();
            let mut r0 = 0;
            while r0 < n {
                let r1 = (r0 + step).min(n);
                dense_rows(block, r0, r1, &mut buf);
                let c = MatRef::from_row_major_slice(&buf[..], r1 - r0, p);
                for row in out[r0 * k..r1 * k].chunks_exact_mut(k) {
                    row.copy_from_slice(shift);
                }
                let dst =
                    faer::MatMut::from_row_major_slice_mut(&mut out[r0 * k..r1 * k], r1 - r0, k);
                faer::linalg::matmul::matmul(dst, faer::Accum::Add, c, vm, 1.0, faer::Par::Seq);
                r0 = r1;
            }
        }
    }
    out
}

/// Second pass: the n_obs × k scores `(x − mean)·components` (no centring
/// without `mean`), row-major, in `dtype` (f32 or f64).
pub fn project(
    ctx: &Ctx,
    view: &View,
    components: &Mat<f64>,
    mean: Option<&[f64]>,
    dtype: Dtype,
) -> Result<Values> {
    project_from(ctx, view, components, mean, dtype, None)
}

/// [`fit`] and then [`project`], in one pass less when the Gram pass runs
/// on sparse values: it keeps the blocks it read in a temporary file and
/// the projection reads those (the same numbers; the source is read again
/// only when the file cannot be written).
pub fn fit_project(
    ctx: &Ctx,
    view: &View,
    o: &PcaOptions,
    dtype: Dtype,
) -> Result<(PcaFit, Values)> {
    let p = usize::try_from(view.ncols()).expect("fits");
    check_shape(view.nrows(), p, o)?;
    let sparse = SparseScaled::detect(view).filter(SparseScaled::gram_pays);
    let (f, spills) = match sparse {
        Some(sp) if o.uses_gram(p) => {
            let (st, spills) = sp.gram(ctx, true)?;
            (fit_gram(&st, o)?, spills)
        }
        _ => (fit(ctx, view, o)?, None),
    };
    let mean = f.zero_center.then_some(&f.mean[..]);
    let scores = project_from(ctx, view, &f.components, mean, dtype, spills.as_deref())?;
    Ok((f, scores))
}

fn project_from(
    ctx: &Ctx,
    view: &View,
    components: &Mat<f64>,
    mean: Option<&[f64]>,
    dtype: Dtype,
    spilled: Option<&[RunSpill]>,
) -> Result<Values> {
    let p = components.nrows();
    let k = components.ncols();
    if mean.is_some_and(|mu| mu.len() != p) {
        return Err(OomError::Value(format!(
            "mean has {} entries, the components {p} rows",
            mean.map_or(0, <[f64]>::len)
        )));
    }
    if usize::try_from(view.ncols()).expect("fits") != p {
        return Err(OomError::Value(format!(
            "view has {} columns, the PCA fit {p}",
            view.ncols()
        )));
    }
    let v: Vec<f64> = (0..p * k).map(|i| components[(i / k, i % k)]).collect();
    // Constant term −μᵀV (zero without centring).
    let shift: Vec<f64> = (0..k)
        .map(|j| mean.map_or(0.0, |mu| -(0..p).map(|i| mu[i] * v[i * k + j]).sum::<f64>()))
        .collect();
    // A view ending in a zero-centring scale of sparse values: Y = A + 1z0ᵀ
    // with A sparse, so Y·V = A·V + 1(z0ᵀV).
    let sparse = SparseScaled::detect(view);
    let shift: Vec<f64> = match &sparse {
        Some(sp) => (0..k)
            .map(|j| shift[j] + (0..p).map(|i| sp.z0[i] * v[i * k + j]).sum::<f64>())
            .collect(),
        None => shift,
    };
    let scores = |b: &Block| {
        let s = project_block(b, &v, k, &shift);
        match dtype {
            Dtype::F32 => Values::F32(s.into_iter().map(|x| x as f32).collect()),
            _ => Values::F64(s),
        }
    };
    let parts = match (&sparse, spilled) {
        (Some(sp), Some(spills)) => sp.project_spilled(ctx, spills, |a| scores(&Block::Csr(a)))?,
        _ => {
            let src = sparse.as_ref().map_or(view, |sp| &sp.inner);
            map_blocks(ctx, src, crate::kernels::block_target(src), |_, _, b| {
                Ok(match &sparse {
                    Some(sp) => scores(&Block::Csr(sp.sparse_part(as_csr(b)))),
                    None => scores(&b),
                })
            })?
        }
    };
    let mut out = Values::empty(if dtype == Dtype::F32 {
        Dtype::F32
    } else {
        Dtype::F64
    });
    for part in parts {
        out.extend_from(&part);
    }
    Ok(out)
}
