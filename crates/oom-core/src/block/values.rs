//! Typed value buffers: a matrix keeps the dtype it was stored with, and
//! kernels read any of them as f64 through [`Scalar`].

#[cfg(target_endian = "big")]
compile_error!(
    "anndataoom reads little-endian files by memcpy; big-endian targets are unsupported"
);

use crate::error::{OomError, Result};

/// A numeric element type that can live in a stored matrix.
pub trait Scalar: Copy + Send + Sync + Default + PartialEq + 'static {
    const DTYPE: Dtype;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    /// The value's bits as an `i64` for an integer type (`None` for floats).
    fn to_i64_bits(self) -> Option<i64>;
    /// From an integer, keeping the low bits as numpy's integer casts do
    /// (300 → 44 as `int8`, −1 → 65535 as `uint16`).
    fn from_i64_wrapping(v: i64) -> Self;
    /// The [`Values`] variant holding a vector of this type.
    fn into_values(v: Vec<Self>) -> Values;
}

macro_rules! scalar {
    ($t:ty, $d:ident, $int:literal) => {
        impl Scalar for $t {
            const DTYPE: Dtype = Dtype::$d;
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            #[allow(clippy::cast_possible_wrap)]
            fn to_i64_bits(self) -> Option<i64> {
                $int.then_some(self as i64)
            }
            #[inline]
            #[allow(clippy::cast_possible_truncation)]
            fn from_i64_wrapping(v: i64) -> Self {
                v as $t
            }
            fn into_values(v: Vec<Self>) -> Values {
                Values::$d(v)
            }
        }
    };
}
scalar!(f32, F32, false);
scalar!(f64, F64, false);
scalar!(i8, I8, true);
scalar!(i16, I16, true);
scalar!(i32, I32, true);
scalar!(i64, I64, true);
scalar!(u8, U8, true);
scalar!(u16, U16, true);
scalar!(u32, U32, true);
scalar!(u64, U64, true);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Dtype {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }

    /// numpy's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::U8 => "uint8",
            Dtype::U16 => "uint16",
            Dtype::U32 => "uint32",
            Dtype::U64 => "uint64",
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "float32" => Dtype::F32,
            "float64" => Dtype::F64,
            "int8" => Dtype::I8,
            "int16" => Dtype::I16,
            "int32" => Dtype::I32,
            "int64" => Dtype::I64,
            "uint8" | "bool" => Dtype::U8,
            "uint16" => Dtype::U16,
            "uint32" => Dtype::U32,
            "uint64" => Dtype::U64,
            other => return Err(OomError::Value(format!("unsupported dtype '{other}'"))),
        })
    }

    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F32 | Dtype::F64)
    }
}

/// A buffer of one dtype.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
}

/// Run `$body` with `$v` bound to the typed vector inside a [`Values`].
#[macro_export]
macro_rules! with_values {
    ($values:expr, $v:ident => $body:expr) => {
        match $values {
            $crate::block::Values::F32($v) => $body,
            $crate::block::Values::F64($v) => $body,
            $crate::block::Values::I8($v) => $body,
            $crate::block::Values::I16($v) => $body,
            $crate::block::Values::I32($v) => $body,
            $crate::block::Values::I64($v) => $body,
            $crate::block::Values::U8($v) => $body,
            $crate::block::Values::U16($v) => $body,
            $crate::block::Values::U32($v) => $body,
            $crate::block::Values::U64($v) => $body,
        }
    };
}

/// Run `$body` with the type `$t` bound to the element type of `dtype`.
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        $crate::with_dtype!(@ $dtype, $t, $body;
            F32 f32, F64 f64, I8 i8, I16 i16, I32 i32, I64 i64, U8 u8, U16 u16, U32 u32, U64 u64)
    };
    (@ $dtype:expr, $t:ident, $body:expr; $($v:ident $ty:ty),*) => {
        match $dtype {
            $($crate::block::Dtype::$v => {
                type $t = $ty;
                $body
            })*
        }
    };
}

/// Build a [`Values`] of `dtype` from `$body`, a `Vec<$t>` for the element
/// type `$t` of `dtype`.
#[macro_export]
macro_rules! values_of {
    ($dtype:expr, $t:ident => $body:expr) => {
        $crate::with_dtype!($dtype, $t => <$t as $crate::block::Scalar>::into_values($body))
    };
}

impl Values {
    pub fn empty(dtype: Dtype) -> Self {
        values_of!(dtype, T => Vec::<T>::new())
    }

    pub fn zeros(dtype: Dtype, n: usize) -> Self {
        values_of!(dtype, T => vec![T::default(); n])
    }

    pub fn dtype(&self) -> Dtype {
        with_values!(self, v => element_dtype(v))
    }

    pub fn len(&self) -> usize {
        with_values!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decode little-endian bytes (a whole number of elements): one memcpy,
    /// since every supported target is little-endian.
    pub fn from_le_bytes(dtype: Dtype, bytes: &[u8]) -> Self {
        let mut out = Values::zeros(dtype, bytes.len() / dtype.size());
        out.bytes_mut()
            .copy_from_slice(&bytes[..bytes.len() / dtype.size() * dtype.size()]);
        out
    }

    /// The raw little-endian bytes of the buffer.
    pub fn bytes(&self) -> &[u8] {
        with_values!(self, v => {
            let n = std::mem::size_of_val(v.as_slice());
            // SAFETY: plain-old-data numbers viewed as bytes.
            unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), n) }
        })
    }

    /// The raw little-endian bytes of the buffer, writable (for filling a
    /// buffer straight from a file or decoder).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        with_values!(self, v => {
            let n = std::mem::size_of_val(v.as_slice());
            // SAFETY: plain-old-data numbers; any byte pattern is a valid value.
            unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), n) }
        })
    }

    /// Gather `idx` into a new buffer of the same dtype.
    pub fn gather(&self, idx: impl Iterator<Item = usize> + Clone) -> Self {
        values_of!(self.dtype(), T => {
            let src: &[T] = self.as_slice::<T>().expect("dtype matches");
            idx.map(|i| src[i]).collect()
        })
    }

    /// A copy of entries `a..b`.
    pub fn slice(&self, a: usize, b: usize) -> Self {
        with_values!(self, v => Scalar::into_values(v[a..b].to_vec()))
    }

    /// The values as f64, whatever the dtype.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        with_values!(self, v => v.iter().map(|x| x.to_f64()).collect())
    }

    /// Borrow as `&[T]` when the dtype is `T`.
    pub fn as_slice<T: Scalar>(&self) -> Option<&[T]> {
        with_values!(self, v => {
            if element_dtype(v) == T::DTYPE {
                // SAFETY: the dtype tag proves the element type is T.
                Some(unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<T>(), v.len()) })
            } else {
                None
            }
        })
    }

    /// Mutable access to the vector when the dtype is `T`.
    pub fn as_mut_vec<T: Scalar>(&mut self) -> Option<&mut Vec<T>> {
        with_values!(self, v => (v as &mut dyn std::any::Any).downcast_mut::<Vec<T>>())
    }

    /// Append `other` (same dtype) to `self`.
    pub fn extend_from(&mut self, other: &Values) {
        with_values!(self, v => {
            let o = other.as_slice().expect("dtypes of appended values match");
            v.extend_from_slice(o);
        });
    }
}

fn element_dtype<T: Scalar>(_: &[T]) -> Dtype {
    T::DTYPE
}

/// Whether `x` is a finite whole number. Inline (`f64::fract` and
/// `f64::trunc` are libm calls without SSE4.1), for the per-value count
/// checks of the QC and moments passes.
#[inline]
pub fn is_whole(x: f64) -> bool {
    // From 2^52 on every float is whole; below it the i64 round trip is exact.
    let whole = x.abs() >= 4_503_599_627_370_496.0 || (x as i64) as f64 == x;
    x.is_finite() && whole
}

#[cfg(test)]
mod whole_tests {
    use super::is_whole;

    #[test]
    fn whole_numbers_as_fract_says() {
        for x in [
            0.0,
            -0.0,
            1.0,
            -7.0,
            3e15,
            1e300,
            -1e20,
            4_503_599_627_370_495.0,
        ] {
            assert!(is_whole(x), "{x}");
        }
        for x in [
            0.5,
            -0.25,
            1e-300,
            4_503_599_627_370_495.5,
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
        ] {
            assert!(!is_whole(x), "{x}");
        }
    }
}
