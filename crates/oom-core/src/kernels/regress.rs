//! The one pass behind regress-out (see [`crate::plan::Regress`]): `DᵀX`
//! (k × p; group sums for a categorical key) and each column's minimum and
//! maximum (scanpy leaves constant columns unchanged on its GLM path).

use crate::block::{Block, Scalar};
use crate::ctx::Ctx;
use crate::error::Result;
use crate::exec::{fold_runs, BLOCK_TARGET};
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

struct Acc {
    dtx: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    stored: Vec<u64>,
    n: u64,
}

/// One pass over `view`: `DᵀX` and column ranges.
pub fn regress_stats(ctx: &Ctx, view: &View, design: &Design) -> Result<RegressStats> {
    design.validate(view.nrows())?;
    let p = usize::try_from(view.ncols()).expect("fits");
    let w = design.width();
    let threads = ctx.runs();
    let init = || Acc {
        dtx: vec![0.0; w * p],
        min: vec![f64::INFINITY; p],
        max: vec![f64::NEG_INFINITY; p],
        stored: vec![0; p],
        n: 0,
    };
    let (parts, _) = fold_runs(
        ctx,
        view,
        BLOCK_TARGET,
        threads,
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
    let mut out = init();
    for part in parts {
        for (a, b) in out.dtx.iter_mut().zip(&part.dtx) {
            *a += b;
        }
        for c in 0..p {
            out.min[c] = out.min[c].min(part.min[c]);
            out.max[c] = out.max[c].max(part.max[c]);
            out.stored[c] += part.stored[c];
        }
        out.n += part.n;
    }
    for c in 0..p {
        if out.stored[c] < out.n {
            out.min[c] = out.min[c].min(0.0);
            out.max[c] = out.max[c].max(0.0);
        }
    }
    Ok(RegressStats {
        dtx: out.dtx,
        min: out.min,
        max: out.max,
    })
}
