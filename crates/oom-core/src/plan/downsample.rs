//! Count downsampling as scanpy's `pp.downsample_counts`: a row whose total
//! exceeds its target keeps `target` of its counts, drawn uniformly without
//! replacement (or with, when `replace`), so its new total is exactly the
//! target. Each row draws from its own generator, seeded by the op's seed
//! and the row's key, so a block gives the same counts whatever rows it is
//! read with (and on any worker). Entries that reach zero are dropped, as
//! scanpy's `eliminate_zeros`. Values must be non-negative integers (kept
//! in their type).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::op::{Op, Transform};
use super::ops::gather;
use crate::block::{Block, Csr, Dense, Dtype, Scalar, Values};
use crate::error::{OomError, Result};
use crate::rng::Rng;
use crate::{values_of, with_values};

#[derive(Serialize, Deserialize)]
pub struct Downsample {
    /// Counts to keep per output row.
    pub target: Arc<Vec<u64>>,
    /// Generator key per output row (its row number when the op was made).
    pub key: Arc<Vec<u64>>,
    pub seed: u64,
    pub replace: bool,
    /// Sample every row, also those at or under their target (with
    /// `replace`, scanpy's `total_counts` mode redraws every count).
    pub always: bool,
}

impl Downsample {
    fn rng(&self, r: usize) -> Rng {
        // Mix seed and row key so neighbouring rows get unrelated streams.
        Rng::new(
            self.seed.wrapping_mul(0xD1B5_4A32_D192_ED03)
                ^ self.key[r]
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(17),
        )
    }

    /// Downsample one row's counts in place (`counts` are its values).
    fn row(&self, r: usize, counts: &mut [u64]) {
        let total: u64 = counts.iter().sum();
        let target = self.target[r];
        if !(total > target || self.always) || total == 0 {
            return;
        }
        let mut rng = self.rng(r);
        if self.replace {
            let mut draws: Vec<u64> = (0..target).map(|_| rng.below(total)).collect();
            draws.sort_unstable();
            let mut out = vec![0u64; counts.len()];
            let (mut j, mut upto) = (0usize, counts.first().copied().unwrap_or(0));
            for d in draws {
                while d >= upto {
                    j += 1;
                    upto += counts[j];
                }
                out[j] += 1;
            }
            counts.copy_from_slice(&out);
        } else {
            // Selection sampling (Knuth, TAOCP 3.4.2, algorithm S): walk the
            // `total` unit counts in order, keeping each with probability
            // (still needed) / (still left); exactly `target` are kept.
            let (mut need, mut left) = (target, total);
            for c in counts.iter_mut() {
                let mut kept = 0;
                for _ in 0..*c {
                    if need == left || (need > 0 && rng.below(left) < need) {
                        kept += 1;
                        need -= 1;
                    }
                    left -= 1;
                }
                *c = kept;
            }
        }
    }
}

fn counts_of(v: &Values, a: usize, b: usize) -> Result<Vec<u64>> {
    with_values!(v, x => x[a..b].iter().map(|e| {
        let f = e.to_f64();
        if f < 0.0 || f.fract() != 0.0 || !f.is_finite() {
            return Err(OomError::Value(format!(
                "downsample_counts needs non-negative integer counts, found {f}")));
        }
        Ok(f as u64)
    }).collect())
}

fn typed(dtype: Dtype, v: &[u64]) -> Values {
    values_of!(dtype, T => v.iter().map(|&c| T::from_f64(c as f64)).collect::<Vec<T>>())
}

impl Transform for Downsample {
    fn name(&self) -> &'static str {
        "downsample_counts"
    }

    fn out_dtype(&self, input: Dtype) -> Dtype {
        input
    }

    fn apply(&self, block: Block, row0: u64) -> Result<Block> {
        let r0 = usize::try_from(row0).expect("fits");
        let dtype = block.dtype();
        match block {
            Block::Csr(c) => {
                let mut out = Csr::empty(c.ncols, dtype);
                let (mut indices, mut data) =
                    (Vec::with_capacity(c.nnz()), Vec::with_capacity(c.nnz()));
                for r in 0..c.nrows {
                    let (a, b) = c.row_range(r);
                    let mut counts = counts_of(&c.data, a, b)?;
                    self.row(r0 + r, &mut counts);
                    for (k, &n) in counts.iter().enumerate() {
                        if n > 0 {
                            indices.push(c.indices[a + k]);
                            data.push(n);
                        }
                    }
                    out.indptr.push(indices.len() as i64);
                }
                out.nrows = c.nrows;
                out.indices = indices;
                out.data = typed(dtype, &data);
                Ok(Block::Csr(out))
            }
            Block::Dense(d) => {
                let n = d.ncols;
                let mut all = Vec::with_capacity(d.nrows * n);
                for r in 0..d.nrows {
                    let mut counts = counts_of(&d.data, r * n, (r + 1) * n)?;
                    self.row(r0 + r, &mut counts);
                    all.extend(counts);
                }
                Ok(Block::Dense(Dense {
                    nrows: d.nrows,
                    ncols: n,
                    data: typed(dtype, &all),
                }))
            }
        }
    }

    /// A row's draws walk all its counts.
    fn needs_whole_rows(&self) -> bool {
        true
    }

    /// Rows only: [`View::subset`](crate::plan::View::subset) selects columns
    /// after this op.
    fn subset(&self, rows: Option<&[u64]>, _cols: Option<&[u64]>) -> Op {
        Op::from(Downsample {
            target: gather(&self.target, rows),
            key: gather(&self.key, rows),
            seed: self.seed,
            replace: self.replace,
            always: self.always,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(target: u64, replace: bool) -> Downsample {
        Downsample {
            target: Arc::new(vec![target; 2]),
            key: Arc::new(vec![0, 1]),
            seed: 3,
            replace,
            always: false,
        }
    }

    #[test]
    fn totals_are_exact_and_counts_never_grow() {
        let b = Block::Csr(Csr {
            nrows: 2,
            ncols: 4,
            indptr: vec![0, 3, 4],
            indices: vec![0, 1, 3, 2],
            data: Values::I32(vec![5, 7, 9, 2]),
        });
        for replace in [false, true] {
            let Block::Csr(c) = op(10, replace).apply(b.clone(), 0).unwrap() else {
                panic!("stays sparse")
            };
            let v = c.data.to_f64_vec();
            let (a, e) = c.row_range(0);
            assert_eq!(v[a..e].iter().sum::<f64>(), 10.0);
            // row 1 is under its target: unchanged
            assert_eq!(c.row_range(1).1 - c.row_range(1).0, 1);
            assert_eq!(*v.last().unwrap(), 2.0);
            if !replace {
                for (&j, &x) in c.indices[a..e].iter().zip(&v[a..e]) {
                    let orig = match j {
                        0 => 5.0,
                        1 => 7.0,
                        _ => 9.0,
                    };
                    assert!(x <= orig);
                }
            }
            // deterministic
            assert_eq!(op(10, replace).apply(b.clone(), 0).unwrap(), Block::Csr(c));
        }
        let bad = Block::Dense(Dense {
            nrows: 1,
            ncols: 1,
            data: Values::F32(vec![1.5]),
        });
        assert!(op(1, false).apply(bad, 0).is_err());
    }
}
