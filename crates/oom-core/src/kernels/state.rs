//! What one pass over some rows leaves, as one value: the states of
//! consecutive row ranges (one process's runs, or dask workers' tasks)
//! combine in row order into the state of all their rows — the same state,
//! to the bit, as one pass over all of them folding the same runs — and
//! travel between processes as checked bytes.

use serde::{Deserialize, Serialize};

use crate::block::Values;
use crate::error::{OomError, Result};
use crate::frame::{self, Kind};
use crate::kernels::gram::GramState;
use crate::kernels::moments::Moments;
use crate::kernels::qc::{PositiveCounts, QcRows, QcState};
use crate::kernels::regress::RegressState;

/// A pass's partial result; see each kernel for what the fields mean.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PassState {
    /// [`super::qc::qc_metrics`]: per-row results (`top` cumulative sums and
    /// `masks` sums per row) and the column state.
    Qc {
        rows: QcRows,
        top: usize,
        masks: usize,
        state: QcState,
    },
    /// [`super::qc::positive_counts`].
    Positive(PositiveCounts),
    /// [`super::qc::count_above`]: per column.
    CountAbove(Vec<u64>),
    /// [`super::moments::moments`] and the rows' sums.
    Moments { moments: Moments, row_sum: Vec<f64> },
    /// The PCA Gram pass ([`crate::linalg::pca::gram_pass`]).
    Gram(GramState),
    /// [`super::regress::regress_pass`].
    Regress(RegressState),
    /// `ncols` values per row, row-major (PCA scores).
    Rows { ncols: usize, values: Values },
}

const KIND: Kind = Kind {
    tag: b"OOMPASS\0",
    version: 1,
    what: "pass state",
};

impl PassState {
    /// The kernel that made it, as named in errors.
    pub fn name(&self) -> &'static str {
        match self {
            PassState::Qc { .. } => "qc_metrics",
            PassState::Positive(_) => "positive_counts",
            PassState::CountAbove(_) => "count_above",
            PassState::Moments { .. } => "moments",
            PassState::Gram(_) => "gram",
            PassState::Regress(_) => "regress_stats",
            PassState::Rows { .. } => "rows",
        }
    }

    /// Rows the state covers.
    pub fn nrows(&self) -> u64 {
        let n = match self {
            PassState::Qc { rows, .. } => rows.total.len(),
            PassState::Positive(p) => p.row_sum.len(),
            PassState::Moments { row_sum, .. } => row_sum.len(),
            PassState::Gram(g) => return g.n(),
            PassState::Regress(r) => return r.nrows(),
            PassState::Rows { ncols, values } => values.len().checked_div(*ncols).unwrap_or(0),
            PassState::CountAbove(_) => return 0,
        };
        n as u64
    }

    /// The state of `states`' rows one after the other (row order).
    pub fn combine(states: impl IntoIterator<Item = PassState>) -> Result<PassState> {
        let mut it = states.into_iter();
        let mut out = it
            .next()
            .ok_or_else(|| OomError::Value("no pass states to combine".into()))?;
        for s in it {
            out.append(s)?;
        }
        Ok(out)
    }

    /// Add the state of the rows that follow ours.
    fn append(&mut self, next: PassState) -> Result<()> {
        let mismatch = |a: &PassState, b: &PassState, what: &str| {
            OomError::Value(format!(
                "cannot combine a {} state with a {} state{what}",
                a.name(),
                b.name()
            ))
        };
        match (&mut *self, next) {
            (
                PassState::Qc {
                    rows,
                    top,
                    masks,
                    state,
                },
                PassState::Qc {
                    rows: r,
                    top: t,
                    masks: m,
                    state: s,
                },
            ) => {
                same_width("qc_metrics", state.cols.sum.len(), s.cols.sum.len())?;
                if (*top, *masks) != (t, m) {
                    return Err(OomError::Value(format!(
                        "cannot combine qc_metrics states of {top} and {t} top ranks, {masks} and {m} masks"
                    )));
                }
                state.append(&s, rows.total.len() as u64);
                rows.append(r);
            }
            (PassState::Positive(a), PassState::Positive(b)) => {
                same_width("positive_counts", a.col_sum.len(), b.col_sum.len())?;
                add(&mut a.col_sum, &b.col_sum);
                add(&mut a.col_pos, &b.col_pos);
                a.row_sum.extend(b.row_sum);
                a.row_pos.extend(b.row_pos);
            }
            (PassState::CountAbove(a), PassState::CountAbove(b)) => {
                same_width("count_above", a.len(), b.len())?;
                add(a, &b);
            }
            (
                PassState::Moments { moments, row_sum },
                PassState::Moments {
                    moments: m,
                    row_sum: r,
                },
            ) => {
                moments.combine(&m)?;
                row_sum.extend(r);
            }
            (PassState::Gram(a), PassState::Gram(b)) => {
                same_width("gram", a.ncols(), b.ncols())?;
                a.combine(&b);
            }
            (PassState::Regress(a), PassState::Regress(b)) => {
                same_width("regress_stats", a.ncols(), b.ncols())?;
                if a.width != b.width {
                    return Err(OomError::Value(format!(
                        "cannot combine regress_stats states of designs {} and {} wide",
                        a.width, b.width
                    )));
                }
                a.combine(&b);
            }
            (
                PassState::Rows { ncols, values },
                PassState::Rows {
                    ncols: k,
                    values: v,
                },
            ) => {
                same_width("rows", *ncols, k)?;
                if values.dtype() != v.dtype() {
                    return Err(OomError::Value(format!(
                        "cannot combine rows of {} and {} values",
                        values.dtype().name(),
                        v.dtype().name()
                    )));
                }
                values.extend_from(&v);
            }
            (a, b) => return Err(mismatch(a, &b, "")),
        }
        Ok(())
    }

    /// The bytes [`PassState::from_bytes`] reads back.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        frame::seal(&KIND, self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<PassState> {
        frame::open(&KIND, bytes)
    }
}

fn same_width(name: &str, a: usize, b: usize) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(OomError::Value(format!(
            "cannot combine {name} states of {a} and {b} columns"
        )))
    }
}

fn add<T: Copy + std::ops::AddAssign>(a: &mut [T], b: &[T]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += *y);
}
