//! Row and column sums and stored-entry counts in one pass.

use crate::block::Block;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::exec::map_blocks;
use crate::kernels::block_target;
use crate::plan::View;

/// Per-row and per-column sums and non-zero counts.
#[derive(Debug, Clone, Default)]
pub struct AxisSums {
    pub row_sum: Vec<f64>,
    pub row_nnz: Vec<u64>,
    pub col_sum: Vec<f64>,
    pub col_nnz: Vec<u64>,
}

/// Column part of one block; rows are returned separately in order.
struct Part {
    row_sum: Vec<f64>,
    row_nnz: Vec<u64>,
    col_sum: Vec<f64>,
    col_nnz: Vec<u64>,
}

fn block_sums(block: &Block, ncols: usize) -> Part {
    let n = block.nrows();
    let mut p = Part {
        row_sum: vec![0.0; n],
        row_nnz: vec![0; n],
        col_sum: vec![0.0; ncols],
        col_nnz: vec![0; ncols],
    };
    for r in 0..n {
        let (mut s, mut k) = (0.0, 0u64);
        block.for_row(r, |c, v| {
            s += v;
            p.col_sum[c] += v;
            // Stored entries count as scipy's nnz for sparse blocks; dense
            // blocks count non-zeros.
            if matches!(block, Block::Csr(_)) || v != 0.0 {
                k += 1;
                p.col_nnz[c] += 1;
            }
        });
        p.row_sum[r] = s;
        p.row_nnz[r] = k;
    }
    p
}

/// One pass over `view`.
pub fn axis_sums(ctx: &Ctx, view: &View) -> Result<AxisSums> {
    let ncols = usize::try_from(view.ncols()).expect("fits");
    let parts = map_blocks(ctx, view, block_target(view), |_, _, b| {
        Ok(block_sums(&b, ncols))
    })?;
    let mut out = AxisSums {
        col_sum: vec![0.0; ncols],
        col_nnz: vec![0; ncols],
        ..Default::default()
    };
    for p in parts {
        out.row_sum.extend(p.row_sum);
        out.row_nnz.extend(p.row_nnz);
        for (a, b) in out.col_sum.iter_mut().zip(&p.col_sum) {
            *a += b;
        }
        for (a, b) in out.col_nnz.iter_mut().zip(&p.col_nnz) {
            *a += b;
        }
    }
    Ok(out)
}
