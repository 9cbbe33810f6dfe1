//! Regress-out as a lazy transform, as scanpy's `regress_out`: per column
//! `c`, the residual `x − D[r]·β[·, c]` of an ordinary least-squares fit on
//! a small design `D` (n_obs × k: an intercept and obs keys), or, for one
//! categorical key, `x − T[g(r), c]` with a per-(group, column) table.
//! The output is dense (residuals are rarely zero).
//!
//! The coefficients are solved (in Python, with scanpy's exact formulas)
//! from the sufficient statistics of one pass
//! ([`crate::kernels::regress::regress_stats`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::op::{Op, Transform};
use super::ops::map_block;
use crate::block::{Block, Dtype};
use crate::error::{OomError, Result};

/// The regressors of every output row.
#[derive(Clone, Serialize, Deserialize)]
pub enum Design {
    /// `k` values per row, row-major (n × k).
    Dense { k: usize, values: Arc<Vec<f64>> },
    /// One group id per row, `< ngroups`.
    Groups {
        ngroups: usize,
        codes: Arc<Vec<u32>>,
    },
}

impl Design {
    /// Coefficients per column.
    pub fn width(&self) -> usize {
        match self {
            Design::Dense { k, .. } => *k,
            Design::Groups { ngroups, .. } => *ngroups,
        }
    }

    pub fn nrows(&self) -> usize {
        match self {
            Design::Dense { k, values } => values.len() / (*k).max(1),
            Design::Groups { codes, .. } => codes.len(),
        }
    }

    /// Check shapes and group ids against a view of `nrows` rows.
    pub fn validate(&self, nrows: u64) -> Result<()> {
        if self.nrows() as u64 != nrows {
            return Err(OomError::Value(format!(
                "the design has {} rows, the matrix {nrows}",
                self.nrows()
            )));
        }
        if let Design::Dense { k, values } = self {
            if *k == 0 || values.len() % k != 0 {
                return Err(OomError::Value(
                    "the design needs at least one column".into(),
                ));
            }
        }
        if let Design::Groups { ngroups, codes } = self {
            if let Some(&g) = codes.iter().find(|&&g| g as usize >= *ngroups) {
                return Err(OomError::Value(format!(
                    "group id {g} >= number of groups {ngroups}"
                )));
            }
        }
        Ok(())
    }

    /// `Σ_t D[r, t]·coef[t]` for output row `r`.
    #[inline]
    pub(crate) fn predict(&self, r: usize, coef: &[f64]) -> f64 {
        match self {
            Design::Dense { k, values } => values[r * k..(r + 1) * k]
                .iter()
                .zip(coef)
                .map(|(d, b)| d * b)
                .sum(),
            Design::Groups { codes, .. } => coef[codes[r] as usize],
        }
    }

    pub(crate) fn subset_rows(&self, rows: Option<&[u64]>) -> Design {
        let Some(rows) = rows else {
            return self.clone();
        };
        let at = |r: u64| usize::try_from(r).expect("fits");
        match self {
            Design::Dense { k, values } => Design::Dense {
                k: *k,
                values: Arc::new(
                    rows.iter()
                        .flat_map(|&r| values[at(r) * k..(at(r) + 1) * k].iter().copied())
                        .collect(),
                ),
            },
            Design::Groups { ngroups, codes } => Design::Groups {
                ngroups: *ngroups,
                codes: Arc::new(rows.iter().map(|&r| codes[at(r)]).collect()),
            },
        }
    }
}

/// `x − D[r]·β[·, c]` per value; output dense in `out` (a float type).
#[derive(Serialize, Deserialize)]
pub struct Regress {
    pub design: Design,
    /// `width` coefficients per output column, column after column.
    pub coef: Arc<Vec<f64>>,
    pub out: Dtype,
}

impl Regress {
    /// Check the parts fit a view of `nrows` × `ncols`.
    pub fn new(design: Design, coef: Vec<f64>, out: Dtype, nrows: u64, ncols: u64) -> Result<Self> {
        design.validate(nrows)?;
        if coef.len() as u64 != design.width() as u64 * ncols {
            return Err(OomError::Value(format!(
                "expected {} × {ncols} coefficients, got {}",
                design.width(),
                coef.len()
            )));
        }
        if !out.is_float() {
            return Err(OomError::Value(format!(
                "regress_out output must be float32 or float64, not {}",
                out.name()
            )));
        }
        Ok(Regress {
            design,
            coef: Arc::new(coef),
            out,
        })
    }
}

impl Transform for Regress {
    fn name(&self) -> &'static str {
        "regress_out"
    }

    fn out_dtype(&self, _input: Dtype) -> Dtype {
        self.out
    }

    fn densifies(&self) -> bool {
        true
    }

    fn apply(&self, block: Block, row0: u64) -> Result<Block> {
        let r0 = usize::try_from(row0).expect("fits");
        let w = self.design.width();
        let coef = &self.coef;
        let design = &self.design;
        Ok(map_block(block, self.out, true, |r, c, x| {
            x - design.predict(r0 + r, &coef[c * w..(c + 1) * w])
        }))
    }

    fn subset(&self, rows: Option<&[u64]>, cols: Option<&[u64]>) -> Op {
        let coef = gather_runs(&self.coef, self.design.width(), cols);
        Op::from(Regress {
            design: self.design.subset_rows(rows),
            coef,
            out: self.out,
        })
    }
}

/// The runs `v[c·w .. (c+1)·w]` of every column `c` in `cols` (`None` = all):
/// per-column parameters stored column after column.
pub(crate) fn gather_runs(v: &Arc<Vec<f64>>, w: usize, cols: Option<&[u64]>) -> Arc<Vec<f64>> {
    match cols {
        None => Arc::clone(v),
        Some(cols) => Arc::new(
            cols.iter()
                .flat_map(|&c| {
                    let c = usize::try_from(c).expect("fits");
                    v[c * w..(c + 1) * w].iter().copied()
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Dense, Values};

    #[test]
    fn residuals_and_subsets() {
        // 3 rows × 2 cols, design [1, t].
        let design = Design::Dense {
            k: 2,
            values: Arc::new(vec![1.0, 0.0, 1.0, 1.0, 1.0, 2.0]),
        };
        let coef = vec![1.0, 2.0, /* col 1 */ 0.5, -1.0];
        let op = Regress::new(design, coef, Dtype::F64, 3, 2).unwrap();
        let block = Block::Dense(Dense {
            nrows: 3,
            ncols: 2,
            data: Values::F32(vec![1.0, 1.0, 3.0, 0.0, 5.0, -1.0]),
        });
        let out = op.apply(block.clone(), 0).unwrap();
        let Block::Dense(d) = out else { panic!() };
        assert_eq!(d.data, Values::F64(vec![0.0, 0.5, 0.0, 0.5, 0.0, 0.5]));
        // Rows 2, 0 and column 1 only.
        let sub = op.subset(Some(&[2, 0]), Some(&[1]));
        let b2 = Block::Dense(Dense {
            nrows: 2,
            ncols: 1,
            data: Values::F32(vec![-1.0, 1.0]),
        });
        let Block::Dense(d) = sub.apply(b2, 0).unwrap() else {
            panic!()
        };
        assert_eq!(d.data, Values::F64(vec![0.5, 0.5]));
        // Groups.
        let g = Regress::new(
            Design::Groups {
                ngroups: 2,
                codes: Arc::new(vec![1, 0, 1]),
            },
            vec![10.0, 20.0, 1.0, 2.0],
            Dtype::F32,
            3,
            2,
        )
        .unwrap();
        let Block::Dense(d) = g.apply(block, 0).unwrap() else {
            panic!()
        };
        assert_eq!(
            d.data,
            Values::F32(vec![-19.0, -1.0, -7.0, -1.0, -15.0, -3.0])
        );
    }
}
