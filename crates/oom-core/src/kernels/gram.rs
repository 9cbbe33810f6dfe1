//! Streaming covariance for PCA: the column means and the centred
//! cross-product matrix `M2 = Σ (x − μ)(x − μ)ᵀ` of a view, in one pass.
//!
//! Rows are densified a chunk at a time (a few hundred rows, never the
//! whole matrix), each chunk is centred on its own mean and its Gram matrix
//! is formed with faer's (SYRK-like) lower-triangular matmul, in f32 or f64
//! products, then merged into an f64 state with the pairwise update of
//! Chan, Golub & LeVeque (1979), "Updating formulae and a pairwise
//! algorithm for computing sample variances", multivariate form:
//! for sets a, b with `n = n_a + n_b` and `δ = μ_b − μ_a`,
//! `μ = μ_a + δ·n_b/n` and `M2 = M2_a + M2_b + δδᵀ·n_a·n_b/n`.
//! Centring each chunk first keeps the f32 products small, so there is no
//! catastrophic cancellation when means are large relative to the spread.
//!
//! The pass is deterministic: blocks are split into one contiguous group
//! per worker, each group folds its blocks in order, and the groups are
//! combined in order.

use faer::linalg::matmul::triangular::{matmul as tri_matmul, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};
use serde::{Deserialize, Serialize};

use crate::block::{Block, Csr, Scalar};
use crate::ctx::Ctx;
use crate::error::Result;
use crate::exec::{fold_runs, BLOCK_TARGET};
use crate::kernels::merge;
use crate::plan::View;
use crate::with_values;

/// Arithmetic of the per-chunk products (accumulation is always f64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    F32,
    F64,
}

/// Rows per densified chunk: about 2M values, at least 64 rows.
pub fn chunk_rows(p: usize) -> usize {
    ((1usize << 21) / p.max(1)).clamp(64, 4096)
}

/// Write rows `r0..r1` of `block` as dense row-major f64 into `out`
/// (resized to `(r1 − r0) × ncols`).
pub fn dense_rows(block: &Block, r0: usize, r1: usize, out: &mut Vec<f64>) {
    let p = block.ncols();
    out.clear();
    out.resize((r1 - r0) * p, 0.0);
    match block {
        Block::Dense(d) => with_values!(&d.data, v => {
            for (o, x) in out.iter_mut().zip(&v[r0 * p..r1 * p]) {
                *o = x.to_f64();
            }
        }),
        Block::Csr(c) => with_values!(&c.data, v => {
            for r in r0..r1 {
                let (a, b) = c.row_range(r);
                let row = &mut out[(r - r0) * p..(r - r0 + 1) * p];
                for (&j, x) in c.indices[a..b].iter().zip(&v[a..b]) {
                    row[j as usize] += x.to_f64();
                }
            }
        }),
    }
}

/// Column means and centred cross-products of the rows seen so far.
#[derive(Debug, Clone)]
pub struct GramState {
    p: usize,
    n: u64,
    mean: Vec<f64>,
    /// Lower triangle (column-major) holds `M2`; the upper part is junk.
    m2: Mat<f64>,
    prec: Precision,
    par: Par,
    buf: Vec<f64>,
    buf32: Vec<f32>,
    tmp32: Option<Mat<f32>>,
}

impl GramState {
    pub fn new(p: usize, prec: Precision) -> Self {
        GramState {
            p,
            n: 0,
            mean: vec![0.0; p],
            m2: Mat::zeros(p, p),
            prec,
            par: Par::Seq,
            buf: Vec::new(),
            buf32: Vec::new(),
            tmp32: None,
        }
    }

    /// A state from its parts: `m2` holds `M2` in its lower triangle.
    pub fn from_parts(n: u64, mean: Vec<f64>, m2: Mat<f64>, prec: Precision) -> Self {
        let p = mean.len();
        assert_eq!((m2.nrows(), m2.ncols()), (p, p));
        GramState {
            p,
            n,
            mean,
            m2,
            prec,
            par: Par::Seq,
            buf: Vec::new(),
            buf32: Vec::new(),
            tmp32: None,
        }
    }

    /// Let faer parallelise each chunk product (when one state is fed
    /// sequentially instead of one state per worker).
    #[must_use]
    pub fn with_par(mut self, par: Par) -> Self {
        self.par = par;
        self
    }

    pub fn n(&self) -> u64 {
        self.n
    }

    pub fn ncols(&self) -> usize {
        self.p
    }

    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Add every row of `block`.
    pub fn insert_block(&mut self, block: &Block) {
        let step = chunk_rows(self.p);
        let n = block.nrows();
        let mut buf = std::mem::take(&mut self.buf);
        let mut r0 = 0;
        while r0 < n {
            let r1 = (r0 + step).min(n);
            dense_rows(block, r0, r1, &mut buf);
            self.insert_rows(&mut buf, r1 - r0);
            r0 = r1;
        }
        self.buf = buf;
    }

    /// Add `nr` dense row-major rows (the buffer is centred in place).
    pub fn insert_rows(&mut self, rows: &mut [f64], nr: usize) {
        let p = self.p;
        if nr == 0 {
            return;
        }
        debug_assert_eq!(rows.len(), nr * p);
        let mut cm = vec![0.0f64; p];
        for row in rows.chunks_exact(p) {
            for (m, x) in cm.iter_mut().zip(row) {
                *m += x;
            }
        }
        let inv = 1.0 / nr as f64;
        cm.iter_mut().for_each(|m| *m *= inv);
        for row in rows.chunks_exact_mut(p) {
            for (x, m) in row.iter_mut().zip(&cm) {
                *x -= m;
            }
        }
        // Chunk Gram, lower triangle, added to M2.
        match self.prec {
            Precision::F64 => {
                let c = MatRef::from_row_major_slice(rows, nr, p);
                tri_matmul(
                    self.m2.as_mut(),
                    BlockStructure::TriangularLower,
                    Accum::Add,
                    c.transpose(),
                    BlockStructure::Rectangular,
                    c,
                    BlockStructure::Rectangular,
                    1.0,
                    self.par,
                );
            }
            Precision::F32 => {
                let mut b32 = std::mem::take(&mut self.buf32);
                b32.clear();
                b32.extend(rows.iter().map(|&x| x as f32));
                let tmp = self.tmp32.get_or_insert_with(|| Mat::zeros(p, p));
                let c = MatRef::from_row_major_slice(&b32[..], nr, p);
                tri_matmul(
                    tmp.as_mut(),
                    BlockStructure::TriangularLower,
                    Accum::Replace,
                    c.transpose(),
                    BlockStructure::Rectangular,
                    c,
                    BlockStructure::Rectangular,
                    1.0f32,
                    self.par,
                );
                for j in 0..p {
                    let src = &tmp.col_as_slice(j)[j..];
                    let dst = &mut self.m2.col_as_slice_mut(j)[j..];
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d += f64::from(*s);
                    }
                }
                self.buf32 = b32;
            }
        }
        self.merge_mean(nr as u64, &cm);
    }

    /// Chan's update of the mean and the rank-one correction of M2 for a
    /// set of `nb` rows with mean `mb` whose own M2 is already added.
    fn merge_mean(&mut self, nb: u64, mb: &[f64]) {
        let na = self.n;
        let n = na + nb;
        let (naf, nbf, nf) = (na as f64, nb as f64, n as f64);
        let delta: Vec<f64> = mb.iter().zip(&self.mean).map(|(b, a)| b - a).collect();
        if na > 0 {
            let w = naf * nbf / nf;
            for j in 0..self.p {
                let dj = w * delta[j];
                if dj == 0.0 {
                    continue;
                }
                let col = &mut self.m2.col_as_slice_mut(j)[j..];
                for (c, d) in col.iter_mut().zip(&delta[j..]) {
                    *c += dj * d;
                }
            }
        }
        let f = nbf / nf;
        for (m, d) in self.mean.iter_mut().zip(&delta) {
            *m += d * f;
        }
        self.n = n;
    }

    /// Merge another state (of rows disjoint from ours) into this one.
    pub fn combine(&mut self, other: &GramState) {
        if other.n == 0 {
            return;
        }
        for j in 0..self.p {
            let src = &other.m2.col_as_slice(j)[j..];
            let dst = &mut self.m2.col_as_slice_mut(j)[j..];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        }
        self.merge_mean(other.n, &other.mean);
    }
}

/// The state as bytes see it: `M2`'s lower triangle, column by column.
#[derive(Serialize, Deserialize)]
struct GramWire {
    n: u64,
    mean: Vec<f64>,
    lower: Vec<f64>,
    prec: Precision,
}

impl Serialize for GramState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let lower = (0..self.p)
            .flat_map(|j| self.m2.col_as_slice(j)[j..].iter().copied())
            .collect();
        GramWire {
            n: self.n,
            mean: self.mean.clone(),
            lower,
            prec: self.prec,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for GramState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = GramWire::deserialize(d)?;
        let p = w.mean.len();
        if w.lower.len() != p * (p + 1) / 2 {
            return Err(serde::de::Error::custom(format!(
                "a Gram state of {p} columns holds {} values of M2, not {}",
                p * (p + 1) / 2,
                w.lower.len()
            )));
        }
        let mut m2 = Mat::zeros(p, p);
        let mut rest = &w.lower[..];
        for j in 0..p {
            let (col, tail) = rest.split_at(p - j);
            m2.col_as_slice_mut(j)[j..].copy_from_slice(col);
            rest = tail;
        }
        Ok(GramState::from_parts(w.n, w.mean, m2, w.prec))
    }
}

impl GramState {
    /// Full symmetric `M2` (centred) or `XᵀX` (uncentred), scaled by `scale`.
    pub fn matrix(&self, centered: bool, scale: f64) -> Mat<f64> {
        let p = self.p;
        let nf = self.n as f64;
        Mat::from_fn(p, p, |i, j| {
            let (i, j) = if i >= j { (i, j) } else { (j, i) };
            let mut v = self.m2[(i, j)];
            if !centered {
                v += nf * self.mean[i] * self.mean[j];
            }
            v * scale
        })
    }

    /// Sample covariance with `ddof` (scanpy/sklearn use 1).
    pub fn covariance(&self, ddof: u64) -> Mat<f64> {
        let d = self.n.saturating_sub(ddof).max(1) as f64;
        self.matrix(true, 1.0 / d)
    }
}

/// Memory we allow for the per-worker p × p accumulators together.
const GRAM_BUDGET: usize = 1 << 30;

/// One pass over `view`: means and centred cross-products of its columns.
/// Each worker keeps its own p × p state when they fit in the budget
/// (1 GiB); otherwise one f64 state is fed in order and faer parallelises
/// the products.
pub fn gram(ctx: &Ctx, view: &View, prec: Precision) -> Result<GramState> {
    let p = usize::try_from(view.ncols()).expect("fits");
    let runs = ctx.runs();
    let per_state = p * p * if prec == Precision::F32 { 12 } else { 8 };
    // Large p: one state (f64 products, no f32 scratch) fed in order, with
    // faer parallelising each chunk product.
    let (groups, par, prec) = if per_state.saturating_mul(runs) <= GRAM_BUDGET {
        (runs, Par::Seq, prec)
    } else {
        (1, Par::rayon(0), Precision::F64)
    };
    let (states, _) = fold_runs(
        ctx,
        view,
        BLOCK_TARGET,
        groups,
        None,
        || GramState::new(p, prec).with_par(par),
        |s, _, _, b| {
            s.insert_block(&b);
            Ok(())
        },
    )?;
    Ok(merge(
        states,
        || GramState::new(p, prec),
        GramState::combine,
    ))
}

/// `w += Xᵀ(X·q)` over the rows of a CSR block, plus column sums and sums
/// of squares (`q`, `w`: p × b row-major).
///
/// Rows are taken a sub-block at a time (its `T = X_s·q`, sub × b, fits in
/// L2) and regrouped by column (a counting sort), so that each row of `q`
/// is read once and each row of `w` updated once per sub-block while the
/// scattered accesses hit `T` only.
#[inline(always)]
fn csr_gram_times_impl<T: Scalar>(
    c: &Csr,
    v: &[T],
    q: &[f64],
    b: usize,
    w: &mut [f64],
    sum: &mut [f64],
    sumsq: &mut [f64],
) {
    let p = sum.len();
    let sub = ((1usize << 18) / (8 * b.max(1))).clamp(32, 4096);
    let mut colptr = vec![0usize; p + 1];
    let mut cursor = vec![0usize; p];
    let mut rows: Vec<u32> = Vec::new();
    let mut vals: Vec<f64> = Vec::new();
    let mut tm = vec![0.0f64; sub * b];
    let mut acc = vec![0.0f64; b];
    let mut r0 = 0;
    while r0 < c.nrows {
        let r1 = (r0 + sub).min(c.nrows);
        let (lo, _) = c.row_range(r0);
        let (_, hi) = c.row_range(r1 - 1);
        colptr.iter_mut().for_each(|x| *x = 0);
        for &j in &c.indices[lo..hi] {
            let j = j as usize;
            colptr[j + 1] += 1;
        }
        for j in 0..p {
            colptr[j + 1] += colptr[j];
        }
        cursor.copy_from_slice(&colptr[..p]);
        rows.resize(hi - lo, 0);
        vals.resize(hi - lo, 0.0);
        for r in r0..r1 {
            let (a, e) = c.row_range(r);
            for (&j, x) in c.indices[a..e].iter().zip(&v[a..e]) {
                let j = j as usize;
                let at = cursor[j];
                cursor[j] += 1;
                rows[at] = (r - r0) as u32;
                vals[at] = x.to_f64();
            }
        }
        // T = X_s·q.
        let tm = &mut tm[..(r1 - r0) * b];
        tm.iter_mut().for_each(|x| *x = 0.0);
        for j in 0..p {
            let (a, e) = (colptr[j], colptr[j + 1]);
            if a == e {
                continue;
            }
            let qrow = &q[j * b..(j + 1) * b];
            let (mut s1, mut s2) = (0.0, 0.0);
            for t in a..e {
                let x = vals[t];
                s1 += x;
                s2 += x * x;
                let trow = &mut tm[rows[t] as usize * b..(rows[t] as usize + 1) * b];
                for (ti, qi) in trow.iter_mut().zip(qrow) {
                    *ti += x * qi;
                }
            }
            sum[j] += s1;
            sumsq[j] += s2;
        }
        // w += X_sᵀ·T.
        for j in 0..p {
            let (a, e) = (colptr[j], colptr[j + 1]);
            if a == e {
                continue;
            }
            acc.iter_mut().for_each(|x| *x = 0.0);
            for t in a..e {
                let x = vals[t];
                let trow = &tm[rows[t] as usize * b..(rows[t] as usize + 1) * b];
                for (ai, ti) in acc.iter_mut().zip(trow) {
                    *ai += x * ti;
                }
            }
            for (wi, ai) in w[j * b..(j + 1) * b].iter_mut().zip(&acc) {
                *wi += ai;
            }
        }
        r0 = r1;
    }
}

/// The same loop compiled for AVX2 (picked at run time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn csr_gram_times_avx2<T: Scalar>(
    c: &Csr,
    v: &[T],
    q: &[f64],
    b: usize,
    w: &mut [f64],
    sum: &mut [f64],
    sumsq: &mut [f64],
) {
    csr_gram_times_impl(c, v, q, b, w, sum, sumsq);
}

fn csr_gram_times<T: Scalar>(
    c: &Csr,
    v: &[T],
    q: &[f64],
    b: usize,
    w: &mut [f64],
    sum: &mut [f64],
    sumsq: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { csr_gram_times_avx2(c, v, q, b, w, sum, sumsq) };
        return;
    }
    csr_gram_times_impl(c, v, q, b, w, sum, sumsq);
}

/// `XᵀX·Q` for a p × b block `Q` (row-major), with the column sums and
/// sums of squares, accumulated over blocks: one pass of the streamed
/// Krylov solver. Sparse blocks use their non-zeros only (`2·nnz·b` flops
/// per product); dense blocks use faer products on row chunks.
pub struct GramTimes<'q> {
    p: usize,
    b: usize,
    q: &'q [f64],
    pub n: u64,
    /// p × b, row-major.
    pub w: Vec<f64>,
    pub sum: Vec<f64>,
    pub sumsq: Vec<f64>,
    buf: Vec<f64>,
}

impl<'q> GramTimes<'q> {
    pub fn new(q: &'q [f64], p: usize, b: usize) -> Self {
        assert_eq!(q.len(), p * b);
        GramTimes {
            p,
            b,
            q,
            n: 0,
            w: vec![0.0; p * b],
            sum: vec![0.0; p],
            sumsq: vec![0.0; p],
            buf: Vec::new(),
        }
    }

    pub fn insert_block(&mut self, block: &Block) {
        let (p, b) = (self.p, self.b);
        self.n += block.nrows() as u64;
        match block {
            Block::Csr(c) => with_values!(&c.data, v => {
                csr_gram_times(c, v, self.q, b, &mut self.w, &mut self.sum, &mut self.sumsq);
            }),
            Block::Dense(_) => {
                let step = chunk_rows(p);
                let n = block.nrows();
                let mut buf = std::mem::take(&mut self.buf);
                let mut r0 = 0;
                while r0 < n {
                    let r1 = (r0 + step).min(n);
                    dense_rows(block, r0, r1, &mut buf);
                    for row in buf.chunks_exact(p) {
                        for ((s, q), &x) in self.sum.iter_mut().zip(&mut self.sumsq).zip(row) {
                            *s += x;
                            *q += x * x;
                        }
                    }
                    let c = MatRef::from_row_major_slice(&buf[..], r1 - r0, p);
                    let q = MatRef::from_row_major_slice(self.q, p, b);
                    let mut t = Mat::<f64>::zeros(r1 - r0, b);
                    faer::linalg::matmul::matmul(t.as_mut(), Accum::Replace, c, q, 1.0, Par::Seq);
                    let w = faer::MatMut::from_row_major_slice_mut(&mut self.w[..], p, b);
                    faer::linalg::matmul::matmul(
                        w,
                        Accum::Add,
                        c.transpose(),
                        t.as_ref(),
                        1.0,
                        Par::Seq,
                    );
                    r0 = r1;
                }
                self.buf = buf;
            }
        }
    }

    pub fn combine(&mut self, other: &GramTimes<'_>) {
        self.n += other.n;
        for (a, b) in self.w.iter_mut().zip(&other.w) {
            *a += b;
        }
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.sumsq.iter_mut().zip(&other.sumsq) {
            *a += b;
        }
    }
}

/// One pass: `XᵀX·Q`, column sums and sums of squares of `view`.
pub fn gram_times<'q>(ctx: &Ctx, view: &View, q: &'q [f64], b: usize) -> Result<GramTimes<'q>> {
    let p = usize::try_from(view.ncols()).expect("fits");
    let runs = ctx.runs();
    let (states, _) = fold_runs(
        ctx,
        view,
        BLOCK_TARGET,
        runs,
        None,
        || GramTimes::new(q, p, b),
        |s, _, _, blk| {
            s.insert_block(&blk);
            Ok(())
        },
    )?;
    Ok(merge(
        states,
        || GramTimes::new(q, p, b),
        GramTimes::combine,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Csr, Dense, Values};

    fn naive(rows: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let n = rows.len() as f64;
        let p = rows[0].len();
        let mean: Vec<f64> = (0..p)
            .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect();
        let m2 = (0..p)
            .map(|i| {
                (0..p)
                    .map(|j| {
                        rows.iter()
                            .map(|r| (r[i] - mean[i]) * (r[j] - mean[j]))
                            .sum()
                    })
                    .collect()
            })
            .collect();
        (mean, m2)
    }

    fn data(n: usize, p: usize) -> Vec<Vec<f64>> {
        (0..n)
            .map(|r| {
                (0..p)
                    .map(|c| {
                        let v = ((r * 31 + c * 17) % 13) as f64 * 0.5 + (c as f64) * 50.0;
                        if (r + 2 * c) % 5 == 0 {
                            0.0
                        } else {
                            v
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn to_csr(rows: &[Vec<f64>]) -> Block {
        let p = rows[0].len();
        let (mut indptr, mut indices, mut data) = (vec![0i64], vec![], vec![]);
        for r in rows {
            for (j, &v) in r.iter().enumerate() {
                if v != 0.0 {
                    indices.push(j as i32);
                    data.push(v as f32);
                }
            }
            indptr.push(indices.len() as i64);
        }
        Block::Csr(Csr {
            nrows: rows.len(),
            ncols: p,
            indptr,
            indices,
            data: Values::F32(data),
        })
    }

    #[test]
    fn gram_times_sparse_and_dense_agree() {
        let rows = data(150, 9);
        let b = 3;
        let q: Vec<f64> = (0..9 * b).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
        let mut s1 = GramTimes::new(&q, 9, b);
        s1.insert_block(&to_csr(&rows));
        let dense = Block::Dense(Dense {
            nrows: 150,
            ncols: 9,
            data: Values::F64(rows.iter().flatten().copied().collect()),
        });
        let mut s2 = GramTimes::new(&q, 9, b);
        s2.insert_block(&dense);
        for i in 0..9 {
            for c in 0..b {
                let want: f64 = (0..9)
                    .map(|j| {
                        rows.iter()
                            .map(|r| (r[i] as f32 as f64) * (r[j] as f32 as f64))
                            .sum::<f64>()
                            * q[j * b + c]
                    })
                    .sum();
                assert!((s1.w[i * b + c] - want).abs() < 1e-9 * want.abs().max(1.0));
                let want2: f64 = (0..9)
                    .map(|j| rows.iter().map(|r| r[i] * r[j]).sum::<f64>() * q[j * b + c])
                    .sum();
                assert!((s2.w[i * b + c] - want2).abs() < 1e-9 * want2.abs().max(1.0));
            }
        }
    }

    #[test]
    fn matches_naive_in_pieces_and_precisions() {
        let rows = data(300, 7);
        let (mean, m2) = naive(&rows);
        for prec in [Precision::F64, Precision::F32] {
            let mut total = GramState::new(7, prec);
            for piece in rows.chunks(97) {
                let mut s = GramState::new(7, prec);
                s.insert_block(&to_csr(piece));
                total.combine(&s);
            }
            let dense = Block::Dense(Dense {
                nrows: 300,
                ncols: 7,
                data: Values::F64(rows.iter().flatten().copied().collect()),
            });
            let mut one = GramState::new(7, prec);
            one.insert_block(&dense);
            let tol = if prec == Precision::F64 { 1e-10 } else { 1e-5 };
            for st in [&total, &one] {
                assert_eq!(st.n(), 300);
                for (got, want) in st.mean().iter().zip(&mean) {
                    assert!((got - want).abs() < 1e-9 * want.abs().max(1.0));
                }
                let m = st.matrix(true, 1.0);
                let unc = st.matrix(false, 1.0);
                for i in 0..7 {
                    for j in 0..7 {
                        let scale = (m2[i][i] * m2[j][j]).sqrt().max(1.0);
                        assert!(
                            (m[(i, j)] - m2[i][j]).abs() < tol * scale,
                            "{prec:?} {i} {j}"
                        );
                        let u: f64 = rows.iter().map(|r| r[i] * r[j]).sum();
                        assert!((unc[(i, j)] - u).abs() < 1e-6 * u.abs().max(1.0));
                    }
                }
            }
        }
    }
}
