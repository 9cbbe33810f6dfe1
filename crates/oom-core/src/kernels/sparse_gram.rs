//! Sparse route for the PCA Gram pass and projection when a view ends in a
//! zero-centring [`Scale`] over sparse values.
//!
//! With `S` the sparse values before the scale, `m`, `s` its per-column
//! mean and std and `[lo, hi]` its clip range, the scaled matrix is
//! `Y = clip((S − 1mᵀ)D⁻¹)`. Every implicit zero of column `j` becomes the
//! same value `z0_j = clip(−m_j/s_j)`, so `Y = A + 1z0ᵀ` with `A` sparse on
//! the pattern of `S`: `A_ij = S_ij/s_j` for unclipped entries of columns
//! whose zeros stay unclipped, `clip((S_ij − m_j)/s_j) − z0_j` otherwise
//! (a gene expressed in nearly every cell, scaled with `max_value`, has its
//! zeros clipped: atlases have such genes). Centred cross-products are shift
//! invariant, so `M2_Y = AᵀA − n·μ_Aμ_Aᵀ`, `μ_Y = μ_A + z0`, and the scores
//! `(Y − 1μ_Yᵀ)V = A·V − 1(μ_AᵀV)`: the Gram pass costs `Σ_rows nnz_row²`
//! and the projection `nnz·k` instead of `n·p²` and `n·p·k`.
//! Everything is computed in f64.

use faer::Mat;

use super::gram::{GramState, Precision};
use super::spill::RunSpill;
use crate::block::{Block, Csr, Scalar, Values};
use crate::ctx::Ctx;
use crate::error::Result;
use crate::exec::{fold_runs, BLOCK_TARGET};
use crate::kernels::merge;
use crate::plan::View;
use crate::with_values;

/// Memory allowed for the per-worker accumulators (p² / 2 f64) together.
const SPARSE_GRAM_BUDGET: usize = 384 << 20;
/// Above this fraction of stored entries the dense path is faster.
pub const MAX_DENSITY: f64 = 0.2;

/// A view `Y = A + 1z0ᵀ` seen through its sparse part `A`.
pub struct SparseScaled {
    /// The view before the scale (sparse).
    pub inner: View,
    /// `1/s_j`.
    inv_std: Vec<f64>,
    mean: Vec<f64>,
    std: Vec<f64>,
    lo: f64,
    hi: f64,
    /// Value of an implicit zero after the scale.
    pub z0: Vec<f64>,
    /// Columns whose implicit zeros are clipped (`z0_j` is `lo` or `hi`).
    zero_clipped: Vec<bool>,
}

impl SparseScaled {
    /// The sparse route for `view`, when it applies: the last op is a
    /// zero-centring scale on every row over a sparse view, with finite
    /// means and nonzero stds, and no cast to a non-float type.
    pub fn detect(view: &View) -> Option<Self> {
        if view.cast.is_some_and(|d| !d.is_float()) {
            return None;
        }
        let (inner, sc) = view.split_last_scale()?;
        if !sc.zero_center || sc.mask.is_some() {
            return None;
        }
        let hi = sc.max_value.unwrap_or(f64::INFINITY);
        let lo = -hi;
        if hi.is_nan() || hi < 0.0 {
            return None;
        }
        let mean = sc.mean.to_vec();
        let std = sc.std.to_vec();
        let mut z0 = Vec::with_capacity(mean.len());
        let mut zero_clipped = Vec::with_capacity(mean.len());
        for (m, s) in mean.iter().zip(&std) {
            let z = (0.0 - m) / s;
            if !z.is_finite() || !s.is_finite() || *s == 0.0 {
                return None;
            }
            zero_clipped.push(z > hi || z < lo);
            z0.push(z.clamp(lo, hi));
        }
        let inv_std = std.iter().map(|s| 1.0 / s).collect();
        Some(SparseScaled {
            inner,
            inv_std,
            mean,
            std,
            lo,
            hi,
            z0,
            zero_clipped,
        })
    }

    /// Whether the sparse Gram pass is worth it (density) and fits in memory.
    pub fn gram_pays(&self) -> bool {
        let p = usize::try_from(self.inner.ncols()).expect("fits");
        let threads = rayon::current_num_threads().max(1);
        if tri(p).saturating_mul(8).saturating_mul(threads) > SPARSE_GRAM_BUDGET {
            return false;
        }
        let cells = self.inner.nrows().saturating_mul(p as u64).max(1);
        let density = self.inner.approx_cost() as f64 / cells as f64;
        density <= MAX_DENSITY
    }

    /// `A` for one block of the inner view: CSR, f64, columns increasing
    /// within each row.
    pub fn sparse_part(&self, c: Csr) -> Csr {
        let mut vals: Vec<f64> = with_values!(&c.data, v => v.iter().map(|x| x.to_f64()).collect());
        let mut indices = c.indices;
        let mut indptr = c.indptr;
        canonical_rows(&mut indptr, &mut indices, &mut vals);
        for r in 0..c.nrows {
            let (a, b) = (indptr[r] as usize, indptr[r + 1] as usize);
            for k in a..b {
                let j = indices[k] as usize;
                vals[k] = self.value(j, vals[k]);
            }
        }
        Csr {
            nrows: c.nrows,
            ncols: c.ncols,
            indptr,
            indices,
            data: Values::F64(vals),
        }
    }

    /// `A_ij` for a stored value `x` in column `j`.
    #[inline]
    fn value(&self, j: usize, x: f64) -> f64 {
        let y = (x - self.mean[j]) / self.std[j];
        if y > self.hi {
            self.hi - self.z0[j]
        } else if y < self.lo {
            self.lo - self.z0[j]
        } else if self.zero_clipped[j] {
            y - self.z0[j]
        } else {
            x * self.inv_std[j]
        }
    }

    /// One pass: the Gram state (means and centred cross-products) of `Y`.
    ///
    /// The accumulator is laid out with the columns in decreasing order of
    /// their mean (a proxy for how many rows hold them): the pairs of
    /// common genes, which take most of the updates, then share a small
    /// corner that stays in cache instead of being spread over the whole
    /// packed triangle (16 MB for 2,000 genes; a square layout's rows 16 KB
    /// apart also fell on few cache sets). Each cell still adds the same
    /// products in the same row order, so the numbers do not change.
    ///
    /// With `spill`, each run also writes the sparse blocks it read to a
    /// temporary file (see [`super::spill`]) and returns them, one per run
    /// in row order, for [`SparseScaled::project_spilled`]; `None` when one
    /// could not be written.
    pub fn gram(&self, ctx: &Ctx, spill: bool) -> Result<(GramState, Option<Vec<RunSpill>>)> {
        let p = usize::try_from(self.inner.ncols()).expect("fits");
        let runs = ctx.runs();
        let rank = rank_by_decreasing(&self.mean);
        let (states, _) = fold_runs(
            ctx,
            &self.inner,
            BLOCK_TARGET,
            runs,
            None,
            || {
                (
                    SparseGram::new(p),
                    spill.then(|| RunSpill::create(p)).flatten(),
                )
            },
            |(s, out), a, b, block| {
                let c = as_csr(block);
                if let Some(o) = out {
                    if o.push(a, b, &c).is_err() {
                        *out = None;
                    }
                }
                s.insert(&relabel(self.sparse_part(c), &rank));
                Ok(())
            },
        )?;
        let (states, spills): (Vec<SparseGram>, Vec<Option<RunSpill>>) = states.into_iter().unzip();
        let spills = if spill {
            spills.into_iter().collect::<Option<Vec<_>>>()
        } else {
            None
        };
        // Each run finished to its (n, mean, M2), then merged as Gram states:
        // what a distributed pass does with its workers' states (one run
        // each), so both give the same numbers.
        let finish = |s: SparseGram| s.finish(&self.z0, &rank);
        let state = merge(
            states.into_iter().map(finish),
            || finish(SparseGram::new(p)),
            GramState::combine,
        );
        Ok((state, spills))
    }

    /// The scores `A·V + 1·shift` of the blocks a Gram pass spilled, in row
    /// order: the numbers a projection pass over the view gives (each row
    /// is projected alone), without reading the source again.
    pub fn project_spilled(
        &self,
        ctx: &Ctx,
        spills: &[RunSpill],
        project: impl Fn(Csr) -> Values + Sync,
    ) -> Result<Vec<Values>> {
        use rayon::prelude::*;
        ctx.start_pass(self.inner.nrows());
        let blocks: Vec<(&RunSpill, usize)> = spills
            .iter()
            .flat_map(|s| (0..s.len()).map(move |i| (s, i)))
            .collect();
        blocks
            .par_iter()
            .map(|&(s, i)| {
                ctx.check()?;
                let c = s.read(i)?;
                let n = c.nrows as u64;
                let out = project(self.sparse_part(c));
                ctx.advance(n);
                Ok(out)
            })
            .collect()
    }
}

/// A block of the inner view as CSR.
pub fn as_csr(block: Block) -> Csr {
    match block {
        Block::Csr(c) => c,
        Block::Dense(d) => dense_to_csr(&d),
    }
}

fn dense_to_csr(d: &crate::block::Dense) -> Csr {
    let (n, p) = (d.nrows, d.ncols);
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0i64);
    let mut indices = Vec::new();
    let mut vals = Vec::new();
    with_values!(&d.data, v => {
        for r in 0..n {
            for (j, x) in v[r * p..(r + 1) * p].iter().enumerate() {
                let x = x.to_f64();
                if x != 0.0 {
                    indices.push(j as i32);
                    vals.push(x);
                }
            }
            indptr.push(indices.len() as i64);
        }
    });
    Csr {
        nrows: n,
        ncols: p,
        indptr,
        indices,
        data: Values::F64(vals),
    }
}

/// `rank[j]`: the position of column `j` when sorted by decreasing `key`
/// (ties by column).
fn rank_by_decreasing(key: &[f64]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..key.len()).collect();
    order.sort_by(|&a, &b| key[b].total_cmp(&key[a]).then(a.cmp(&b)));
    let mut rank = vec![0u32; key.len()];
    for (pos, &j) in order.iter().enumerate() {
        rank[j] = u32::try_from(pos).expect("fewer than 2^32 columns");
    }
    rank
}

/// `c` with column `j` renamed `rank[j]`, columns increasing in each row.
///
/// A row whose entries are not far fewer than the bitmap's words is put in
/// order without a sort: each value is placed at its rank in a scratch row
/// and read back by scanning the bits of the ranks present (a row of ~80
/// HVG entries among 2,000 columns: 32 words). Short rows of wide
/// matrices are sorted. Both give the same entries (the columns of a
/// canonical row are distinct, and so are their ranks).
fn relabel(c: Csr, rank: &[u32]) -> Csr {
    let Values::F64(v) = &c.data else {
        unreachable!("sparse_part gives f64")
    };
    let words = rank.len().div_ceil(64);
    let mut at = vec![0.0f64; rank.len()];
    let mut seen = vec![0u64; words];
    let mut indices = Vec::with_capacity(c.indices.len());
    let mut vals = Vec::with_capacity(v.len());
    let mut row: Vec<(u32, f64)> = Vec::new();
    for r in 0..c.nrows {
        let (a, b) = c.row_range(r);
        if (b - a) * 4 < words {
            row.clear();
            row.extend((a..b).map(|k| (rank[c.indices[k] as usize], v[k])));
            row.sort_unstable_by_key(|&(j, _)| j);
            indices.extend(row.iter().map(|&(j, _)| j as i32));
            vals.extend(row.iter().map(|&(_, x)| x));
            continue;
        }
        for k in a..b {
            let j = rank[c.indices[k] as usize] as usize;
            at[j] = v[k];
            seen[j / 64] |= 1 << (j % 64);
        }
        for (w, word) in seen.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                let j = w * 64 + bits.trailing_zeros() as usize;
                indices.push(j as i32);
                vals.push(at[j]);
                bits &= bits - 1;
            }
        }
    }
    Csr {
        data: Values::F64(vals),
        indices,
        ..c
    }
}

/// Make the columns of every row strictly increasing (a repeated column
/// keeps its last value, as [`Csr::to_dense`] does).
fn canonical_rows(indptr: &mut Vec<i64>, indices: &mut Vec<i32>, vals: &mut Vec<f64>) {
    let nrows = indptr.len() - 1;
    let sorted = (0..nrows).all(|r| {
        let (a, b) = (indptr[r] as usize, indptr[r + 1] as usize);
        indices[a..b].windows(2).all(|w| w[0] < w[1])
    });
    if sorted {
        return;
    }
    let mut ni = Vec::with_capacity(indices.len());
    let mut nv = Vec::with_capacity(vals.len());
    let mut np = Vec::with_capacity(indptr.len());
    np.push(0i64);
    let mut row: Vec<(i32, usize)> = Vec::new();
    for r in 0..nrows {
        let (a, b) = (indptr[r] as usize, indptr[r + 1] as usize);
        row.clear();
        row.extend((a..b).map(|k| (indices[k], k)));
        row.sort_by_key(|&(j, k)| (j, k));
        for (t, &(j, k)) in row.iter().enumerate() {
            if t + 1 < row.len() && row[t + 1].0 == j {
                continue;
            }
            ni.push(j);
            nv.push(vals[k]);
        }
        np.push(ni.len() as i64);
    }
    *indptr = np;
    *indices = ni;
    *vals = nv;
}

/// Start of row `i` of a packed lower triangle.
fn tri(i: usize) -> usize {
    i * (i + 1) / 2
}

/// `AᵀA` (packed lower triangle) and column sums of sparse rows.
struct SparseGram {
    p: usize,
    n: u64,
    sum: Vec<f64>,
    /// `acc[tri(i) + j]`, `i ≥ j`.
    acc: Vec<f64>,
}

impl SparseGram {
    fn new(p: usize) -> Self {
        SparseGram {
            p,
            n: 0,
            sum: vec![0.0; p],
            acc: vec![0.0; tri(p)],
        }
    }

    fn insert(&mut self, c: &Csr) {
        let Values::F64(v) = &c.data else {
            unreachable!("sparse_part gives f64")
        };
        self.n += c.nrows as u64;
        insert_rows(&mut self.acc, &mut self.sum, self.p, c, v);
    }

    /// The Gram state of `Y = A + 1z0ᵀ`, from sums and products laid out
    /// by `rank` (column `j` at `rank[j]`).
    fn finish(self, z0: &[f64], rank: &[u32]) -> GramState {
        let p = self.p;
        let nf = self.n as f64;
        let inv = if self.n > 0 { 1.0 / nf } else { 0.0 };
        let at = |j: usize| rank[j] as usize;
        let sum: Vec<f64> = (0..p).map(|j| self.sum[at(j)]).collect();
        let mean_a: Vec<f64> = sum.iter().map(|s| s * inv).collect();
        let m2 = Mat::from_fn(p, p, |i, j| {
            if i >= j {
                let (a, b) = (at(i).max(at(j)), at(i).min(at(j)));
                self.acc[tri(a) + b] - sum[i] * mean_a[j]
            } else {
                0.0
            }
        });
        let mean: Vec<f64> = mean_a.iter().zip(z0).map(|(a, z)| a + z).collect();
        GramState::from_parts(self.n, mean, m2, Precision::F64)
    }
}

#[inline(always)]
fn insert_rows_impl(acc: &mut [f64], sum: &mut [f64], p: usize, c: &Csr, v: &[f64]) {
    assert_eq!(acc.len(), tri(p));
    assert_eq!(sum.len(), p);
    for r in 0..c.nrows {
        let (lo, hi) = c.row_range(r);
        let idx = &c.indices[lo..hi];
        let val = &v[lo..hi];
        for a in 0..idx.len() {
            let ja = idx[a] as usize;
            let va = val[a];
            assert!(ja < p);
            sum[ja] += va;
            let row = &mut acc[tri(ja)..tri(ja) + ja + 1];
            for (&jb, &vb) in idx[..=a].iter().zip(&val[..=a]) {
                let jb = jb as usize;
                // SAFETY: columns increase within the row, so jb ≤ ja < row.len().
                unsafe { *row.get_unchecked_mut(jb) += va * vb };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn insert_rows_avx2(acc: &mut [f64], sum: &mut [f64], p: usize, c: &Csr, v: &[f64]) {
    insert_rows_impl(acc, sum, p, c, v);
}

fn insert_rows(acc: &mut [f64], sum: &mut [f64], p: usize, c: &Csr, v: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { insert_rows_avx2(acc, sum, p, c, v) };
        return;
    }
    insert_rows_impl(acc, sum, p, c, v);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::block::Dtype;
    use crate::kernels::gram::gram;
    use crate::linalg::pca::{fit, fit_project, project, PcaOptions};
    use crate::plan::{Log1p, Scale};
    use crate::storage::{open_matrix, H5File};

    /// A random sparse CSR `X` in f64 (about `density` filled, column 3 90%
    /// filled and positive; elsewhere a fifth negative when `signed`).
    fn write(path: &std::path::Path, n: usize, p: usize, density: f64, seed: u64, signed: bool) {
        let mut s = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let mut next = move || {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 11) as f64) / ((1u64 << 53) as f64)
        };
        let (mut indptr, mut indices, mut data) = (vec![0i64], vec![], vec![]);
        for _ in 0..n {
            for j in 0..p {
                let d = if j == 3 { 0.9 } else { density };
                if next() < d {
                    indices.push(j as i32);
                    let sign = if signed && j != 3 && next() < 0.2 {
                        -1.0
                    } else {
                        1.0
                    };
                    data.push(sign * (1.0 + 30.0 * next() * next()).round());
                }
            }
            indptr.push(indices.len() as i64);
        }
        let f = hdf5::File::create(path).unwrap();
        let g = f.create_group("X").unwrap();
        let v: hdf5::types::VarLenUnicode = "csr_matrix".parse().unwrap();
        g.new_attr::<hdf5::types::VarLenUnicode>()
            .create("encoding-type")
            .unwrap()
            .write_scalar(&v)
            .unwrap();
        g.new_attr_builder()
            .with_data(&[n as i64, p as i64])
            .create("shape")
            .unwrap();
        g.new_dataset_builder()
            .with_data(&data)
            .create("data")
            .unwrap();
        g.new_dataset_builder()
            .with_data(&indices)
            .create("indices")
            .unwrap();
        g.new_dataset_builder()
            .with_data(&indptr)
            .create("indptr")
            .unwrap();
    }

    fn dense_of(view: &View) -> Vec<Vec<f64>> {
        let b = view.read(0, view.nrows()).unwrap();
        let mut out = vec![vec![0.0; b.ncols()]; b.nrows()];
        for (r, row) in out.iter_mut().enumerate() {
            b.for_row(r, |c, v| row[c] += v);
        }
        out
    }

    /// (log1p,) a column subset, then scale with the columns' mean/std.
    fn scaled(path: &std::path::Path, max_value: Option<f64>, log: bool) -> View {
        let f = H5File::open(path).unwrap();
        let mut base = View::new(Arc::new(open_matrix(&f, "X").unwrap()));
        if log {
            base = base.with_op(Log1p { base: None });
        }
        let cols: Vec<u64> = (0..base.ncols()).filter(|j| j % 4 != 1).collect();
        let v = base.subset(None, Some(&cols)).unwrap();
        let x = dense_of(&v);
        let n = x.len() as f64;
        let p = x[0].len();
        let mean: Vec<f64> = (0..p)
            .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect();
        let std: Vec<f64> = (0..p)
            .map(|j| {
                let s =
                    (x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
                if s == 0.0 {
                    1.0
                } else {
                    s
                }
            })
            .collect();
        v.with_op(Scale {
            mean: Arc::new(mean),
            std: Arc::new(std),
            zero_center: true,
            max_value,
            mask: None,
        })
    }

    fn close(a: f64, b: f64, tol: f64, scale: f64) -> bool {
        (a - b).abs() <= tol * scale.max(1.0)
    }

    /// The sparse Gram state and scores equal the dense ones.
    fn check(view: &View) {
        let sp = SparseScaled::detect(view).expect("the sparse route applies");
        assert!(sp.gram_pays());
        let dense = gram(&Ctx::new(), view, Precision::F64).unwrap();
        let st = sp.gram(&Ctx::new(), false).unwrap().0;
        let p = st.ncols();
        // The spilled blocks cover every row once, in order (no spill on a
        // memory file system).
        let (spilled, spills) = sp.gram(&Ctx::new().with_runs(2), true).unwrap();
        assert_eq!(spilled.n(), st.n());
        if let Some(spills) = spills {
            let rows: Vec<(u64, u64)> = spills
                .iter()
                .flat_map(|s| s.rows().collect::<Vec<_>>())
                .collect();
            assert_eq!(rows.first().map(|r| r.0), Some(0));
            assert!(rows.windows(2).all(|w| w[0].1 == w[1].0));
            assert_eq!(rows.last().map(|r| r.1), Some(view.nrows()));
        } else {
            let probe = crate::storage::transpose::spill_file().unwrap();
            assert!(
                crate::kernels::spill::in_memory(&probe),
                "no spill on a disk"
            );
        }
        assert_eq!(st.n(), dense.n());
        for j in 0..p {
            assert!(close(st.mean()[j], dense.mean()[j], 1e-12, 1.0), "mean {j}");
        }
        for centered in [true, false] {
            let (a, b) = (st.matrix(centered, 1.0), dense.matrix(centered, 1.0));
            for i in 0..p {
                for j in 0..p {
                    assert!(
                        close(a[(i, j)], b[(i, j)], 1e-10, b[(i, i)].abs()),
                        "{centered} {i} {j}"
                    );
                }
            }
        }
        // The full PCA (sparse fit and projection) against the dense formula.
        for zero_center in [true, false] {
            let o = PcaOptions {
                n_comps: 5,
                zero_center,
                ..Default::default()
            };
            let f = fit(&Ctx::new(), view, &o).unwrap();
            let want = dense.matrix(zero_center, 1.0);
            let (vals, vecs) = crate::linalg::eigh::top_eigh(want.as_ref(), 5).unwrap();
            for c in 0..5 {
                let d: f64 = (0..p).map(|i| f.components[(i, c)] * vecs[(i, c)]).sum();
                assert!(d.abs() > 1.0 - 1e-9, "component {c}: {d}");
                let _ = vals[c];
            }
            let scores = project(
                &Ctx::new(),
                view,
                &f.components,
                f.zero_center.then_some(&f.mean[..]),
                Dtype::F64,
            )
            .unwrap()
            .to_f64_vec();
            // One pass less (the projection reads the Gram pass's spill):
            // the same fit and scores to the bit, however the rows are split.
            for runs in [1, 3] {
                let ctx = Ctx::new().with_runs(runs);
                let f = fit(&ctx, view, &o).unwrap();
                let mean = f.zero_center.then_some(&f.mean[..]);
                let scores = project(&ctx, view, &f.components, mean, Dtype::F64).unwrap();
                let (g, s) = fit_project(&ctx, view, &o, Dtype::F64).unwrap();
                assert_eq!(g.components, f.components);
                let bits = |v: Values| {
                    v.to_f64_vec()
                        .iter()
                        .map(|x| x.to_bits())
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(s), bits(scores));
            }
            let y = dense_of(view);
            for (r, row) in y.iter().enumerate() {
                for c in 0..5 {
                    let want: f64 = (0..p)
                        .map(|i| {
                            (row[i] - if zero_center { f.mean[i] } else { 0.0 })
                                * f.components[(i, c)]
                        })
                        .sum();
                    assert!(
                        close(scores[r * 5 + c], want, 1e-9, 1.0),
                        "score {r} {c}: {} vs {want}",
                        scores[r * 5 + c]
                    );
                }
            }
        }
    }

    #[test]
    fn sparse_route_matches_dense_without_clipping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.h5ad");
        write(&path, 400, 30, 0.12, 1, false);
        check(&scaled(&path, None, true));
    }

    #[test]
    fn sparse_route_matches_dense_with_clipping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.h5ad");
        write(&path, 400, 30, 0.12, 2, true);
        let view = scaled(&path, Some(1.5), false);
        // Some stored entries are clipped, above and below.
        let y = dense_of(&view);
        assert!(y.iter().flatten().any(|&v| v == 1.5));
        assert!(y.iter().flatten().any(|&v| v == -1.5));
        check(&view);
    }

    #[test]
    fn sparse_route_matches_dense_on_wider_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.h5ad");
        write(&path, 300, 384, 0.04, 4, true);
        check(&scaled(&path, Some(2.0), false));
    }

    #[test]
    fn sparse_route_matches_dense_with_clipped_implicit_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.h5ad");
        write(&path, 400, 30, 0.12, 3, true);
        // Column 3 is 90% filled: its zeros scale to below −0.8.
        let view = scaled(&path, Some(0.8), false);
        let y = dense_of(&view);
        assert!(
            y.iter().any(|r| r[2] == -0.8),
            "an implicit zero is clipped"
        );
        check(&view);
    }

    /// The cache-friendly layout changes where sums go, not what they add.
    #[test]
    fn accumulator_layout_gives_the_same_bits() {
        let (n, p) = (300usize, 40usize);
        let mut rng = crate::rng::Rng::new(7);
        let mut unit = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (mut indptr, mut indices, mut vals) = (vec![0i64], vec![], vec![]);
        for _ in 0..n {
            for j in 0..p {
                if unit() < 0.3 {
                    indices.push(j as i32);
                    vals.push(unit() * 10.0 - 3.0);
                }
            }
            indptr.push(indices.len() as i64);
        }
        let c = Csr {
            nrows: n,
            ncols: p,
            indptr,
            indices,
            data: Values::F64(vals),
        };
        let key: Vec<f64> = (0..p).map(|_| unit()).collect();
        let z0: Vec<f64> = (0..p).map(|j| j as f64 * 0.01).collect();
        let state = |rank: &[u32]| {
            let mut g = SparseGram::new(p);
            g.insert(&relabel(c.clone(), rank));
            g.finish(&z0, rank)
        };
        let identity: Vec<u32> = (0..p as u32).collect();
        let rank = rank_by_decreasing(&key);
        assert_ne!(rank, identity);
        let (a, b) = (state(&identity), state(&rank));
        let bits = |m: Mat<f64>| -> Vec<u64> {
            (0..p)
                .flat_map(|i| (0..p).map(move |j| (i, j)))
                .map(|(i, j)| m[(i, j)].to_bits())
                .collect()
        };
        assert_eq!(bits(a.matrix(true, 1.0)), bits(b.matrix(true, 1.0)));
        let mean_bits = |m: &[f64]| m.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(mean_bits(a.mean()), mean_bits(b.mean()));
    }

    #[test]
    fn relabel_orders_every_row_by_rank() {
        // Narrow (every row through the bitmap) and wide (short rows sorted,
        // long ones through the bitmap) matrices, empty rows included.
        let mut rng = crate::rng::Rng::new(11);
        for p in [7usize, 300, 5000] {
            let mut rank: Vec<u32> = (0..p as u32).collect();
            for i in (1..p).rev() {
                rank.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            let (mut indptr, mut indices, mut vals) = (vec![0i64], vec![], vec![]);
            for r in 0..200 {
                let len = (rng.next_u64() % (p.min(60) as u64 + 1)) as usize;
                let mut cols: Vec<i32> = (0..len)
                    .map(|_| (rng.next_u64() % p as u64) as i32)
                    .collect();
                cols.sort_unstable();
                cols.dedup();
                vals.extend(cols.iter().map(|&j| f64::from(j) + r as f64 * 1e-3));
                indices.extend(cols);
                indptr.push(indices.len() as i64);
            }
            let c = Csr {
                nrows: 200,
                ncols: p,
                indptr,
                indices,
                data: Values::F64(vals),
            };
            let got = relabel(c.clone(), &rank);
            let Values::F64(v) = &c.data else {
                unreachable!()
            };
            for r in 0..c.nrows {
                let (a, b) = c.row_range(r);
                let mut want: Vec<(i32, f64)> = (a..b)
                    .map(|k| (rank[c.indices[k] as usize] as i32, v[k]))
                    .collect();
                want.sort_by_key(|&(j, _)| j);
                let (ga, gb) = got.row_range(r);
                let Values::F64(gv) = &got.data else {
                    unreachable!()
                };
                let have: Vec<(i32, f64)> = (ga..gb).map(|k| (got.indices[k], gv[k])).collect();
                assert_eq!(have, want, "p {p} row {r}");
            }
        }
    }

    #[test]
    fn unsorted_and_repeated_columns_are_canonicalised() {
        let mut indptr = vec![0i64, 3, 5];
        let mut indices = vec![4, 1, 2, 3, 3];
        let mut vals = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        canonical_rows(&mut indptr, &mut indices, &mut vals);
        assert_eq!(indptr, vec![0, 3, 4]);
        assert_eq!(indices, vec![1, 2, 4, 3]);
        assert_eq!(vals, vec![2.0, 3.0, 1.0, 5.0]);
    }
}
