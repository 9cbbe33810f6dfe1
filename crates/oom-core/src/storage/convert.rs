//! Stored values converted while they are decoded: a read names the element
//! type its caller wants ([`Target`]), and each piece of the file is turned
//! into it as it arrives (on the thread that read it, while it is in cache),
//! instead of a second pass over a whole block. Cell Ranger's `.h5` is the
//! case in point: int64 column indices become the block's int32 ones, and
//! int32 counts become scanpy's float32, in the read itself.

use crate::block::{Dtype, Scalar, Values};
use crate::error::{OomError, Result};
use crate::plan::cast_value;
use crate::with_dtype;

/// What a read turns the stored values into.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Values of this dtype, converted as [`crate::plan::cast_block`] does
    /// ([`cast_value`], numpy's `astype`).
    Values(Dtype),
    /// Column indices of an axis of length `ncols`: int32, each checked to
    /// lie in `0..min(ncols, 2^31)` (stored int32 indices are copied as they
    /// are; the block's `canonicalize` checks them). `what` names the matrix
    /// in the error.
    Index { ncols: u64, what: &'a str },
}

impl Target<'_> {
    /// Element type of the result.
    pub fn dtype(self) -> Dtype {
        match self {
            Target::Values(d) => d,
            Target::Index { .. } => Dtype::I32,
        }
    }

    /// True when values stored as `from` are the result's bytes as they are.
    pub fn is_copy(self, from: Dtype) -> bool {
        from == self.dtype()
    }

    /// Convert the whole elements of `src` (little-endian `from`) into `dst`
    /// (little-endian [`Target::dtype`], as many elements).
    pub fn convert(self, from: Dtype, src: &[u8], dst: &mut [u8]) -> Result<()> {
        debug_assert_eq!(src.len() / from.size(), dst.len() / self.dtype().size());
        if self.is_copy(from) {
            dst.copy_from_slice(src);
            return Ok(());
        }
        match self {
            Target::Values(to) => {
                with_dtype!(from, S => with_dtype!(to, T => values::<S, T>(src, dst)));
                Ok(())
            }
            Target::Index { ncols, what } => {
                if from.is_float() {
                    return Err(OomError::Corrupt(format!(
                        "{what}: indices must be integers"
                    )));
                }
                match with_dtype!(from, S => index::<S>(src, dst, ncols.min(1 << 31))) {
                    None => Ok(()),
                    // a u64 index past i64::MAX was widened to a negative one
                    Some(c) if from == Dtype::U64 => Err(out_of_range(
                        u64::from_ne_bytes(c.to_ne_bytes()),
                        ncols,
                        what,
                    )),
                    Some(c) => Err(out_of_range(c, ncols, what)),
                }
            }
        }
    }

    /// Check that `n` elements of a chunk never written (read as zeros)
    /// convert: the result buffer already holds the zeros.
    pub fn check_zeros(self, n: u64) -> Result<()> {
        match self {
            Target::Index { ncols: 0, what } if n > 0 => Err(out_of_range(0, 0, what)),
            _ => Ok(()),
        }
    }

    /// Convert a whole buffer (for stores without a decode of their own).
    pub fn convert_values(self, v: Values) -> Result<Values> {
        let from = v.dtype();
        if self.is_copy(from) {
            return Ok(v);
        }
        let mut out = Values::zeros(self.dtype(), v.len());
        self.convert(from, v.bytes(), out.bytes_mut())?;
        Ok(out)
    }
}

pub(crate) fn out_of_range(c: impl std::fmt::Display, ncols: u64, what: &str) -> OomError {
    OomError::Corrupt(format!(
        "{what}: stored index {c} is out of range for an axis of length {ncols}"
    ))
}

/// Little-endian loads and stores of one element.
trait Le: Scalar {
    fn load(b: &[u8]) -> Self;
    fn store(self, b: &mut [u8]);
}

/// Element types widened to i64 as `as` does: u64 past i64::MAX wraps
/// negative, so one unsigned comparison checks both ends of an index range
/// (floats are refused as indices before).
trait Wide: Le {
    fn wide(self) -> i64;
}

macro_rules! le {
    ($($t:ty),*) => {$(
        impl Le for $t {
            #[inline]
            fn load(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("one element"))
            }
            #[inline]
            fn store(self, b: &mut [u8]) {
                b.copy_from_slice(&self.to_le_bytes());
            }
        }

        impl Wide for $t {
            #[inline]
            #[allow(clippy::cast_possible_wrap, clippy::cast_lossless, clippy::cast_possible_truncation)]
            fn wide(self) -> i64 {
                self as i64
            }
        }
    )*};
}
le!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);

fn values<S: Le, T: Le>(src: &[u8], dst: &mut [u8]) {
    let (s, t) = (size_of::<S>(), size_of::<T>());
    for (a, b) in src.chunks_exact(s).zip(dst.chunks_exact_mut(t)) {
        cast_value::<S, T>(S::load(a)).store(b);
    }
}

/// Narrow to int32 in one pass that vectorises (no early exit); on a value
/// outside `0..limit` return the first such value.
#[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
fn index<S: Wide>(src: &[u8], dst: &mut [u8], limit: u64) -> Option<i64> {
    let mut bad = false;
    for (a, b) in src
        .chunks_exact(size_of::<S>())
        .zip(dst.chunks_exact_mut(4))
    {
        let c = S::load(a).wide();
        bad |= c as u64 >= limit;
        (c as i32).store(b);
    }
    if !bad {
        return None;
    }
    src.chunks_exact(size_of::<S>())
        .map(|a| S::load(a).wide())
        .find(|&c| c as u64 >= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(v: Values, ncols: u64) -> Result<Values> {
        Target::Index { ncols, what: "m" }.convert_values(v)
    }

    #[test]
    fn wide_indices_are_narrowed_and_range_checked() {
        assert_eq!(
            idx(Values::I64(vec![0, 9, 3]), 10).unwrap(),
            Values::I32(vec![0, 9, 3])
        );
        assert_eq!(idx(Values::U16(vec![7]), 10).unwrap(), Values::I32(vec![7]));
        // int32 indices are the block's as they are (canonicalize checks them)
        assert_eq!(
            idx(Values::I32(vec![-1]), 10).unwrap(),
            Values::I32(vec![-1])
        );
        for bad in [
            Values::I64(vec![0, 10]),
            Values::I64(vec![-1]),
            Values::I64(vec![1 << 33]),
            Values::U64(vec![u64::MAX]),
            Values::I8(vec![-3]),
            Values::U32(vec![10]),
        ] {
            let e = idx(bad, 10).unwrap_err().to_string();
            assert!(e.starts_with("m: stored index"), "{e}");
            assert!(e.contains("out of range"), "{e}");
        }
        // the first bad value is named
        let e = idx(Values::I64(vec![1, 12, -4]), 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("index 12 "), "{e}");
        // a u64 past i64::MAX is named as stored, not as the i64 it widened to
        let e = idx(Values::U64(vec![(1 << 63) + 5]), 10).unwrap_err();
        assert!(e.to_string().contains("index 9223372036854775813 "), "{e}");
        // more columns than int32 holds: values past 2^31 are refused, not wrapped
        let e = idx(Values::U64(vec![(1 << 32) + 5]), 1 << 40).unwrap_err();
        assert!(e.to_string().contains("out of range"));
        let e = idx(Values::F32(vec![1.0]), 10).unwrap_err();
        assert!(e.to_string().contains("must be integers"), "{e}");
        assert!(Target::Index {
            ncols: 0,
            what: "m"
        }
        .check_zeros(1)
        .is_err());
        assert!(Target::Index {
            ncols: 0,
            what: "m"
        }
        .check_zeros(0)
        .is_ok());
        assert!(Target::Values(Dtype::F32).check_zeros(5).is_ok());
    }

    #[test]
    fn values_convert_as_cast_block() {
        let all = [
            Values::I8(vec![-128, 0, 127]),
            Values::I16(vec![-32768, 7, 32767]),
            Values::I32(vec![i32::MIN, 16_777_217, i32::MAX]),
            Values::I64(vec![i64::MIN, 9_007_199_254_740_993, i64::MAX]),
            Values::U8(vec![0, 1, 255]),
            Values::U16(vec![0, 3, 65535]),
            Values::U32(vec![0, 16_777_217, u32::MAX]),
            Values::U64(vec![0, 9_007_199_254_740_993, u64::MAX]),
            Values::F32(vec![-1.5, f32::NAN, 3e38]),
            Values::F64(vec![-1.5, 1e300, f64::NAN]),
        ];
        for v in &all {
            for to in [Dtype::F32, Dtype::F64, Dtype::I32, Dtype::U16, Dtype::I64] {
                let got = Target::Values(to).convert_values(v.clone()).unwrap();
                let want = crate::block::Block::Dense(crate::block::Dense {
                    nrows: 1,
                    ncols: v.len(),
                    data: v.clone(),
                });
                let crate::block::Block::Dense(want) = crate::plan::cast_block(want, to) else {
                    unreachable!()
                };
                // bit patterns, so NaN compares
                assert_eq!(got.bytes(), want.data.bytes(), "{v:?} -> {to:?}");
            }
        }
    }
}
