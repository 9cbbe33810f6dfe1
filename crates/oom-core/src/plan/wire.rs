//! A plan as bytes: a [`View`] written with where its rows come from (file,
//! element, layout — or the stacked parts of a concatenation), its row and
//! column selections, its transforms with their parameters and its cast, so
//! that another process (a `dask.distributed` worker) rebuilds the same view
//! by opening the file itself. No data is written, only parameters.
//!
//! The bytes are a checked [`frame`]: a truncated or damaged plan is refused
//! instead of rebuilding a different matrix.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Concat, ConcatPart, Op, Source, View};
use crate::block::Dtype;
use crate::error::{OomError, Result};
use crate::frame::{self, Kind};
use crate::storage::origin::{reopen, Origin};

const KIND: Kind = Kind {
    tag: b"OOMPLAN\0",
    version: 1,
    what: "plan",
};

#[derive(Serialize, Deserialize)]
struct WireView {
    src: WireSource,
    rows: Option<Arc<Vec<u64>>>,
    cols: Option<Vec<u64>>,
    ops: Vec<Op>,
    cast: Option<Dtype>,
}

#[derive(Serialize, Deserialize)]
enum WireSource {
    /// The shape is kept to notice a file that changed since.
    Stored {
        origin: Origin,
        nrows: u64,
        ncols: u64,
    },
    Concat {
        parts: Vec<(WireView, Vec<i64>)>,
        ncols: u64,
        dtype: Dtype,
        sparse: bool,
        fill: f64,
    },
}

/// The bytes that [`decode`] turns back into `view`; fails for a view whose
/// source was not opened from a file (e.g. a parsed MatrixMarket held in
/// this process's temp files).
pub fn encode(view: &View) -> Result<Vec<u8>> {
    frame::seal(&KIND, &to_wire(view)?)
}

/// Rebuild the view [`encode`] wrote, reopening its files (once per process
/// while they are unchanged).
pub fn decode(bytes: &[u8]) -> Result<View> {
    from_wire(frame::open(&KIND, bytes)?)
}

fn to_wire(view: &View) -> Result<WireView> {
    let src = match &view.src {
        Source::Stored(m) => WireSource::Stored {
            origin: m.origin.clone().ok_or_else(|| {
                OomError::Value(
                    "this matrix lives in temporary files of this process (e.g. a parsed \
                     MatrixMarket file) and cannot be rebuilt elsewhere; write it to an \
                     .h5ad file or a .zarr store first"
                        .into(),
                )
            })?,
            nrows: m.nrows,
            ncols: m.ncols,
        },
        Source::Concat(c) => WireSource::Concat {
            parts: c
                .parts()
                .iter()
                .map(|p| Ok((to_wire(&p.view)?, p.colmap.clone())))
                .collect::<Result<_>>()?,
            ncols: c.ncols(),
            dtype: c.dtype(),
            sparse: c.is_sparse(),
            fill: c.fill(),
        },
    };
    Ok(WireView {
        src,
        rows: view.rows.clone(),
        cols: view.cols.as_ref().map(|c| c.cols.clone()),
        ops: view.ops.clone(),
        cast: view.cast,
    })
}

fn from_wire(w: WireView) -> Result<View> {
    let src: Source = match w.src {
        WireSource::Stored {
            origin,
            nrows,
            ncols,
        } => {
            let m = reopen(&origin)?;
            if (m.nrows, m.ncols) != (nrows, ncols) {
                return Err(OomError::Value(format!(
                    "'{}' element '{}' is now {} × {}, the plan was made on {nrows} × {ncols} \
                     (the file changed)",
                    origin.path, origin.key, m.nrows, m.ncols
                )));
            }
            m.into()
        }
        WireSource::Concat {
            parts,
            ncols,
            dtype,
            sparse,
            fill,
        } => {
            let parts = parts
                .into_iter()
                .map(|(v, colmap)| {
                    Ok(ConcatPart {
                        view: from_wire(v)?,
                        colmap,
                    })
                })
                .collect::<Result<_>>()?;
            Concat::new(parts, ncols, dtype, sparse, fill)?.into()
        }
    };
    // The selections are source rows and columns: a subset of the bare source
    // checks and builds them as any subset does; the ops are already in
    // output coordinates.
    let view = View::new(src).subset(w.rows.as_ref().map(|r| r.as_slice()), w.cols.as_deref())?;
    Ok(View {
        ops: w.ops,
        cast: w.cast,
        ..view
    })
}
