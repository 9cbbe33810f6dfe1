//! The lazy plan: a stored matrix seen through a row selection, a column
//! selection and a chain of per-block transforms. Nodes are cheap
//! descriptors; subsetting composes into them instead of copying data.
//!
//! Transforms live one per file (`normalize.rs`, `log1p.rs`, `scale.rs`,
//! …), each a [`Transform`] named by a variant of [`Op`]. Every op is kept
//! in the view's *output* coordinates: per-row and per-column parameters are
//! indexed by output row/column, and [`View::subset`] gathers them when rows
//! or columns are selected after the op. To add a transform, implement
//! [`Transform`] in a new file, add it to `op.rs`'s list and push it with
//! [`View::with_op`]. A view is data: [`wire`] writes it as bytes that
//! another process turns back into the same view.

mod cast;
mod combat;
mod concat;
mod downsample;
mod log1p;
mod multiply;
mod normalize;
mod op;
mod ops;
mod pearson;
mod power;
mod regress;
mod scale;
mod select;
mod source;
mod sqrt;
pub mod wire;

use std::sync::Arc;

pub use cast::Cast;
pub use combat::Combat;
pub use concat::{Concat, ConcatPart};
pub use downsample::Downsample;
pub use log1p::Log1p;
pub use multiply::Multiply;
pub use normalize::Normalize;
pub use op::{Op, Transform};
pub use ops::{cast_block, cast_value, gather, map_block, to_float};
pub use pearson::Pearson;
pub use power::Power;
pub use regress::{Design, Regress};
pub use scale::Scale;
pub use select::ColSel;
pub use source::Source;
pub use sqrt::Sqrt;

use crate::block::{Block, Dtype};
use crate::error::{OomError, Result};
use crate::storage::matrix::RowCost;

/// A lazy matrix: rows `rows` and columns `cols` of `src`, then `ops`, then
/// an optional cast to `cast`.
#[derive(Clone)]
pub struct View {
    pub src: Source,
    /// Source row of each output row (`None` = all rows in order).
    pub rows: Option<Arc<Vec<u64>>>,
    pub cols: Option<Arc<ColSel>>,
    /// Transforms applied in order to each block, in output coordinates.
    pub ops: Vec<Op>,
    /// Final element type (`None`: whatever the ops produce).
    pub cast: Option<Dtype>,
}

impl View {
    pub fn new(src: impl Into<Source>) -> Self {
        View {
            src: src.into(),
            rows: None,
            cols: None,
            ops: Vec::new(),
            cast: None,
        }
    }

    pub fn nrows(&self) -> u64 {
        self.rows
            .as_ref()
            .map_or(self.src.nrows(), |r| r.len() as u64)
    }

    pub fn ncols(&self) -> u64 {
        self.cols
            .as_ref()
            .map_or(self.src.ncols(), |c| c.len() as u64)
    }

    /// Element type of the blocks [`View::read`] returns.
    pub fn dtype(&self) -> Dtype {
        self.cast.unwrap_or_else(|| {
            self.ops
                .iter()
                .fold(self.src.dtype(), |d, op| op.out_dtype(d))
        })
    }

    /// Whether blocks come out as CSR (no op densifies a sparse source).
    pub fn is_sparse(&self) -> bool {
        self.src.is_sparse() && !self.ops.iter().any(|op| op.densifies())
    }

    /// True when no transform or cast is pending.
    pub fn is_plain(&self) -> bool {
        self.ops.is_empty() && self.cast.is_none()
    }

    /// This view with `op` appended (parameters in this view's output coordinates).
    /// A pending cast comes first, so `op` sees the values in the cast type.
    pub fn with_op(&self, op: impl Into<Op>) -> View {
        let mut out = self.clone();
        if let Some(dtype) = out.cast.take() {
            out.ops.push(Cast { dtype }.into());
        }
        out.ops.push(op.into());
        out
    }

    /// This view with its output cast to `dtype` (after a pending cast, which
    /// becomes a step: `astype(int32).astype(float64)` truncates).
    pub fn with_cast(&self, dtype: Option<Dtype>) -> View {
        let mut out = self.clone();
        if let (Some(prev), Some(_)) = (out.cast, dtype) {
            out.ops.push(Cast { dtype: prev }.into());
        }
        out.cast = dtype;
        out
    }

    /// The same selection without transforms (the stored values).
    pub fn untransformed(&self) -> View {
        View {
            src: self.src.clone(),
            rows: self.rows.clone(),
            cols: self.cols.clone(),
            ops: Vec::new(),
            cast: None,
        }
    }

    /// When the last transform is a [`Scale`] and everything before it is
    /// sparse: the view without that scale, and the scale's parameters.
    pub fn split_last_scale(&self) -> Option<(View, &Scale)> {
        let (Op::Scale(scale), rest) = self.ops.split_last()? else {
            return None;
        };
        let inner = View {
            src: self.src.clone(),
            rows: self.rows.clone(),
            cols: self.cols.clone(),
            ops: rest.to_vec(),
            cast: None,
        };
        inner.is_sparse().then_some((inner, scale))
    }

    /// Source row of output row `r`.
    pub fn src_row(&self, r: u64) -> u64 {
        self.rows
            .as_ref()
            .map_or(r, |rows| rows[usize::try_from(r).expect("fits")])
    }

    /// Select output rows `rows` and output columns `cols` of this view
    /// (indices already validated and made non-negative by the caller).
    pub fn subset(&self, rows: Option<&[u64]>, cols: Option<&[u64]>) -> Result<View> {
        let check = |idx: &[u64], n: u64, axis: &str| -> Result<()> {
            if let Some(&i) = idx.iter().find(|&&i| i >= n) {
                return Err(OomError::Index(format!(
                    "{axis} index {i} is out of bounds for size {n}"
                )));
            }
            Ok(())
        };
        if let Some(c) = cols {
            if self.ops.iter().any(|op| op.needs_whole_rows()) {
                check(c, self.ncols(), "column")?;
                return self.subset(rows, None)?.rooted().subset(None, cols);
            }
        }
        let mut out = self.clone();
        if let Some(rows) = rows {
            check(rows, self.nrows(), "row")?;
            out.rows = Some(Arc::new(rows.iter().map(|&r| self.src_row(r)).collect()));
        }
        if let Some(cols) = cols {
            check(cols, self.ncols(), "column")?;
            let src_cols: Vec<u64> = match &self.cols {
                None => cols.to_vec(),
                Some(c) => cols
                    .iter()
                    .map(|&j| c.cols[usize::try_from(j).expect("fits")])
                    .collect(),
            };
            out.cols = Some(Arc::new(ColSel::new(src_cols, self.src.ncols())));
        }
        if rows.is_some() || cols.is_some() {
            out.ops = self.ops.iter().map(|op| op.subset(rows, cols)).collect();
        }
        Ok(out)
    }

    /// This view as the source of a new one (a one-part stack), so a later
    /// selection applies to its output rather than before its ops.
    fn rooted(&self) -> View {
        let n = self.ncols();
        let part = ConcatPart {
            view: self.clone(),
            colmap: (0..i64::try_from(n).expect("fits")).collect(),
        };
        let src = Concat::new(vec![part], n, self.dtype(), self.is_sparse(), 0.0)
            .expect("an identity column map is valid");
        View::new(src)
    }

    /// Output rows `a..b` of the stored values (selection only, no ops).
    pub fn read_stored(&self, a: u64, b: u64) -> Result<Block> {
        self.read_stored_as(a, b, None)
    }

    /// [`View::read_stored`], decoded into `dtype` where the source can
    /// (a hint: the block may come in the stored dtype).
    fn read_stored_as(&self, a: u64, b: u64, dtype: Option<Dtype>) -> Result<Block> {
        Ok(self.select(self.read_source(a, b, dtype)?))
    }

    /// The source rows under output rows `a..b`, before the column selection.
    fn read_source(&self, a: u64, b: u64, dtype: Option<Dtype>) -> Result<Block> {
        let rows: Vec<u64> = (a..b).map(|r| self.src_row(r)).collect();
        self.src.read_rows_as(&rows, dtype)
    }

    /// The type the stored values can be decoded into without changing any
    /// result: the cast when no transform comes before it, else the type
    /// the first transform converts its input to first.
    fn decode_dtype(&self) -> Option<Dtype> {
        match self.ops.first() {
            None => self.cast,
            Some(op) => op.reads_as(self.src.dtype()),
        }
    }

    /// Output rows `a..b` as one block, transforms applied.
    pub fn read(&self, a: u64, b: u64) -> Result<Block> {
        let decode = self.decode_dtype();
        self.transform(self.read_stored_as(a, b, decode)?, a, decode)
    }

    /// Output rows `a..b` read as one stored block (one large read, its
    /// chunks decoded in parallel), then handed to `f` as row slices of
    /// about `slice` stored entries, each selected and transformed on its
    /// own: every op and the kernel then work on data that stays in the
    /// core's cache instead of streaming the whole block through memory
    /// once per op (a view with nothing to apply hands over the whole
    /// block). The same values as [`View::read`] of each part.
    pub fn read_sliced(
        &self,
        a: u64,
        b: u64,
        slice: usize,
        mut f: impl FnMut(u64, u64, Block) -> Result<()>,
    ) -> Result<()> {
        let decode = self.decode_dtype();
        // Without a selection, cast or op there is nothing to keep in cache.
        let identity =
            self.cols.is_none() && self.ops.is_empty() && decode.is_none() && self.cast.is_none();
        match self.read_source(a, b, decode)? {
            Block::Csr(c) if c.nnz() > 2 * slice && !identity => {
                for (r0, r1) in c.row_slices(slice) {
                    let part = Block::Csr(match &self.cols {
                        Some(sel) => sel.apply_csr_rows(&c, r0..r1),
                        None => c.slice_rows(r0, r1),
                    });
                    let (s0, s1) = (a + r0 as u64, a + r1 as u64);
                    f(s0, s1, self.transform(part, s0, decode)?)?;
                }
                Ok(())
            }
            block => f(a, b, self.transform(self.select(block), a, decode)?),
        }
    }

    fn select(&self, block: Block) -> Block {
        match &self.cols {
            Some(c) => c.apply(block),
            None => block,
        }
    }

    /// The decode cast, the ops and the final cast on stored (selected)
    /// rows starting at output row `row0`.
    fn transform(&self, mut block: Block, row0: u64, decode: Option<Dtype>) -> Result<Block> {
        if let Some(d) = decode {
            // What the cast or the first op would do first (a no-op when
            // the source decoded into `d`).
            block = cast_block(block, d);
        }
        crate::cpu::clear_upper_vector_state();
        for op in &self.ops {
            block = op.apply(block, row0)?;
        }
        if let Some(d) = self.cast {
            block = cast_block(block, d);
        }
        Ok(block)
    }

    /// Split the output rows into blocks of about `target` values moved
    /// (stored entries; the full width once an op densifies).
    pub fn blocks(&self, target: u64) -> Result<Vec<(u64, u64)>> {
        self.blocks_of(&self.row_cost()?, 0, self.nrows(), target)
    }

    /// `groups` runs of contiguous rows of about equal stored size, for
    /// folds with one state per run. The split depends on the source rows'
    /// stored sizes only — not on the block size, the columns or the ops —
    /// so a column subset of this view, or the sparse values under a
    /// densifying scale (the sparse Gram route), fold the same rows into
    /// each state, and a distributed pass given these runs merges the very
    /// states of the pass in one process.
    pub fn runs(&self, groups: u64) -> Result<Vec<(u64, u64)>> {
        let cost = self.src.row_cost()?;
        let total: u64 = (0..self.nrows())
            .map(|r| cost.of(self.src_row(r)).max(1))
            .sum();
        self.blocks_of(&cost, 0, self.nrows(), total.div_ceil(groups.max(1)).max(1))
    }

    /// The blocks of rows `a..b` (see [`View::blocks`]).
    pub fn blocks_between(&self, a: u64, b: u64, target: u64) -> Result<Vec<(u64, u64)>> {
        self.blocks_of(&self.row_cost()?, a, b, target)
    }

    fn row_cost(&self) -> Result<RowCost> {
        Ok(if self.is_sparse() || !self.src.is_sparse() {
            self.src.row_cost()?
        } else {
            RowCost::Width(self.ncols())
        })
    }

    fn blocks_of(&self, cost: &RowCost, a0: u64, n: u64, target: u64) -> Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        let (mut a, mut acc) = (a0, 0u64);
        for r in a0..n {
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

    /// Approximate number of values a full pass moves (for block sizing).
    pub fn approx_cost(&self) -> u64 {
        let dense = self.nrows().saturating_mul(self.ncols());
        if !self.is_sparse() {
            return dense;
        }
        match self.src.stored_nnz() {
            Some(nnz) => {
                let frac = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
                (nnz as f64
                    * frac(self.nrows(), self.src.nrows())
                    * frac(self.ncols(), self.src.ncols())) as u64
            }
            None => dense,
        }
    }
}
