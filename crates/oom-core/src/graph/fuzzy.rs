//! UMAP's fuzzy simplicial set of a kNN graph: scanpy's
//! `obsp['connectivities']`.
//!
//! Follows umap-learn 0.5 (`umap_.py`: `smooth_knn_dist`,
//! `compute_membership_strengths`, `fuzzy_simplicial_set`) operation by
//! operation in the same float types, so the weights equal umap-learn's:
//! per row, `rho` = the distance to the nearest other point and `sigma` by
//! binary search so that `Σ_j exp(−(d_j − rho)/sigma) = log2(k)` (f32
//! sums, tolerance 1e-5, 64 steps, floor 1e-3 × the row's mean distance);
//! membership `w_ij = exp(−(d_ij − rho_i)/sigma_i)` (1 when `d_ij ≤ rho_i`,
//! 0 for the point itself); then the fuzzy union `A + Aᵀ − A∘Aᵀ`
//! (`set_op_mix_ratio = 1`), zeros dropped, as CSR with sorted columns.

use rayon::prelude::*;

use crate::ctx::Ctx;
use crate::error::Result;
use crate::oom_ensure;

const SMOOTH_K_TOLERANCE: f64 = 1e-5;
const MIN_K_DIST_SCALE: f64 = 1e-3;
const N_ITER: usize = 64;
/// Rows per parallel task.
const ROW_BLOCK: usize = 4096;

/// Symmetric sparse graph (CSR, sorted columns, no explicit zeros).
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub indptr: Vec<i64>,
    pub indices: Vec<i32>,
    pub data: Vec<f32>,
}

/// numba's `np.mean` of an f32 array: a sequential f32 sum over the size.
fn mean_f32(v: &[f32]) -> f64 {
    let s: f32 = v.iter().fold(0.0f32, |a, b| a + b);
    let n = v.len() as f64;
    f64::from(s) / n
}

/// `mid` of umap's bisection: the f32 bounds summed and halved in f64.
fn halve(lo: f32, hi: f32) -> f32 {
    ((f64::from(lo) + f64::from(hi)) / 2.0) as f32
}

/// `(sigma, rho)` of one row of sorted distances (`local_connectivity = 1`).
///
/// umap declares `psum`, `lo`, `mid`, `hi` float32, but numba evaluates
/// the quotient, the exponential and the running sum in f64 (checked:
/// with these types the sigmas equal umap-learn's bit for bit).
fn smooth_row(dist: &[f32], target: f64, mean_all: f64) -> (f32, f32) {
    let rho = dist.iter().copied().find(|&v| v > 0.0).unwrap_or(0.0);
    let (mut lo, mut hi, mut mid) = (0.0f32, f32::MAX, 1.0f32);
    for _ in 0..N_ITER {
        let mut psum = 0.0f64;
        for &dj in &dist[1..] {
            let v = dj - rho;
            psum += if v > 0.0 {
                (-(f64::from(v) / f64::from(mid))).exp()
            } else {
                1.0
            };
        }
        if (psum - target).abs() < SMOOTH_K_TOLERANCE {
            break;
        }
        if psum > target {
            hi = mid;
            mid = halve(lo, hi);
        } else {
            lo = mid;
            if hi >= f32::MAX {
                mid *= 2.0;
            } else {
                mid = halve(lo, hi);
            }
        }
    }
    let floor = MIN_K_DIST_SCALE * if rho > 0.0 { mean_f32(dist) } else { mean_all };
    let sigma = if f64::from(mid) < floor {
        floor as f32
    } else {
        mid
    };
    (sigma, rho)
}

/// Membership strength of a neighbour at distance `dj` (umap's `val`:
/// an f32 quotient, its exponential in f64 as numba does, stored as f32).
fn membership(dj: f32, rho: f32, sigma: f32) -> f32 {
    if dj - rho <= 0.0 || sigma == 0.0 {
        1.0
    } else {
        f64::from(-((dj - rho) / sigma)).exp() as f32
    }
}

/// The fuzzy union of the membership graph of `indices`/`dists` (n × k,
/// row-major, each row sorted by distance, itself first).
pub fn fuzzy_graph(ctx: &Ctx, indices: &[u32], dists: &[f32], k: usize) -> Result<Graph> {
    oom_ensure!(
        k >= 2 && indices.len() == dists.len() && indices.len() % k == 0,
        Value,
        "kNN arrays must both be n × k with k ≥ 2"
    );
    let n = indices.len() / k;
    oom_ensure!(
        indices.iter().all(|&c| (c as usize) < n),
        Index,
        "a neighbour index is out of range"
    );
    oom_ensure!(
        n <= i32::MAX as usize,
        Value,
        "too many cells for an int32 graph: {n}"
    );
    let target = (k as f64).log2();
    let mean_all = mean_f32(dists);
    // Membership strengths, row by row: (column, weight) sorted by column.
    let a: Vec<(u32, f32)> = indices
        .par_chunks(ROW_BLOCK * k)
        .zip(dists.par_chunks(ROW_BLOCK * k))
        .enumerate()
        .map(|(blk, (ci, cd))| {
            ctx.check()?;
            let mut out = Vec::with_capacity(ci.len());
            for (t, (ri, rd)) in ci.chunks_exact(k).zip(cd.chunks_exact(k)).enumerate() {
                let i = blk * ROW_BLOCK + t;
                let (sigma, rho) = smooth_row(rd, target, mean_all);
                let start = out.len();
                for (&c, &dj) in ri.iter().zip(rd) {
                    let w = if c as usize == i {
                        0.0
                    } else {
                        membership(dj, rho, sigma)
                    };
                    out.push((c, w));
                }
                out[start..].sort_unstable_by_key(|p| p.0);
            }
            Ok(out)
        })
        .collect::<Result<Vec<_>>>()?
        .concat();
    // Aᵀ by counting sort over columns (rows ascending within each column).
    let mut tptr = vec![0usize; n + 1];
    for &(c, w) in &a {
        if w != 0.0 {
            tptr[c as usize + 1] += 1;
        }
    }
    for i in 0..n {
        tptr[i + 1] += tptr[i];
    }
    let mut trow = vec![(0u32, 0.0f32); tptr[n]];
    let mut next = tptr.clone();
    for (pos, &(c, w)) in a.iter().enumerate() {
        if w != 0.0 {
            trow[next[c as usize]] = (u32::try_from(pos / k).expect("fits"), w);
            next[c as usize] += 1;
        }
    }
    // Row i of A + Aᵀ − A∘Aᵀ: merge row i of A with row i of Aᵀ.
    let parts: Vec<(Vec<i32>, Vec<f32>, Vec<i64>)> = (0..n.div_ceil(ROW_BLOCK))
        .into_par_iter()
        .map(|blk| {
            ctx.check()?;
            let (r0, r1) = (blk * ROW_BLOCK, ((blk + 1) * ROW_BLOCK).min(n));
            let (mut ind, mut dat, mut cnt) = (Vec::new(), Vec::new(), Vec::with_capacity(r1 - r0));
            for i in r0..r1 {
                let ra = a[i * k..(i + 1) * k].iter().filter(|p| p.1 != 0.0);
                let rb = &trow[tptr[i]..tptr[i + 1]];
                let before = ind.len();
                let mut rb = rb.iter().peekable();
                let mut ra = ra.peekable();
                loop {
                    let (c, v) = match (ra.peek(), rb.peek()) {
                        (Some(&&(ca, wa)), Some(&&(cb, wb))) if ca == cb => {
                            ra.next();
                            rb.next();
                            (ca, (wa + wb) - wa * wb)
                        }
                        (Some(&&(ca, wa)), Some(&&(cb, _))) if ca < cb => {
                            ra.next();
                            (ca, wa)
                        }
                        (Some(&&(ca, wa)), None) => {
                            ra.next();
                            (ca, wa)
                        }
                        (_, Some(&&(cb, wb))) => {
                            rb.next();
                            (cb, wb)
                        }
                        (None, None) => break,
                    };
                    if v != 0.0 {
                        ind.push(i32::try_from(c).expect("fits"));
                        dat.push(v);
                    }
                }
                cnt.push((ind.len() - before) as i64);
            }
            Ok((ind, dat, cnt))
        })
        .collect::<Result<_>>()?;
    let nnz: usize = parts.iter().map(|p| p.0.len()).sum();
    let mut g = Graph {
        indptr: Vec::with_capacity(n + 1),
        indices: Vec::with_capacity(nnz),
        data: Vec::with_capacity(nnz),
    };
    g.indptr.push(0);
    for (ind, dat, cnt) in parts {
        for c in cnt {
            let last = *g.indptr.last().expect("non-empty");
            g.indptr.push(last + c);
        }
        g.indices.extend(ind);
        g.data.extend(dat);
    }
    Ok(g)
}
