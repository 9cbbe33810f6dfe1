//! A plan as bytes: a [`View`] written with where its rows come from (file,
//! element, layout — or the stacked parts of a concatenation), its row and
//! column selections, its transforms with their parameters and its cast, so
//! that another process (a `dask.distributed` worker) rebuilds the same view
//! by opening the file itself. No data is written, only parameters.
//!
//! Layout: `MAGIC`, the format version (u16 LE), the postcard payload, and a
//! CRC-32 of the payload (u32 LE): a truncated or damaged plan is refused
//! instead of rebuilding a different matrix.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Concat, ConcatPart, Op, Source, View};
use crate::block::Dtype;
use crate::error::{OomError, Result};
use crate::storage::origin::{reopen, Origin};

const MAGIC: &[u8; 8] = b"OOMPLAN\0";
/// Raised whenever the payload changes meaning (a new op field, a new variant).
const VERSION: u16 = 1;

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
    let payload = postcard::to_stdvec(&to_wire(view)?)
        .map_err(|e| OomError::Value(format!("cannot write the plan: {e}")))?;
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&crc(&payload).to_le_bytes());
    Ok(out)
}

/// Rebuild the view [`encode`] wrote, reopening its files (once per process
/// while they are unchanged).
pub fn decode(bytes: &[u8]) -> Result<View> {
    let bad = |why: &str| OomError::Value(format!("not a valid anndataoom plan: {why}"));
    let head = MAGIC.len() + 2;
    if bytes.len() < head + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad("it does not start with the plan header"));
    }
    let version = u16::from_le_bytes([bytes[MAGIC.len()], bytes[MAGIC.len() + 1]]);
    if version != VERSION {
        return Err(bad(&format!(
            "format {version}, this anndataoom reads format {VERSION} (use the same version everywhere)"
        )));
    }
    let (payload, sum) = bytes[head..].split_at(bytes.len() - head - 4);
    if crc(payload).to_le_bytes() != sum {
        return Err(bad("checksum mismatch (truncated or damaged)"));
    }
    let wire: WireView = postcard::from_bytes(payload).map_err(|e| bad(&e.to_string()))?;
    from_wire(wire)
}

fn crc(payload: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(payload);
    c.sum()
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
