//! Where a view's rows come from: one stored matrix, or several views
//! stacked by rows. Stacking is a plan, not a storage format, so storage
//! knows nothing of views.

use std::sync::Arc;

use super::concat::Concat;
use crate::block::{Block, Dtype};
use crate::error::Result;
use crate::storage::matrix::{Format, RowCost};
use crate::storage::StoredMatrix;

#[derive(Clone)]
pub enum Source {
    Stored(Arc<StoredMatrix>),
    Concat(Arc<Concat>),
}

impl From<Arc<StoredMatrix>> for Source {
    fn from(m: Arc<StoredMatrix>) -> Self {
        Source::Stored(m)
    }
}

impl From<Concat> for Source {
    fn from(c: Concat) -> Self {
        Source::Concat(Arc::new(c))
    }
}

impl Source {
    pub fn nrows(&self) -> u64 {
        match self {
            Source::Stored(m) => m.nrows,
            Source::Concat(c) => c.nrows(),
        }
    }

    pub fn ncols(&self) -> u64 {
        match self {
            Source::Stored(m) => m.ncols,
            Source::Concat(c) => c.ncols(),
        }
    }

    pub fn dtype(&self) -> Dtype {
        match self {
            Source::Stored(m) => m.dtype,
            Source::Concat(c) => c.dtype(),
        }
    }

    pub fn is_sparse(&self) -> bool {
        match self {
            Source::Stored(m) => m.is_sparse(),
            Source::Concat(c) => c.is_sparse(),
        }
    }

    /// The layout rows come out in (a stack of sparse parts is CSR).
    pub fn format(&self) -> Format {
        match self {
            Source::Stored(m) => m.format,
            Source::Concat(c) if c.is_sparse() => Format::Csr,
            Source::Concat(_) => Format::Dense,
        }
    }

    /// Stored entries for sparse sources; `None` when not known exactly.
    pub fn stored_nnz(&self) -> Option<u64> {
        match self {
            Source::Stored(m) => m.stored_nnz(),
            Source::Concat(c) => c.stored_nnz(),
        }
    }

    pub fn row_cost(&self) -> Result<RowCost> {
        match self {
            Source::Stored(m) => m.row_cost(),
            Source::Concat(c) => c.row_cost(),
        }
    }

    /// The files or stores the rows are read from (each once, in order).
    pub fn origin_paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |p: &str| {
            if !out.iter().any(|q| q == p) {
                out.push(p.to_owned());
            }
        };
        match self {
            Source::Stored(m) => m.origin.iter().for_each(|o| add(&o.path)),
            Source::Concat(c) => c
                .parts()
                .iter()
                .flat_map(|p| p.view.src.origin_paths())
                .for_each(|p| add(&p)),
        }
        out
    }

    /// Rows `rows` (any order, repeats allowed) as one block.
    pub fn read_rows(&self, rows: &[u64]) -> Result<Block> {
        self.read_rows_as(rows, None)
    }

    /// Rows `rows` as one block, in `dtype` when the source can decode
    /// straight into it (a hint: the block may come in its own dtype).
    pub fn read_rows_as(&self, rows: &[u64], dtype: Option<Dtype>) -> Result<Block> {
        match self {
            Source::Stored(m) => m.read_rows_as(rows, dtype),
            Source::Concat(c) => c.read_rows(rows),
        }
    }
}
