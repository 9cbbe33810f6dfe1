//! Seeded k-means (Lloyd) on a sample, and nearest-centroid assignment,
//! both by GEMM blocks ([`super::scan`]): the coarse quantiser of the IVF
//! search.
//!
//! Deterministic for a seed: the sample and the start centroids come from
//! the seeded generator, assignments are per point (any thread order gives
//! the same), and centroid sums are folded sequentially in f64.

use rayon::prelude::*;

use super::scan::{norms, scan, Queries, TopK, NO_ID};
use crate::ctx::Ctx;
use crate::error::Result;
use crate::rng::Rng;

/// Queries per parallel task in an assignment.
const ASSIGN_BLOCK: usize = 512;

/// The nearest of `centroids` (row-major, `d` columns) for every row of `x`.
pub fn assign(ctx: &Ctx, x: &[f32], d: usize, centroids: &[f32]) -> Result<Vec<u32>> {
    assign_top(ctx, x, d, centroids, 1)
}

/// The `p` nearest of `centroids` for every row of `x` (row-major n × p,
/// nearest first).
pub fn assign_top(ctx: &Ctx, x: &[f32], d: usize, centroids: &[f32], p: usize) -> Result<Vec<u32>> {
    let nc = centroids.len() / d;
    let cn = norms(centroids, d);
    let cid: Vec<u32> = (0..u32::try_from(nc).expect("fits")).collect();
    let cands = Queries {
        x: centroids,
        norms: &cn,
        ids: &cid,
    };
    let blocks: Vec<Vec<u32>> = x
        .par_chunks(ASSIGN_BLOCK * d)
        .map(|qx| {
            ctx.check()?;
            let qn = norms(qx, d);
            let qid = vec![NO_ID; qn.len()];
            let mut tops = vec![TopK::new(p); qn.len()];
            let mut buf = Vec::new();
            scan(
                &Queries {
                    x: qx,
                    norms: &qn,
                    ids: &qid,
                },
                &cands,
                d,
                &mut tops,
                &mut buf,
            );
            Ok(tops
                .iter()
                .flat_map(|t| (0..p).map(move |s| t.ids().nth(s).unwrap_or(NO_ID)))
                .collect())
        })
        .collect::<Result<_>>()?;
    Ok(blocks.concat())
}

/// `nlist` centroids of the rows of `x`: Lloyd's algorithm for `iters`
/// rounds on a seeded sample of at most `sample` rows. A centroid that
/// loses all its points keeps its previous position.
pub fn kmeans(
    ctx: &Ctx,
    x: &[f32],
    d: usize,
    nlist: usize,
    sample: usize,
    iters: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    let n = x.len() / d;
    let s = sample.clamp(nlist, n);
    // Partial Fisher–Yates: the first `s` of a seeded permutation.
    let mut rng = Rng::new(seed);
    let mut perm: Vec<u32> = (0..u32::try_from(n).expect("fits")).collect();
    for i in 0..s {
        let j = i + usize::try_from(rng.below((n - i) as u64)).expect("fits");
        perm.swap(i, j);
    }
    let mut rows: Vec<u32> = perm[..s].to_vec();
    rows.sort_unstable();
    let xs: Vec<f32> = rows
        .iter()
        .flat_map(|&r| x[r as usize * d..(r as usize + 1) * d].iter().copied())
        .collect();
    // Start centroids: the first `nlist` sample rows in permutation order.
    let mut cent: Vec<f32> = perm[..nlist]
        .iter()
        .flat_map(|&r| x[r as usize * d..(r as usize + 1) * d].iter().copied())
        .collect();
    for _ in 0..iters {
        let lab = assign(ctx, &xs, d, &cent)?;
        let mut sums = vec![0.0f64; nlist * d];
        let mut counts = vec![0u64; nlist];
        for (row, &l) in xs.chunks_exact(d).zip(&lab) {
            let l = l as usize;
            counts[l] += 1;
            for (s, v) in sums[l * d..(l + 1) * d].iter_mut().zip(row) {
                *s += f64::from(*v);
            }
        }
        for (l, &c) in counts.iter().enumerate() {
            if c > 0 {
                let inv = 1.0 / c as f64;
                for (o, s) in cent[l * d..(l + 1) * d]
                    .iter_mut()
                    .zip(&sums[l * d..(l + 1) * d])
                {
                    let v = (s * inv) as f32;
                    *o = v;
                }
            }
        }
    }
    Ok(cent)
}
