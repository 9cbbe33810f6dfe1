//! Values sent to another process (plans, pass states) as checked bytes.
//!
//! Layout: an 8-byte tag naming what the bytes hold, the format version
//! (u16 LE), the postcard payload, and a CRC-32 of the payload (u32 LE): a
//! truncated or damaged message, or one from another anndataoom version, is
//! refused with a clear error instead of being read as something else.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{OomError, Result};

/// What a message holds, and which format of it this build reads.
pub struct Kind {
    pub tag: &'static [u8; 8],
    /// Raised whenever the payload changes meaning (a new field, a new variant).
    pub version: u16,
    /// Named in errors: "not a valid anndataoom {what}".
    pub what: &'static str,
}

/// `value` as the bytes [`open`] reads back.
pub fn seal<T: Serialize>(kind: &Kind, value: &T) -> Result<Vec<u8>> {
    let payload = postcard::to_stdvec(value)
        .map_err(|e| OomError::Value(format!("cannot write the {}: {e}", kind.what)))?;
    let mut out = Vec::with_capacity(payload.len() + kind.tag.len() + 6);
    out.extend_from_slice(kind.tag);
    out.extend_from_slice(&kind.version.to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&crc(&payload).to_le_bytes());
    Ok(out)
}

/// The value [`seal`] wrote.
pub fn open<T: DeserializeOwned>(kind: &Kind, bytes: &[u8]) -> Result<T> {
    let bad = |why: &str| OomError::Value(format!("not a valid anndataoom {}: {why}", kind.what));
    let head = kind.tag.len() + 2;
    if bytes.len() < head + 4 || &bytes[..kind.tag.len()] != kind.tag {
        return Err(bad(&format!(
            "it does not start with the {} header",
            kind.what
        )));
    }
    let version = u16::from_le_bytes([bytes[head - 2], bytes[head - 1]]);
    if version != kind.version {
        return Err(bad(&format!(
            "format {version}, this anndataoom reads format {} (use the same version everywhere)",
            kind.version
        )));
    }
    let (payload, sum) = bytes[head..].split_at(bytes.len() - head - 4);
    if crc(payload).to_le_bytes() != sum {
        return Err(bad("checksum mismatch (truncated or damaged)"));
    }
    postcard::from_bytes(payload).map_err(|e| bad(&e.to_string()))
}

fn crc(payload: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(payload);
    c.sum()
}
