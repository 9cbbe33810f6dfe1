//! The one pass behind regress-out (see [`crate::plan::Regress`]): `DᵀX`
//! (k × p; group sums for a categorical key) and each column's minimum and
//! maximum (scanpy leaves constant columns unchanged on its GLM path).

use serde::{Deserialize, Serialize};

use crate::block::{Block, Scalar};
use crate::ctx::Ctx;
use crate::error::Result;
use crate::exec::{fold_runs, BLOCK_TARGET};
use crate::kernels::merge;
use crate::plan::{Design, View};
use crate::with_values;

/// Sufficient statistics of one pass.
#[derive(Debug, Clone)]
pub struct RegressStats {
    /// `DᵀX`, width × p, row-major (group sums for [`Design::Groups`]).
    pub dtx: Vec<f64>,
    /// Per-column minimum and maximum (implicit zeros included).
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

/// The mergeable state of the pass: ranges over stored values only, and
/// how many values were stored, so the implicit zeros join at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressState {
    /// Rows of `DᵀX` (the design's width).
    pub width: usize,
    dtx: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    stored: Vec<u64>,
    n: u64,
}

impl RegressState {
    fn new(width: usize, p: usize) -> Self {
        RegressState {
            width,
            dtx: vec![0.0; width * p],
            min: vec![f64::INFINITY; p],
            max: vec![f64::NEG_INFINITY; p],
            stored: vec![0; p],
            n: 0,
        }
    }

    /// Columns of `X`.
    pub fn ncols(&self) -> usize {
        self.min.len()
    }

    /// Rows seen.
    pub fn nrows(&self) -> u64 {
        self.n
    }

    /// Add the state of other rows (in row order, for reproducible sums).
    pub fn combine(&mut self, other: &RegressState) {
        for (a, b) in self.dtx.iter_mut().zip(&other.dtx) {
            *a += b;
        }
        for c in 0..self.ncols() {
            self.min[c] = self.min[c].min(other.min[c]);
            self.max[c] = self.max[c].max(other.max[c]);
            self.stored[c] += other.stored[c];
        }
        self.n += other.n;
    }

    /// The statistics of all rows seen, implicit zeros in the ranges.
    pub fn finish(mut self) -> RegressStats {
        for c in 0..self.ncols() {
            if self.stored[c] < self.n {
                self.min[c] = self.min[c].min(0.0);
                self.max[c] = self.max[c].max(0.0);
            }
        }
        RegressStats {
            dtx: self.dtx,
            min: self.min,
            max: self.max,
        }
    }
}

/// One pass over `view`: `DᵀX` and column ranges.
pub fn regress_stats(ctx: &Ctx, view: &View, design: &Design) -> Result<RegressStats> {
    Ok(regress_pass(ctx, view, design)?.finish())
}

/// The state of [`regress_stats`]' pass, before it is finished.
pub fn regress_pass(ctx: &Ctx, view: &View, design: &Design) -> Result<RegressState> {
    design.validate(view.nrows())?;
    let p = usize::try_from(view.ncols()).expect("fits");
    let w = design.width();
    let init = || RegressState::new(w, p);
    let (parts, _) = fold_runs(
        ctx,
        view,
        BLOCK_TARGET,
        ctx.runs(),
        None,
        init,
        |acc, a, _, block| {
            let a = usize::try_from(a).expect("fits");
            acc.n += block.nrows() as u64;
            let mut visit = |r: usize, c: usize, x: f64| {
                match design {
                    Design::Dense { k, values } => {
                        for (t, d) in values[(a + r) * k..(a + r + 1) * k].iter().enumerate() {
                            acc.dtx[t * p + c] += d * x;
                        }
                    }
                    Design::Groups { codes, .. } => acc.dtx[codes[a + r] as usize * p + c] += x,
                }
                if x < acc.min[c] {
                    acc.min[c] = x;
                }
                if x > acc.max[c] {
                    acc.max[c] = x;
                }
                acc.stored[c] += 1;
            };
            match &block {
                Block::Csr(m) => with_values!(&m.data, v => {
                    for r in 0..m.nrows {
                        let (lo, hi) = m.row_range(r);
                        for (&j, x) in m.indices[lo..hi].iter().zip(&v[lo..hi]) {
                            visit(r, j as usize, x.to_f64());
                        }
                    }
                }),
                Block::Dense(d) => with_values!(&d.data, v => {
                    for (i, x) in v.iter().enumerate() {
                        visit(i / p.max(1), i % p.max(1), x.to_f64());
                    }
                }),
            }
            Ok(())
        },
    )?;
    Ok(merge(parts, init, RegressState::combine))
}
