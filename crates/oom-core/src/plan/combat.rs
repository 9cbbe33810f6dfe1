//! ComBat batch correction (Johnson, Li & Rabinovic 2007), applied as
//! scanpy's `pp.combat` (after Pedersen's `combat.py`) applies it, value by
//! value in float64, for a row `i` of batch `b` and gene `g`:
//!
//! - m = D[i]·β[·, g]  (the standardising mean: grand mean + covariate fit)
//! - s = (x − m) / sd[g]   (0 where the pooled variance is 0)
//! - y = (s − γ*[b, g]) / √δ*[b, g] · sd[g] + m.
//!
//! The residual `x − m` alone is a [`super::Regress`] op with the same
//! design and coefficients; its per-batch moments give γ*, δ*.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::op::{Op, Transform};
use super::ops::{gather, map_block};
use super::regress::gather_runs;
use super::Design;
use crate::block::{Block, Dtype};
use crate::error::{OomError, Result};

#[derive(Serialize, Deserialize)]
pub struct Combat {
    /// Regressors of the standardising mean per output row (`[1, covariates]`).
    pub design: Design,
    /// Its coefficients, `design.width()` per output column, column after column.
    pub coef: Arc<Vec<f64>>,
    /// Batch of each output row.
    pub batch: Arc<Vec<u32>>,
    pub n_batches: usize,
    /// √(pooled variance) per output column.
    pub sd: Arc<Vec<f64>>,
    /// γ* and √δ*, `n_batches` per output column, column after column.
    pub gamma: Arc<Vec<f64>>,
    pub delta_sqrt: Arc<Vec<f64>>,
}

impl Combat {
    /// Check every part against a view of `nrows` × `ncols`.
    pub fn validate(&self, nrows: u64, ncols: u64) -> Result<()> {
        self.design.validate(nrows)?;
        let nb = self.n_batches as u64;
        let ok = self.coef.len() as u64 == self.design.width() as u64 * ncols
            && self.batch.len() as u64 == nrows
            && self.sd.len() as u64 == ncols
            && self.gamma.len() as u64 == nb * ncols
            && self.delta_sqrt.len() as u64 == nb * ncols;
        if !ok {
            return Err(OomError::Value(format!(
                "combat parameters do not fit a {nrows} × {ncols} matrix"
            )));
        }
        if let Some(&b) = self.batch.iter().find(|&&b| b as usize >= self.n_batches) {
            return Err(OomError::Value(format!(
                "batch id {b} >= number of batches {}",
                self.n_batches
            )));
        }
        Ok(())
    }
}

impl Transform for Combat {
    fn name(&self) -> &'static str {
        "combat"
    }

    fn out_dtype(&self, _input: Dtype) -> Dtype {
        Dtype::F64
    }

    fn densifies(&self) -> bool {
        true
    }

    fn apply(&self, block: Block, row0: u64) -> Result<Block> {
        let r0 = usize::try_from(row0).expect("fits");
        let (w, nb) = (self.design.width(), self.n_batches);
        Ok(map_block(block, Dtype::F64, true, |r, c, x| {
            let i = r0 + r;
            let m = self.design.predict(i, &self.coef[c * w..(c + 1) * w]);
            let sd = self.sd[c];
            let s = if sd == 0.0 { 0.0 } else { (x - m) / sd };
            let at = c * nb + self.batch[i] as usize;
            (s - self.gamma[at]) / self.delta_sqrt[at] * sd + m
        }))
    }

    fn subset(&self, rows: Option<&[u64]>, cols: Option<&[u64]>) -> Op {
        let (w, nb) = (self.design.width(), self.n_batches);
        Op::from(Combat {
            design: self.design.subset_rows(rows),
            coef: gather_runs(&self.coef, w, cols),
            batch: gather(&self.batch, rows),
            n_batches: nb,
            sd: gather(&self.sd, cols),
            gamma: gather_runs(&self.gamma, nb, cols),
            delta_sqrt: gather_runs(&self.delta_sqrt, nb, cols),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Csr, Dense, Values};

    #[test]
    fn adjusts_per_batch_and_subsets() {
        let op = Combat {
            design: Design::Dense {
                k: 1,
                values: Arc::new(vec![1.0, 1.0]),
            },
            coef: Arc::new(vec![1.0, 2.0]),
            batch: Arc::new(vec![0, 1]),
            n_batches: 2,
            sd: Arc::new(vec![2.0, 0.0]),
            gamma: Arc::new(vec![0.5, -0.5, 0.0, 0.0]),
            delta_sqrt: Arc::new(vec![2.0, 1.0, 1.0, 1.0]),
        };
        op.validate(2, 2).unwrap();
        assert!(op.validate(3, 2).is_err());
        let b = Block::Csr(Csr {
            nrows: 2,
            ncols: 2,
            indptr: vec![0, 1, 2],
            indices: vec![0, 0],
            data: Values::I32(vec![5, 3]),
        });
        // row 0: s = 2, (2 - 0.5)/2 * 2 + 1 = 2.5; the zero-variance gene keeps its mean
        // row 1: s = 1, (1 + 0.5)/1 * 2 + 1 = 4
        let want = Block::Dense(Dense {
            nrows: 2,
            ncols: 2,
            data: Values::F64(vec![2.5, 2.0, 4.0, 2.0]),
        });
        assert_eq!(op.apply(b, 0).unwrap(), want);
        let sub = op.subset(Some(&[1]), Some(&[0]));
        let b = Block::Dense(Dense {
            nrows: 1,
            ncols: 1,
            data: Values::F64(vec![3.0]),
        });
        assert_eq!(
            sub.apply(b, 0).unwrap(),
            Block::Dense(Dense {
                nrows: 1,
                ncols: 1,
                data: Values::F64(vec![4.0])
            })
        );
    }
}
