//! The helpers every transform uses to rewrite a block's values in a float
//! type (f32 or f64, computed in f64).

use std::sync::Arc;

use crate::block::{Block, Csr, Dense, Dtype, Scalar, Values};
use crate::{values_of, with_values};

/// `params[idx]` for every index (`None` = unchanged).
pub fn gather<T: Copy>(params: &Arc<Vec<T>>, idx: Option<&[u64]>) -> Arc<Vec<T>> {
    match idx {
        None => Arc::clone(params),
        Some(idx) => Arc::new(
            idx.iter()
                .map(|&i| params[usize::try_from(i).expect("fits")])
                .collect(),
        ),
    }
}

/// The float type a transform computes in: floats stay, integers become `int_to`.
pub fn to_float(input: Dtype, int_to: Dtype) -> Dtype {
    if input.is_float() {
        input
    } else {
        int_to
    }
}

fn convert(v: &Values, dtype: Dtype) -> Values {
    if v.dtype() == dtype {
        return v.clone();
    }
    values_of!(dtype, T => with_values!(v, x => x.iter().map(|&e| cast_value::<_, T>(e)).collect::<Vec<T>>()))
}

/// One value as numpy's `astype` gives it: integers to integers wrap (keep
/// the low bits, exactly, even past 2⁵³), floats to integers truncate toward
/// zero first (numpy leaves out-of-range values undefined; here they wrap
/// from `i64`, as numpy does on x86 for the narrow types).
#[inline]
pub fn cast_value<S: Scalar, T: Scalar>(e: S) -> T {
    if T::DTYPE.is_float() {
        T::from_f64(e.to_f64())
    } else {
        #[allow(clippy::cast_possible_truncation)]
        T::from_i64_wrapping(e.to_i64_bits().unwrap_or_else(|| e.to_f64() as i64))
    }
}

/// The block with values converted to `dtype`.
pub fn cast_block(block: Block, dtype: Dtype) -> Block {
    if block.dtype() == dtype {
        return block;
    }
    match block {
        Block::Csr(c) => Block::Csr(Csr {
            data: convert(&c.data, dtype),
            ..c
        }),
        Block::Dense(d) => Block::Dense(Dense {
            data: convert(&d.data, dtype),
            ..d
        }),
    }
}

/// Rewrite every value `x` as `f(x)` (a function of the value alone), in
/// float type `dtype`, as [`map_block`] without `densify`.
pub fn map_values(block: Block, dtype: Dtype, mut f: impl FnMut(f64) -> f64) -> Block {
    let mut block = cast_block(block, dtype);
    let data = match &mut block {
        Block::Csr(c) => &mut c.data,
        Block::Dense(d) => &mut d.data,
    };
    match data {
        Values::F32(v) => v
            .iter_mut()
            .for_each(|x| *x = f32::from_f64(f(f64::from(*x)))),
        Values::F64(v) => v.iter_mut().for_each(|x| *x = f(*x)),
        _ => unreachable!("map_values converts to a float type"),
    }
    block
}

fn map_csr<T: Scalar>(
    v: &mut [T],
    indptr: &[i64],
    indices: &[i32],
    f: &mut impl FnMut(usize, usize, f64) -> f64,
) {
    for (r, w) in indptr.windows(2).enumerate() {
        let (a, b) = (w[0] as usize, w[1] as usize);
        for (x, &c) in v[a..b].iter_mut().zip(&indices[a..b]) {
            let c = c as usize;
            *x = T::from_f64(f(r, c, x.to_f64()));
        }
    }
}

fn map_typed<T: Scalar>(
    v: &mut [T],
    mut at: impl FnMut(usize) -> (usize, usize),
    f: &mut impl FnMut(usize, usize, f64) -> f64,
) {
    for (k, x) in v.iter_mut().enumerate() {
        let (r, c) = at(k);
        *x = T::from_f64(f(r, c, x.to_f64()));
    }
}

/// Rewrite every value `x` at block row `r`, column `c` as `f(r, c, x)`,
/// in float type `dtype` (the block is converted first; results are
/// rounded to `dtype`). Sparse blocks only see their stored entries, unless
/// `densify`, which turns the block dense first.
pub fn map_block(
    block: Block,
    dtype: Dtype,
    densify: bool,
    mut f: impl FnMut(usize, usize, f64) -> f64,
) -> Block {
    let block = match block {
        Block::Csr(c) if densify => Block::Dense(c.to_dense()),
        b => b,
    };
    match cast_block(block, dtype) {
        Block::Csr(mut c) => {
            match &mut c.data {
                Values::F32(v) => map_csr(v, &c.indptr, &c.indices, &mut f),
                Values::F64(v) => map_csr(v, &c.indptr, &c.indices, &mut f),
                _ => unreachable!("map_block converts to a float type"),
            }
            Block::Csr(c)
        }
        Block::Dense(mut d) => {
            let n = d.ncols.max(1);
            let at = |k: usize| (k / n, k % n);
            match &mut d.data {
                Values::F32(v) => map_typed(v, at, &mut f),
                Values::F64(v) => map_typed(v, at, &mut f),
                _ => unreachable!("map_block converts to a float type"),
            }
            Block::Dense(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Log1p, Normalize, Scale, Transform};

    #[test]
    fn casts_follow_numpy_astype() {
        // integers wrap to narrower integers, exactly even past 2^53
        let ints = Values::I64(vec![300, -1, 70_000, (1 << 60) + 1]);
        assert_eq!(convert(&ints, Dtype::I8), Values::I8(vec![44, -1, 112, 1]));
        assert_eq!(
            convert(&ints, Dtype::U16),
            Values::U16(vec![300, 65_535, 4_464, 1])
        );
        assert_eq!(
            convert(&Values::U64(vec![u64::MAX]), Dtype::I64),
            Values::I64(vec![-1])
        );
        // floats truncate toward zero; integers to floats round
        let floats = Values::F64(vec![2.7, -1.5, 0.0, f64::NAN]);
        assert_eq!(convert(&floats, Dtype::I32), Values::I32(vec![2, -1, 0, 0]));
        assert_eq!(
            convert(&Values::I32(vec![16_777_217]), Dtype::F32),
            Values::F32(vec![16_777_216.0])
        );
    }

    fn csr() -> Block {
        // [[1, 0, 3], [0, 2, 0]] as int32
        Block::Csr(Csr {
            nrows: 2,
            ncols: 3,
            indptr: vec![0, 2, 3],
            indices: vec![0, 2, 1],
            data: Values::I32(vec![1, 3, 2]),
        })
    }

    #[test]
    fn normalize_then_log1p_keeps_csr_and_types() {
        let n = Normalize {
            divisor: Arc::new(vec![0.5, 4.0, 2.0]),
        };
        assert_eq!(n.out_dtype(Dtype::I32), Dtype::F32);
        // block starting at output row 1: divisors 4 and 2
        let Block::Csr(c) = n.apply(csr(), 1).unwrap() else {
            panic!("sparse stays sparse")
        };
        assert_eq!(c.data, Values::F32(vec![0.25, 0.75, 1.0]));
        let l = Log1p { base: Some(2.0) };
        let Block::Csr(c) = l.apply(Block::Csr(c), 0).unwrap() else {
            panic!()
        };
        let v = c.data.to_f64_vec();
        assert!((v[2] - 1.0).abs() < 1e-7, "log2(1 + 1) = 1, got {}", v[2]);
        assert_eq!(Log1p { base: None }.out_dtype(Dtype::I64), Dtype::F64);
    }

    #[test]
    fn scale_densifies_clips_and_subsets() {
        let s = Scale {
            mean: Arc::new(vec![1.0, 1.0, 1.0]),
            std: Arc::new(vec![1.0, 0.5, 1.0]),
            zero_center: true,
            max_value: Some(1.5),
            mask: Some(Arc::new(vec![true, false])),
        };
        assert!(s.densifies());
        let Block::Dense(d) = s.apply(csr(), 0).unwrap() else {
            panic!("zero-centering is dense")
        };
        // row 0 scaled and clipped; row 1 (masked out) unchanged
        assert_eq!(d.data.to_f64_vec(), vec![0.0, -1.5, 1.5, 0.0, 2.0, 0.0]);
        // columns picked after the op carry their own mean/std
        let t = s.subset(Some(&[1, 1]), Some(&[1]));
        let b = Block::Dense(Dense {
            nrows: 2,
            ncols: 1,
            data: Values::F64(vec![2.0, 3.0]),
        });
        assert_eq!(
            t.apply(b, 0).unwrap(),
            Block::Dense(Dense {
                nrows: 2,
                ncols: 1,
                data: Values::F64(vec![2.0, 3.0])
            })
        );
        let u = s.subset(Some(&[0]), Some(&[1]));
        let b = Block::Dense(Dense {
            nrows: 1,
            ncols: 1,
            data: Values::F64(vec![1.5]),
        });
        assert_eq!(u.apply(b, 0).unwrap().dtype(), Dtype::F64);
        assert_eq!(cast_block(csr(), Dtype::F64).dtype(), Dtype::F64);
    }

    #[test]
    fn ops_read_their_input_as_they_say() {
        // Every op that lets storage decode into `reads_as` gives the same
        // block from the converted values as from the stored ones.
        use crate::plan::{Multiply, Op, Power, Sqrt};
        let ops: Vec<Op> = vec![
            Normalize {
                divisor: Arc::new(vec![0.3, 7.0]),
            }
            .into(),
            Log1p { base: None }.into(),
            Log1p { base: Some(2.0) }.into(),
            Sqrt.into(),
            Power {
                p: 0.5,
                dtype: Dtype::F32,
            }
            .into(),
            Multiply {
                scalar: 3.0,
                row: None,
                col: Some(Arc::new(vec![0.5, 2.0, 1.5])),
                dtype: Dtype::F64,
            }
            .into(),
            Scale {
                mean: Arc::new(vec![1.0, 2.0, 3.0]),
                std: Arc::new(vec![0.5, 1.0, 2.0]),
                zero_center: true,
                max_value: Some(10.0),
                mask: None,
            }
            .into(),
        ];
        let blocks = [
            Values::I32(vec![1, 16_777_217, 2]),
            Values::U16(vec![1, 65_535, 2]),
            Values::I64(vec![1, 9_007_199_254_740_993, -2]),
            Values::U8(vec![1, 255, 2]),
            Values::F32(vec![1.5, 3e7, 2.0]),
        ];
        for op in &ops {
            for data in &blocks {
                let b = Block::Csr(Csr {
                    nrows: 2,
                    ncols: 3,
                    indptr: vec![0, 2, 3],
                    indices: vec![0, 2, 1],
                    data: data.clone(),
                });
                let Some(d) = op.reads_as(b.dtype()) else {
                    panic!("{} reads any input as a float type", op.name())
                };
                assert_eq!(op.out_dtype(d), op.out_dtype(b.dtype()), "{}", op.name());
                let want = op.apply(b.clone(), 0).unwrap();
                let got = op.apply(cast_block(b, d), 0).unwrap();
                // bit patterns, so NaN (log1p of -2) compares
                let bits = |b: &Block| match b {
                    Block::Csr(c) => (c.indptr.clone(), c.indices.clone(), c.data.bytes().to_vec()),
                    Block::Dense(d) => (vec![], vec![], d.data.bytes().to_vec()),
                };
                assert_eq!(got.dtype(), want.dtype());
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{} on {:?}",
                    op.name(),
                    data.dtype()
                );
            }
        }
    }
}
