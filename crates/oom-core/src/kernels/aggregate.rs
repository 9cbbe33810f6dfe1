//! Per-row aggregation over groups of columns (scanpy's `get.aggregate`
//! with `axis="var"`): for every row and column group, the sum, the sum of
//! squares and the count of non-zero values, in one pass. (Grouping rows
//! is [`super::moments`] with row groups.) Squares of float32 values are
//! rounded to float32, as scipy/numpy's `power(2)` on the matrix.

use crate::block::{Block, Dtype};
use crate::ctx::Ctx;
use crate::error::{OomError, Result};
use crate::exec::map_blocks;
use crate::kernels::block_target;
use crate::kernels::moments::SKIP;
use crate::plan::View;

/// Row × group results, row-major (`nrows × n_groups`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColGroups {
    pub sum: Vec<f64>,
    pub sumsq: Vec<f64>,
    pub n_nonzero: Vec<u64>,
}

fn block_groups(block: &Block, groups: &[u32], n_groups: usize) -> ColGroups {
    let n = block.nrows();
    let round = block.dtype() == Dtype::F32;
    let mut p = ColGroups {
        sum: vec![0.0; n * n_groups],
        sumsq: vec![0.0; n * n_groups],
        n_nonzero: vec![0; n * n_groups],
    };
    for r in 0..n {
        block.for_row(r, |c, x| {
            let g = groups[c];
            if g == SKIP {
                return;
            }
            let at = r * n_groups + g as usize;
            p.sum[at] += x;
            let sq = if round {
                f64::from((x * x) as f32)
            } else {
                x * x
            };
            p.sumsq[at] += sq;
            if x != 0.0 {
                p.n_nonzero[at] += 1;
            }
        });
    }
    p
}

/// One pass over `view`; `groups[c]` is column `c`'s group (`SKIP` = left out).
pub fn col_group_sums(
    ctx: &Ctx,
    view: &View,
    groups: &[u32],
    n_groups: usize,
) -> Result<ColGroups> {
    if groups.len() as u64 != view.ncols() {
        return Err(OomError::Value(format!(
            "{} column groups for {} columns",
            groups.len(),
            view.ncols()
        )));
    }
    if let Some(&g) = groups
        .iter()
        .find(|&&g| g != SKIP && g as usize >= n_groups)
    {
        return Err(OomError::Value(format!(
            "group id {g} >= n_groups {n_groups}"
        )));
    }
    let parts = map_blocks(ctx, view, block_target(view), |_, _, block| {
        Ok(block_groups(&block, groups, n_groups))
    })?;
    let mut out = ColGroups::default();
    for p in parts {
        out.sum.extend(p.sum);
        out.sumsq.extend(p.sumsq);
        out.n_nonzero.extend(p.n_nonzero);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Csr, Values};

    #[test]
    fn groups_columns_per_row() {
        let block = Block::Csr(Csr {
            nrows: 2,
            ncols: 3,
            indptr: vec![0, 2, 3],
            indices: vec![0, 2, 1],
            data: Values::F64(vec![1.0, 3.0, 2.0]),
        });
        let out = block_groups(&block, &[0, SKIP, 0], 1);
        assert_eq!(
            out,
            ColGroups {
                sum: vec![4.0, 0.0],
                sumsq: vec![10.0, 0.0],
                n_nonzero: vec![2, 0]
            }
        );
    }
}
