//! Analytic Pearson residuals as a lazy transform (Lause et al. 2021;
//! scanpy's `experimental.pp.normalize_pearson_residuals`):
//! `μ = c_r·g_c / T`, `r = clip((x − μ) / √(μ + μ²/θ), ±clip)`, with `c`
//! the row sums, `g` the column sums and `T` their total, all taken from
//! the counts beforehand. Computed in f64; the output is dense. As in
//! numpy, a row or column summing to 0 gives `0/0 = NaN`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::op::{Op, Transform};
use super::ops::{gather, map_block};
use crate::block::{Block, Dtype};
use crate::error::{OomError, Result};

#[derive(Serialize, Deserialize)]
pub struct Pearson {
    /// Counts per output row.
    pub row_sum: Arc<Vec<f64>>,
    /// Counts per output column.
    pub col_sum: Arc<Vec<f64>>,
    pub total: f64,
    pub theta: f64,
    pub clip: f64,
    pub out: Dtype,
}

impl Pearson {
    /// Check the parameters against a view of `nrows` × `ncols`.
    // The fields of `Pearson` plus the shape they are checked against.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        row_sum: Vec<f64>,
        col_sum: Vec<f64>,
        total: f64,
        theta: f64,
        clip: f64,
        out: Dtype,
        nrows: u64,
        ncols: u64,
    ) -> Result<Self> {
        if row_sum.len() as u64 != nrows || col_sum.len() as u64 != ncols {
            return Err(OomError::Value(format!(
                "row/column sums have lengths {}/{}, the matrix is {nrows} × {ncols}",
                row_sum.len(),
                col_sum.len()
            )));
        }
        if theta.is_nan() || theta <= 0.0 {
            return Err(OomError::Value(
                "Pearson residuals require theta > 0".into(),
            ));
        }
        if clip.is_nan() || clip < 0.0 {
            return Err(OomError::Value(
                "Pearson residuals require `clip>=0` or `clip=None`.".into(),
            ));
        }
        if !out.is_float() {
            return Err(OomError::Value(format!(
                "Pearson residuals must be float32 or float64, not {}",
                out.name()
            )));
        }
        Ok(Pearson {
            row_sum: Arc::new(row_sum),
            col_sum: Arc::new(col_sum),
            total,
            theta,
            clip,
            out,
        })
    }
}

impl Transform for Pearson {
    fn name(&self) -> &'static str {
        "pearson_residuals"
    }

    fn out_dtype(&self, _input: Dtype) -> Dtype {
        self.out
    }

    fn densifies(&self) -> bool {
        true
    }

    fn apply(&self, block: Block, row0: u64) -> Result<Block> {
        let r0 = usize::try_from(row0).expect("fits");
        let rows = &self.row_sum[r0..r0 + block.nrows()];
        let (cols, total, theta, clip) = (&self.col_sum, self.total, self.theta, self.clip);
        Ok(map_block(block, self.out, true, |r, c, x| {
            let mu = rows[r] * cols[c] / total;
            let v = (x - mu) / (mu + mu * mu / theta).sqrt();
            // NaN stays NaN (numpy's clip)
            if v > clip {
                clip
            } else if v < -clip {
                -clip
            } else {
                v
            }
        }))
    }

    fn subset(&self, rows: Option<&[u64]>, cols: Option<&[u64]>) -> Op {
        Op::from(Pearson {
            row_sum: gather(&self.row_sum, rows),
            col_sum: gather(&self.col_sum, cols),
            total: self.total,
            theta: self.theta,
            clip: self.clip,
            out: self.out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Dense, Values};

    #[test]
    fn residuals_clip_and_subset() {
        // 2 × 2 counts [[1, 3], [2, 0]]: rows 4, 2; cols 3, 3; total 6.
        let op = Pearson::new(
            vec![4.0, 2.0],
            vec![3.0, 3.0],
            6.0,
            100.0,
            1.0,
            Dtype::F64,
            2,
            2,
        )
        .unwrap();
        let block = Block::Dense(Dense {
            nrows: 2,
            ncols: 2,
            data: Values::F32(vec![1.0, 3.0, 2.0, 0.0]),
        });
        let Block::Dense(d) = op.apply(block, 0).unwrap() else {
            panic!()
        };
        let Values::F64(v) = d.data else { panic!() };
        let want = |x: f64, mu: f64| ((x - mu) / (mu + mu * mu / 100.0).sqrt()).clamp(-1.0, 1.0);
        assert!((v[0] - want(1.0, 2.0)).abs() < 1e-12);
        assert!((v[1] - want(3.0, 2.0)).abs() < 1e-12);
        assert!((v[3] - want(0.0, 1.0)).abs() < 1e-12);
        // Row 1, column 0 only.
        let sub = op.subset(Some(&[1]), Some(&[0]));
        let b = Block::Dense(Dense {
            nrows: 1,
            ncols: 1,
            data: Values::F32(vec![2.0]),
        });
        let Block::Dense(d) = sub.apply(b, 0).unwrap() else {
            panic!()
        };
        assert_eq!(d.data, Values::F64(vec![want(2.0, 1.0)]));
    }
}
