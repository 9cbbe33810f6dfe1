//! Per-column (gene) moments, optionally per row group (batch), in one pass.
//!
//! Formulas follow scanpy's `_get_mean_var` (itself after sklearn's
//! `mean_variance_axis`): `mean = Σx/n`, `var = (Σx²/n − mean²)·n/(n−1)`,
//! accumulated in f64. Options reproduce what scanpy's HVG flavors feed
//! into it: values mapped through `expm1` (`seurat`), clipped per group and
//! column (`seurat_v3`'s second pass). A separate pass accumulates
//! analytic Pearson residuals (Lause et al. 2021; scanpy's
//! `experimental.pp.highly_variable_genes`): `μ = g_j·c_i/T`,
//! `r = clip((x − μ)/√(μ + μ²/θ), ±clip)`, variance `Σr²/n − (Σr/n)²`.

use std::sync::Arc;

use crate::block::{is_whole, Block, Dtype};
use crate::cpu::prefetch;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::kernels::{fold_blocks, merge};
use crate::memo::Memo;
use crate::plan::View;

/// Row group meaning "leave this row out".
pub const SKIP: u32 = u32::MAX;

/// How a stored value enters the statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueMap {
    Identity,
    /// `expm1(x·factor)`, rounded to the block's type at each step (numpy
    /// computes it in place on a float32 copy).
    Expm1 {
        factor: Option<f64>,
    },
}

#[derive(Debug, Clone)]
pub struct MomentParams {
    /// Group of each output row (`SKIP` = ignored); `None` = one group.
    pub groups: Option<Arc<Vec<u32>>>,
    pub n_groups: usize,
    pub map: ValueMap,
    /// Upper clip per group and column (`n_groups × ncols`), applied after `map`.
    pub clip: Option<Arc<Vec<f64>>>,
    /// Also Σx and Σx² of the values as stored (before `map`), over all
    /// groups' rows: seurat's HVG pass then leaves `scale` the moments of
    /// the log data it needs.
    pub unmapped: bool,
}

impl Default for MomentParams {
    fn default() -> Self {
        MomentParams {
            groups: None,
            n_groups: 1,
            map: ValueMap::Identity,
            clip: None,
            unmapped: false,
        }
    }
}

/// The result of [`moments`]: row counts per group and, per group × column, Σx, Σx²,
/// the count of values `> 0` and of values `≠ 0` (scipy's `getnnz` after
/// `eliminate_zeros`). Also whether any value was negative or
/// not an integer (scanpy's `check_nonnegative_integers`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Moments {
    pub ncols: usize,
    pub n: Vec<u64>,
    pub sum: Vec<f64>,
    pub sumsq: Vec<f64>,
    pub n_pos: Vec<u64>,
    pub n_nonzero: Vec<u64>,
    pub non_integer: bool,
    /// With [`MomentParams::unmapped`]: Σx and Σx² per column of the values
    /// before `map` (`None` otherwise).
    pub unmapped: Option<Unmapped>,
}

/// Column sums of the stored values and of their squares, over the rows
/// of every group.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Unmapped {
    pub n: u64,
    pub sum: Vec<f64>,
    pub sumsq: Vec<f64>,
}

#[inline]
fn round32(x: f64) -> f64 {
    f64::from(x as f32)
}

/// One group × column's accumulators side by side, so a stored value
/// updates one cache line rather than four arrays (with hundreds of groups
/// the state is far larger than the cache).
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    sum: f64,
    sumsq: f64,
    n_pos: u64,
    n_nonzero: u64,
}

/// The per-thread state of [`moments`].
struct Acc {
    ncols: usize,
    n: Vec<u64>,
    cells: Vec<Cell>,
    non_integer: bool,
    /// `(Σx, Σx²)` per column of the unmapped values, when asked for.
    unmapped: Vec<(f64, f64)>,
}

impl Acc {
    fn new(n_groups: usize, ncols: usize) -> Self {
        Acc {
            ncols,
            n: vec![0; n_groups],
            cells: vec![Cell::default(); n_groups * ncols],
            non_integer: false,
            unmapped: Vec::new(),
        }
    }

    /// Also accumulate the unmapped values' sums (see [`MomentParams::unmapped`]).
    fn with_unmapped(mut self, yes: bool) -> Self {
        if yes {
            self.unmapped = vec![(0.0, 0.0); self.ncols];
        }
        self
    }

    /// Add one block; return the (mapped) row sums.
    fn insert(&mut self, block: &Block, row0: u64, p: &MomentParams) -> Vec<f64> {
        let f32_vals = block.dtype() == Dtype::F32;
        // numpy squares a dense float32 matrix in float32.
        let round_sq = f32_vals && matches!(block, Block::Dense(_)) && p.clip.is_none();
        let r0 = usize::try_from(row0).expect("fits");
        let ncols = self.ncols;
        let mut row_sums = vec![0.0; block.nrows()];
        let mut non_integer = false;
        let group = |r: usize| p.groups.as_ref().map_or(0, |gs| gs[r0 + r]);
        // A row's values repeat (few distinct counts): remember expm1's results.
        let mut expm1 = Memo::new(|y: f64| {
            if f32_vals {
                round32(y.exp_m1())
            } else {
                y.exp_m1()
            }
        });
        // As an unmapped pass would square them (without clip).
        let round_sq_unmapped = f32_vals && matches!(block, Block::Dense(_));
        let unmapped = &mut self.unmapped;
        // Rows taken group by group (stable, so each group × column sum adds
        // in row order as before): with many groups, consecutive rows then
        // update the same group's columns, which stay in cache.
        let mut rows: Vec<usize> = (0..block.nrows()).collect();
        if p.n_groups > 1 {
            rows.sort_by_key(|&r| group(r));
        }
        for r in rows {
            let g = group(r);
            if g == SKIP {
                continue;
            }
            let g = g as usize;
            self.n[g] += 1;
            let base = g * ncols;
            let cells = &mut self.cells[base..base + ncols];
            let mut rs = 0.0;
            let (cells_at, unmapped_at) = (cells.as_ptr(), unmapped.as_ptr());
            let with_unmapped = !unmapped.is_empty();
            // Inlined: called per value from each dtype's loop.
            block.for_row_ahead(
                r,
                |j| {
                    prefetch(cells_at.wrapping_add(j));
                    if with_unmapped {
                        prefetch(unmapped_at.wrapping_add(j));
                    }
                },
                #[inline(always)]
                |c, x| {
                    // Checked until the first value that is not a count.
                    if !non_integer && (x < 0.0 || !is_whole(x)) {
                        non_integer = true;
                    }
                    let mut v = match p.map {
                        ValueMap::Identity => x,
                        ValueMap::Expm1 { factor } => {
                            let y =
                                factor.map_or(x, |f| if f32_vals { round32(x * f) } else { x * f });
                            expm1.get(y)
                        }
                    };
                    if let Some(clip) = &p.clip {
                        v = v.min(clip[base + c]);
                    }
                    rs += v;
                    let cell = &mut cells[c];
                    cell.sum += v;
                    cell.sumsq += if round_sq { round32(v * v) } else { v * v };
                    cell.n_pos += u64::from(x > 0.0);
                    cell.n_nonzero += u64::from(x != 0.0);
                    if let Some((sum, sumsq)) = unmapped.get_mut(c) {
                        *sum += x;
                        *sumsq += if round_sq_unmapped {
                            round32(x * x)
                        } else {
                            x * x
                        };
                    }
                },
            );
            row_sums[r] = rs;
        }
        self.non_integer |= non_integer;
        row_sums
    }

    fn combine(&mut self, o: &Acc) {
        for (a, b) in self.n.iter_mut().zip(&o.n) {
            *a += b;
        }
        for (a, b) in self.cells.iter_mut().zip(&o.cells) {
            a.sum += b.sum;
            a.sumsq += b.sumsq;
            a.n_pos += b.n_pos;
            a.n_nonzero += b.n_nonzero;
        }
        for (a, b) in self.unmapped.iter_mut().zip(&o.unmapped) {
            a.0 += b.0;
            a.1 += b.1;
        }
        self.non_integer |= o.non_integer;
    }

    fn into_moments(self) -> Moments {
        let c = &self.cells;
        Moments {
            ncols: self.ncols,
            sum: c.iter().map(|x| x.sum).collect(),
            sumsq: c.iter().map(|x| x.sumsq).collect(),
            n_pos: c.iter().map(|x| x.n_pos).collect(),
            n_nonzero: c.iter().map(|x| x.n_nonzero).collect(),
            unmapped: (!self.unmapped.is_empty()).then(|| Unmapped {
                n: self.n.iter().sum(),
                sum: self.unmapped.iter().map(|x| x.0).collect(),
                sumsq: self.unmapped.iter().map(|x| x.1).collect(),
            }),
            n: self.n,
            non_integer: self.non_integer,
        }
    }
}

impl Moments {
    /// Add the moments of other rows (a later row range, another worker's).
    /// The sums add in the order the states are combined: combine in row
    /// order for reproducible floating point.
    pub fn combine(&mut self, other: &Moments) -> Result<()> {
        if (self.ncols, self.n.len()) != (other.ncols, other.n.len()) {
            return Err(crate::OomError::Value(format!(
                "moments of {} groups × {} columns cannot combine with {} × {}",
                self.n.len(),
                self.ncols,
                other.n.len(),
                other.ncols
            )));
        }
        let add_u = |a: &mut [u64], b: &[u64]| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        let add_f = |a: &mut [f64], b: &[f64]| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        add_u(&mut self.n, &other.n);
        add_f(&mut self.sum, &other.sum);
        add_f(&mut self.sumsq, &other.sumsq);
        add_u(&mut self.n_pos, &other.n_pos);
        add_u(&mut self.n_nonzero, &other.n_nonzero);
        self.non_integer |= other.non_integer;
        self.unmapped = match (self.unmapped.take(), &other.unmapped) {
            (Some(mut u), Some(v)) => {
                u.n += v.n;
                add_f(&mut u.sum, &v.sum);
                add_f(&mut u.sumsq, &v.sumsq);
                Some(u)
            }
            _ => None,
        };
        Ok(())
    }

    /// `(mean, var)` per group × column; `var` uses scanpy's `n/(n−1)`
    /// correction (skipped when `n == 1`).
    pub fn finalize(&self) -> (Vec<f64>, Vec<f64>) {
        let mut mean = vec![0.0; self.sum.len()];
        let mut var = vec![0.0; self.sum.len()];
        for (g, &n) in self.n.iter().enumerate() {
            let k = g * self.ncols..(g + 1) * self.ncols;
            mean_var(
                n,
                &self.sum[k.clone()],
                &self.sumsq[k.clone()],
                &mut mean[k.clone()],
                &mut var[k],
            );
        }
        (mean, var)
    }
}

impl Unmapped {
    /// `(mean, var)` per column, as [`Moments::finalize`].
    pub fn finalize(&self) -> (Vec<f64>, Vec<f64>) {
        let (mut mean, mut var) = (vec![0.0; self.sum.len()], vec![0.0; self.sum.len()]);
        mean_var(self.n, &self.sum, &self.sumsq, &mut mean, &mut var);
        (mean, var)
    }
}

fn mean_var(n: u64, sum: &[f64], sumsq: &[f64], mean: &mut [f64], var: &mut [f64]) {
    let nf = n as f64;
    for c in 0..sum.len() {
        let m = sum[c] / nf;
        let mut v = sumsq[c] / nf - m * m;
        if n != 1 {
            v *= nf / (nf - 1.0);
        }
        mean[c] = m;
        var[c] = v;
    }
}

/// One pass: the moments and the row sums (after `map` and `clip`).
pub fn moments(ctx: &Ctx, view: &View, p: &MomentParams) -> Result<(Moments, Vec<f64>)> {
    let ncols = usize::try_from(view.ncols()).expect("fits");
    let (states, parts) = fold_blocks(
        ctx,
        view,
        || Acc::new(p.n_groups, ncols).with_unmapped(p.unmapped),
        |m, a, _, b| Ok(m.insert(&b, a, p)),
    )?;
    let out = merge(
        states,
        || Acc::new(p.n_groups, ncols).with_unmapped(p.unmapped),
        Acc::combine,
    );
    Ok((out.into_moments(), parts.into_iter().flatten().collect()))
}

/// Inputs of the Pearson-residual pass.
#[derive(Debug, Clone)]
pub struct ResidualParams {
    pub groups: Option<Arc<Vec<u32>>>,
    pub n_groups: usize,
    /// Row sums per output row.
    pub row_sum: Arc<Vec<f64>>,
    /// Column sums per group × column (columns summing to 0 are skipped).
    pub col_sum: Arc<Vec<f64>>,
    /// Total per group.
    pub total: Vec<f64>,
    pub theta: f64,
    pub clip: f64,
    /// Round `g_j·c_i` to float32 (scanpy's numba kernel multiplies the
    /// float32 sums of float32 data in float32).
    pub f32_product: bool,
}

/// The residual sums of one row over columns `cols`, `x[j - cols.start]`
/// being the row's value in column `j`, and the row's place `row` in the
/// matrix. Without `mean`: `acc[g·ncols + j] += r`; with `mean`:
/// `+= (r − mean)²`. Each column sees its cells in order across calls
/// (scanpy's summation order, so the results match it to the last bit).
/// Branch-free, so the compiler can vectorise the divisions and square roots.
pub fn residual_row(
    x: &[f64],
    row: usize,
    p: &ResidualParams,
    mean: Option<&[f64]>,
    acc: &mut [f64],
    cols: std::ops::Range<usize>,
    ncols: usize,
) {
    let g = p.groups.as_ref().map_or(0, |gs| gs[row]);
    if g == SKIP {
        return;
    }
    let base = g as usize * ncols;
    let (ci, t) = (p.row_sum[row], p.total[g as usize]);
    let (theta, clip) = (p.theta, p.clip);
    let span = base + cols.start..base + cols.end;
    let (gs, acc) = (&p.col_sum[span.clone()], &mut acc[span.clone()]);
    let res = |x: f64, g: f64| {
        let prod = if p.f32_product {
            round32(g * ci)
        } else {
            g * ci
        };
        let mu = prod / t;
        let r = (x - mu) / (mu + mu * mu / theta).sqrt();
        // Python's min(max(r, -clip), clip): NaN (a cell without counts)
        // propagates, as in scanpy.
        let r = if -clip > r { -clip } else { r };
        if clip < r {
            clip
        } else {
            r
        }
    };
    // A column without counts is skipped: adding +0 leaves its 0 as it is.
    let terms = x.iter().zip(gs).zip(acc.iter_mut());
    match mean {
        None => {
            for ((&x, &g), a) in terms {
                let r = res(x, g);
                *a += if g == 0.0 { 0.0 } else { r };
            }
        }
        Some(m) => {
            for (((&x, &g), a), &m) in terms.zip(&m[span]) {
                let d = res(x, g) - m;
                *a += if g == 0.0 { 0.0 } else { d * d };
            }
        }
    }
}

/// [`residual_row`] over every row of an f64 block (rows `row0..`): a dense
/// row as it is, a CSR row scattered into a zeroed scratch row of the
/// column range (no dense copy of the whole block).
fn residual_rows(
    block: &Block,
    row0: usize,
    p: &ResidualParams,
    mean: Option<&[f64]>,
    acc: &mut [f64],
    cols: std::ops::Range<usize>,
    ncols: usize,
) {
    match block {
        Block::Dense(d) => {
            let v = d.data.as_slice::<f64>().expect("f64");
            for r in 0..d.nrows {
                let x = &v[r * ncols + cols.start..r * ncols + cols.end];
                residual_row(x, row0 + r, p, mean, acc, cols.clone(), ncols);
            }
        }
        Block::Csr(c) => {
            let v = c.data.as_slice::<f64>().expect("f64");
            let mut scratch = vec![0.0; cols.len()];
            let (c0, c1) = (cols.start as i32, cols.end as i32);
            for r in 0..c.nrows {
                let (a, b) = (c.indptr[r] as usize, c.indptr[r + 1] as usize);
                let idx = &c.indices[a..b];
                let lo = a + idx.partition_point(|&j| j < c0);
                let hi = a + idx.partition_point(|&j| j < c1);
                for k in lo..hi {
                    scratch[(c.indices[k] - c0) as usize] = v[k];
                }
                residual_row(&scratch, row0 + r, p, mean, acc, cols.clone(), ncols);
                for k in lo..hi {
                    scratch[(c.indices[k] - c0) as usize] = 0.0;
                }
            }
        }
    }
}

/// Second step of the Pearson-residual HVG: residual variance (ddof 0) per
/// group × column, as scanpy computes it (mean first, then the squared
/// deviations; two passes over the data). Blocks are read in order; the
/// columns of each block are processed in parallel.
pub fn residual_variances(ctx: &Ctx, view: &View, p: &ResidualParams) -> Result<Vec<f64>> {
    use rayon::prelude::*;
    let ncols = usize::try_from(view.ncols()).expect("fits");
    let nrows = view.nrows();
    let mut n = vec![0u64; p.n_groups];
    for r in 0..usize::try_from(nrows).expect("fits") {
        let g = p.groups.as_ref().map_or(0, |gs| gs[r]);
        if g != SKIP {
            n[g as usize] += 1;
        }
    }
    let step = (crate::exec::BLOCK_TARGET / ncols.max(1) as u64).max(1);
    let chunk = ncols
        .div_ceil(rayon::current_num_threads().max(1) * 4)
        .max(1);
    let run = |mean: Option<&[f64]>| -> Result<Vec<f64>> {
        // one accumulator slice per column chunk, groups interleaved by chunk
        let mut parts: Vec<Vec<f64>> = (0..ncols.div_ceil(chunk))
            .map(|_| vec![0.0; p.n_groups * ncols])
            .collect();
        let mut a = 0u64;
        ctx.start_pass(nrows);
        while a < nrows {
            ctx.check()?;
            let b = (a + step).min(nrows);
            let block = crate::plan::cast_block(view.read(a, b)?, Dtype::F64);
            let row0 = usize::try_from(a).expect("fits");
            parts.par_iter_mut().enumerate().for_each(|(i, acc)| {
                let cols = i * chunk..((i + 1) * chunk).min(ncols);
                residual_rows(&block, row0, p, mean, acc, cols, ncols);
            });
            ctx.advance(b - a);
            a = b;
        }
        let mut out = vec![0.0; p.n_groups * ncols];
        for (i, acc) in parts.iter().enumerate() {
            for g in 0..p.n_groups {
                for j in i * chunk..((i + 1) * chunk).min(ncols) {
                    out[g * ncols + j] = acc[g * ncols + j];
                }
            }
        }
        Ok(out)
    };
    let mut mean = run(None)?;
    for g in 0..p.n_groups {
        for j in 0..ncols {
            mean[g * ncols + j] /= n[g] as f64;
        }
    }
    let mut var = run(Some(&mean))?;
    for g in 0..p.n_groups {
        for j in 0..ncols {
            var[g * ncols + j] /= n[g] as f64;
        }
    }
    Ok(var)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Csr, Dense, Values};

    fn csr() -> Block {
        Block::Csr(Csr {
            nrows: 3,
            ncols: 2,
            indptr: vec![0, 1, 3, 4],
            indices: vec![0, 0, 1, 1],
            data: Values::F64(vec![1.0, 3.0, 2.0, 4.0]),
        })
    }

    #[test]
    fn combine_adds_states_and_checks_shapes() {
        let one = || {
            let mut acc = Acc::new(1, 2);
            acc.insert(&csr(), 0, &MomentParams::default());
            acc.into_moments()
        };
        let mut two = one();
        two.combine(&one()).unwrap();
        let a = one();
        assert_eq!(two.n, vec![2 * a.n[0]]);
        assert_eq!(two.sum, a.sum.iter().map(|x| 2.0 * x).collect::<Vec<_>>());
        assert_eq!(two.n_nonzero[1], 2 * a.n_nonzero[1]);
        // the same rows twice: the same means and population spread
        assert_eq!(two.finalize().0, a.finalize().0);
        assert!(two.combine(&Acc::new(2, 2).into_moments()).is_err());
    }

    #[test]
    fn mean_var_ddof1_and_groups() {
        let mut acc = Acc::new(1, 2);
        let rs = acc.insert(&csr(), 0, &MomentParams::default());
        let m = acc.into_moments();
        assert_eq!(rs, vec![1.0, 5.0, 4.0]);
        let (mean, var) = m.finalize();
        assert!((mean[0] - 4.0 / 3.0).abs() < 1e-15);
        // column 0 = [1, 3, 0]: sample variance
        let v0 =
            ((1.0f64 - 4.0 / 3.0).powi(2) + (3.0f64 - 4.0 / 3.0).powi(2) + (4.0f64 / 3.0).powi(2))
                / 2.0;
        assert!((var[0] - v0).abs() < 1e-12);
        assert_eq!(m.n_pos, vec![2, 2]);
        // groups: rows 0 and 2 in group 1, row 1 skipped
        let p = MomentParams {
            groups: Some(Arc::new(vec![1, SKIP, 1])),
            n_groups: 2,
            ..Default::default()
        };
        let mut g = Acc::new(2, 2);
        g.insert(&csr(), 0, &p);
        let g = g.into_moments();
        assert_eq!(g.n, vec![0, 2]);
        assert_eq!(g.sum, vec![0.0, 0.0, 1.0, 4.0]);
        // split insertion + combine equals one insertion
        let mut a = Acc::new(1, 2);
        let Block::Csr(c) = csr() else { unreachable!() };
        let d = c.to_dense();
        let top = Block::Dense(Dense {
            nrows: 1,
            ncols: 2,
            data: Values::F64(d.data.to_f64_vec()[..2].to_vec()),
        });
        let bottom = Block::Dense(Dense {
            nrows: 2,
            ncols: 2,
            data: Values::F64(d.data.to_f64_vec()[2..].to_vec()),
        });
        a.insert(&top, 0, &MomentParams::default());
        let mut b = Acc::new(1, 2);
        b.insert(&bottom, 1, &MomentParams::default());
        a.combine(&b);
        assert_eq!(a.into_moments().finalize(), m.finalize());
    }

    /// seurat's expm1 pass leaves the same sums as a pass over the values as
    /// stored (float32 sparse and dense: dense squares round to float32).
    #[test]
    fn unmapped_sums_equal_an_identity_pass() {
        let Block::Csr(c) = csr() else { unreachable!() };
        let f32_csr = Csr {
            data: Values::F32(vec![0.3, 1.7, 2.9, 0.1]),
            ..c
        };
        for block in [
            Block::Csr(f32_csr.clone()),
            Block::Dense(f32_csr.to_dense()),
        ] {
            let mut plain = Acc::new(1, 2);
            plain.insert(&block, 0, &MomentParams::default());
            let plain = plain.into_moments();
            let p = MomentParams {
                map: ValueMap::Expm1 { factor: Some(0.5) },
                unmapped: true,
                ..Default::default()
            };
            let (mut a, mut b) = (
                Acc::new(1, 2).with_unmapped(true),
                Acc::new(1, 2).with_unmapped(true),
            );
            a.insert(&block, 0, &p);
            b.insert(&block, 3, &p);
            a.combine(&b);
            let mut twice = Acc::new(1, 2);
            twice.insert(&block, 0, &MomentParams::default());
            twice.insert(&block, 3, &MomentParams::default());
            let twice = twice.into_moments();
            let u = a.into_moments().unmapped.expect("asked for");
            assert_eq!(u.n, 6);
            assert_eq!((&u.sum, &u.sumsq), (&twice.sum, &twice.sumsq));
            assert_eq!(u.finalize(), twice.finalize());
            assert!(plain.unmapped.is_none());
        }
    }

    #[test]
    fn clip_and_expm1() {
        let p = MomentParams {
            clip: Some(Arc::new(vec![2.0, 10.0])),
            ..Default::default()
        };
        let mut m = Acc::new(1, 2);
        m.insert(&csr(), 0, &p);
        let m = m.into_moments();
        assert_eq!(m.sum, vec![3.0, 6.0]);
        let p = MomentParams {
            map: ValueMap::Expm1 { factor: None },
            ..Default::default()
        };
        let mut m = Acc::new(1, 2);
        m.insert(&csr(), 0, &p);
        let m = m.into_moments();
        assert!((m.sum[0] - (1f64.exp_m1() + 3f64.exp_m1())).abs() < 1e-12);
    }

    #[test]
    fn residuals_against_direct_formula() {
        let x = [1.0, 0.0, 3.0, 2.0, 0.0, 4.0];
        let p = ResidualParams {
            groups: None,
            n_groups: 1,
            row_sum: Arc::new(vec![1.0, 5.0, 4.0]),
            col_sum: Arc::new(vec![4.0, 6.0]),
            total: vec![10.0],
            theta: 100.0,
            clip: 3f64.sqrt(),
            f32_product: false,
        };
        // rows 0 and 1..3 as two blocks give the sums of one block
        let mut s = vec![0.0; 2];
        let dense = |rows: &[f64]| {
            Block::Dense(Dense {
                nrows: rows.len() / 2,
                ncols: 2,
                data: Values::F64(rows.to_vec()),
            })
        };
        residual_rows(&dense(&x[..2]), 0, &p, None, &mut s, 0..2, 2);
        residual_rows(&dense(&x[2..]), 1, &p, None, &mut s, 0..2, 2);
        let mean: Vec<f64> = s.iter().map(|v| v / 3.0).collect();
        let mut q = vec![0.0; 2];
        // the same rows as CSR, one column at a time: the same sums
        let sparse = Block::Csr(Csr {
            nrows: 3,
            ncols: 2,
            indptr: vec![0, 1, 3, 4],
            indices: vec![0, 0, 1, 1],
            data: Values::F64(vec![1.0, 3.0, 2.0, 4.0]),
        });
        residual_rows(&sparse, 0, &p, Some(&mean), &mut q, 0..1, 2);
        residual_rows(&sparse, 0, &p, Some(&mean), &mut q, 1..2, 2);
        for j in 0..2 {
            let res: Vec<f64> = (0..3)
                .map(|i| {
                    let mu = p.col_sum[j] * p.row_sum[i] / 10.0;
                    ((x[i * 2 + j] - mu) / (mu + mu * mu / 100.0).sqrt()).clamp(-p.clip, p.clip)
                })
                .collect();
            let m = res.iter().sum::<f64>() / 3.0;
            let want = res.iter().map(|e| (e - m).powi(2)).sum::<f64>() / 3.0;
            assert!(
                (q[j] / 3.0 - want).abs() < 1e-12,
                "{} vs {want}",
                q[j] / 3.0
            );
        }
    }
}
