//! The lazy plan: a stored matrix seen through a row selection, a column
//! selection and a chain of per-block transforms. Nodes are cheap
//! descriptors; subsetting composes into them instead of copying data.

mod select;

use std::sync::Arc;

pub use select::ColSel;

use crate::block::{Block, Dtype};
use crate::error::{OomError, Result};
use crate::storage::matrix::RowCost;
use crate::storage::StoredMatrix;

/// A lazy matrix: rows `rows` and columns `cols` of `src`, then `ops`.
#[derive(Clone)]
pub struct View {
    pub src: Arc<StoredMatrix>,
    /// Source row of each output row (`None` = all rows in order).
    pub rows: Option<Arc<Vec<u64>>>,
    pub cols: Option<Arc<ColSel>>,
}

impl View {
    pub fn new(src: Arc<StoredMatrix>) -> Self {
        View { src, rows: None, cols: None }
    }

    pub fn nrows(&self) -> u64 {
        self.rows.as_ref().map_or(self.src.nrows, |r| r.len() as u64)
    }

    pub fn ncols(&self) -> u64 {
        self.cols.as_ref().map_or(self.src.ncols, |c| c.len() as u64)
    }

    pub fn dtype(&self) -> Dtype {
        self.src.dtype
    }

    pub fn is_sparse(&self) -> bool {
        self.src.is_sparse()
    }

    /// Source row of output row `r`.
    pub fn src_row(&self, r: u64) -> u64 {
        self.rows.as_ref().map_or(r, |rows| rows[usize::try_from(r).expect("fits")])
    }

    /// Select output rows `rows` and output columns `cols` of this view
    /// (indices already validated and made non-negative by the caller).
    pub fn subset(&self, rows: Option<&[u64]>, cols: Option<&[u64]>) -> Result<View> {
        let check = |idx: &[u64], n: u64, axis: &str| -> Result<()> {
            if let Some(&i) = idx.iter().find(|&&i| i >= n) {
                return Err(OomError::Index(format!("{axis} index {i} is out of bounds for size {n}")));
            }
            Ok(())
        };
        let mut out = self.clone();
        if let Some(rows) = rows {
            check(rows, self.nrows(), "row")?;
            out.rows = Some(Arc::new(rows.iter().map(|&r| self.src_row(r)).collect()));
        }
        if let Some(cols) = cols {
            check(cols, self.ncols(), "column")?;
            let src_cols: Vec<u64> = match &self.cols {
                None => cols.to_vec(),
                Some(c) => cols.iter().map(|&j| c.cols[usize::try_from(j).expect("fits")]).collect(),
            };
            out.cols = Some(Arc::new(ColSel::new(src_cols, self.src.ncols)));
        }
        Ok(out)
    }

    /// Output rows `a..b` as one block.
    pub fn read(&self, a: u64, b: u64) -> Result<Block> {
        let rows: Vec<u64> = (a..b).map(|r| self.src_row(r)).collect();
        let block = self.src.read_rows(&rows)?;
        Ok(match &self.cols {
            Some(c) => c.apply(block),
            None => block,
        })
    }

    /// Split the output rows into blocks of about `target` stored values.
    pub fn blocks(&self, target: u64) -> Result<Vec<(u64, u64)>> {
        let cost: RowCost = self.src.row_cost()?;
        let n = self.nrows();
        let mut out = Vec::new();
        let (mut a, mut acc) = (0u64, 0u64);
        for r in 0..n {
            acc += cost.of(self.src_row(r)).max(1);
            if acc >= target {
                out.push((a, r + 1));
                a = r + 1;
                acc = 0;
            }
        }
        if a < n {
            out.push((a, n));
        }
        Ok(out)
    }
}
