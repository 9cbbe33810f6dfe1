//! k-nearest-neighbour graph of the rows of a dense f32 matrix (euclidean).
//!
//! - Small inputs (`n ≤ exact_max`): exact brute force, every query against
//!   every row, by GEMM blocks.
//! - Large inputs: an inverted file (IVF). Seeded k-means on a sample gives
//!   `nlist` centroids (about 256 rows per list); every row goes to the list
//!   of its nearest centroid; the queries of one list are compared (one GEMM
//!   per block) with the rows of the lists probed for that list: the
//!   `nprobe` lists whose centroids are nearest to the list's centroid, and
//!   the `qprobe` lists nearest to each of its queries (a query near the
//!   edge of its list has neighbours in the next list over; probing per list
//!   alone lost ~15% recall on atlas-like PCs). Optional `refine` rounds of
//!   neighbourhood refinement (NN-descent's local join: neighbours' and
//!   reverse neighbours' neighbours, exact distances) lift the recall
//!   further at about the cost of the search itself.
//!
//! The GEMM formula only ranks; the reported distances are recomputed
//! directly in f64. Every row lists itself first (distance 0), then its
//! `k − 1` nearest others by (distance, index). Tasks are fixed by the data,
//! not by the thread count, and ties break by index, so the graph is the
//! same for a seed whatever the number of threads.

use rayon::prelude::*;

use super::kmeans::{assign_top, kmeans};
use super::scan::{norms, scan, sqdist, Queries, TopK, NO_ID};
use crate::ctx::Ctx;
use crate::error::Result;
use crate::{oom_bail, oom_ensure};

/// Queries per task (one GEMM row block).
const QUERY_BLOCK: usize = 256;
/// Extra candidates ranked by the GEMM formula before the exact recompute,
/// so rounding in the formula cannot push a true neighbour out.
const MARGIN: usize = 8;
/// Rows per IVF list by default.
pub const LIST_ROWS: usize = 256;
/// Rows per task of a refinement round.
const REFINE_BLOCK: usize = 1024;

#[derive(Clone, Debug)]
pub struct KnnOptions {
    /// Neighbours per row, the row itself included (scanpy's `n_neighbors`).
    pub k: usize,
    /// Up to this many rows the search is exact.
    pub exact_max: usize,
    /// IVF lists; 0 = one per [`LIST_ROWS`] rows.
    pub nlist: usize,
    /// Leading columns used by the coarse quantiser (k-means and list
    /// assignment); 0 = all. PCs come by decreasing variance, so the first
    /// ones carry most of the distance at a fraction of the cost.
    pub coarse_dims: usize,
    /// Lists probed per list of queries (nearest to the list's centroid).
    pub nprobe: usize,
    /// Also probed: the `qprobe` lists nearest to each query of the list.
    pub qprobe: usize,
    /// Neighbours-of-neighbours rounds after the IVF search.
    pub refine: usize,
    /// k-means rounds on the sample.
    pub kmeans_iters: usize,
    pub seed: u64,
}

impl Default for KnnOptions {
    fn default() -> Self {
        KnnOptions {
            k: 15,
            exact_max: 20_000,
            nlist: 0,
            coarse_dims: 0,
            // On atlas-like data (bench/gen.py --mode mixed, 1M cells, 50 PCs)
            // recall@15: 2/2 lists 0.844 in 29 s, 4/4 0.921 in 40 s, 8/8 0.961
            // in 53 s (2 cores).
            nprobe: 8,
            qprobe: 8,
            refine: 0,
            kmeans_iters: 6,
            seed: 0,
        }
    }
}

/// `n × k` neighbours (row-major): `indices[i·k]` is `i` itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Knn {
    pub k: usize,
    pub indices: Vec<u32>,
    /// Squared euclidean distances, f64, same layout.
    pub sqdist: Vec<f64>,
}

impl Knn {
    pub fn distances(&self) -> Vec<f64> {
        self.sqdist.iter().map(|v| v.sqrt()).collect()
    }
}

fn validate(x: &[f32], d: usize, k: usize) -> Result<usize> {
    oom_ensure!(
        d > 0 && x.len() % d == 0,
        Value,
        "the representation must be a 2-D matrix with at least one column"
    );
    let n = x.len() / d;
    oom_ensure!(
        u32::try_from(n).is_ok_and(|v| v < u32::MAX),
        Value,
        "too many rows for a kNN graph: {n}"
    );
    oom_ensure!(
        k >= 2,
        Value,
        "n_neighbors must be at least 2 (the cell itself and one neighbour), got {k}"
    );
    oom_ensure!(
        k <= n,
        Value,
        "n_neighbors ({k}) is larger than the number of cells ({n})"
    );
    if let Some(p) = x.iter().position(|v| !v.is_finite()) {
        oom_bail!(
            Value,
            "the representation holds a non-finite value (NaN or infinity) in row {}",
            p / d
        );
    }
    Ok(n)
}

/// The kNN graph of the rows of `x` (row-major, `d` columns).
pub fn knn(ctx: &Ctx, x: &[f32], d: usize, o: &KnnOptions) -> Result<Knn> {
    let n = validate(x, d, o.k)?;
    let exact = n <= o.exact_max;
    ctx.start_pass((n * (1 + if exact { 0 } else { o.refine })) as u64);
    let (labels, nlist, probes) = if exact {
        (vec![0u32; n], 1, vec![vec![0u32]])
    } else {
        let nlist = if o.nlist == 0 {
            n.div_ceil(LIST_ROWS)
        } else {
            o.nlist
        }
        .clamp(1, n);
        let dq = if o.coarse_dims == 0 {
            d
        } else {
            o.coarse_dims.min(d)
        };
        let xq: Vec<f32> = x
            .chunks_exact(d)
            .flat_map(|r| r[..dq].iter().copied())
            .collect();
        let cent = kmeans(ctx, &xq, dq, nlist, 32 * nlist, o.kmeans_iters, o.seed)?;
        let qp = o.qprobe.clamp(1, nlist);
        let top = assign_top(ctx, &xq, dq, &cent, qp)?;
        drop(xq);
        let labels: Vec<u32> = top.iter().step_by(qp).copied().collect();
        let mut probes = probe_lists(ctx, &cent, dq, &labels, o.nprobe.max(1), 4 * (o.k + MARGIN))?;
        // A query near the edge of its list has neighbours in the lists
        // nearest to *it*: probe those too, for the whole list.
        for (i, &l) in labels.iter().enumerate() {
            probes[l as usize].extend(
                top[i * qp + 1..(i + 1) * qp]
                    .iter()
                    .filter(|&&c| c != NO_ID),
            );
        }
        for p in &mut probes {
            p.sort_unstable();
            p.dedup();
        }
        (labels, nlist, probes)
    };
    let mut g = ivf_search(ctx, x, d, &labels, nlist, &probes, o.k)?;
    if !exact {
        for _ in 0..o.refine {
            g = refine(ctx, x, d, &g)?;
        }
    }
    Ok(g)
}

/// For every list, the lists its queries are compared with: the nearest
/// centroids (itself first), at least `nprobe` of them and together at
/// least `min_rows` rows.
fn probe_lists(
    ctx: &Ctx,
    cent: &[f32],
    d: usize,
    labels: &[u32],
    nprobe: usize,
    min_rows: usize,
) -> Result<Vec<Vec<u32>>> {
    let nlist = cent.len() / d;
    let mut size = vec![0usize; nlist];
    for &l in labels {
        size[l as usize] += 1;
    }
    (0..nlist)
        .into_par_iter()
        .map(|a| {
            ctx.check()?;
            let ca = &cent[a * d..(a + 1) * d];
            let mut by: Vec<(f64, u32)> = (0..nlist)
                .map(|b| {
                    (
                        sqdist(ca, &cent[b * d..(b + 1) * d]),
                        u32::try_from(b).expect("fits"),
                    )
                })
                .collect();
            by.sort_unstable_by(|p, q| p.0.total_cmp(&q.0).then(p.1.cmp(&q.1)));
            let (mut out, mut rows) = (Vec::new(), 0);
            // The list itself is at distance 0; put it first whatever ties.
            out.push(u32::try_from(a).expect("fits"));
            rows += size[a];
            for &(_, b) in &by {
                if out.len() >= nprobe && rows >= min_rows {
                    break;
                }
                if b as usize != a {
                    out.push(b);
                    rows += size[b as usize];
                }
            }
            Ok(out)
        })
        .collect()
}

/// Every row against the rows of its list's probe lists.
fn ivf_search(
    ctx: &Ctx,
    x: &[f32],
    d: usize,
    labels: &[u32],
    nlist: usize,
    probes: &[Vec<u32>],
    k: usize,
) -> Result<Knn> {
    let n = labels.len();
    // Counting sort of the rows by list: each list's rows become contiguous.
    let mut offsets = vec![0usize; nlist + 1];
    for &l in labels {
        offsets[l as usize + 1] += 1;
    }
    for l in 0..nlist {
        offsets[l + 1] += offsets[l];
    }
    let mut order = vec![0u32; n];
    let mut next = offsets.clone();
    for (i, &l) in labels.iter().enumerate() {
        order[next[l as usize]] = u32::try_from(i).expect("fits");
        next[l as usize] += 1;
    }
    let xp: Vec<f32> = order
        .iter()
        .flat_map(|&r| x[r as usize * d..(r as usize + 1) * d].iter().copied())
        .collect();
    let np = norms(&xp, d);
    // Tasks: (list, first, end) in sorted positions, in position order.
    let mut tasks = Vec::new();
    for l in 0..nlist {
        let mut a = offsets[l];
        while a < offsets[l + 1] {
            let b = (a + QUERY_BLOCK).min(offsets[l + 1]);
            tasks.push((l, a, b));
            a = b;
        }
    }
    let mut ids_p = vec![0u32; n * k];
    let mut d2_p = vec![0.0f64; n * k];
    let mut outs = Vec::with_capacity(tasks.len());
    let (mut ri, mut rd) = (&mut ids_p[..], &mut d2_p[..]);
    for &(_, a, b) in &tasks {
        let (hi, ti) = ri.split_at_mut((b - a) * k);
        let (hd, td) = rd.split_at_mut((b - a) * k);
        outs.push((hi, hd));
        (ri, rd) = (ti, td);
    }
    tasks
        .par_iter()
        .zip(outs)
        .with_max_len(1)
        .try_for_each(|(&(l, a, b), (oi, od))| {
            ctx.check()?;
            let q = Queries {
                x: &xp[a * d..b * d],
                norms: &np[a..b],
                ids: &order[a..b],
            };
            let mut tops = vec![TopK::new(k - 1 + MARGIN); b - a];
            let mut buf = Vec::new();
            for &p in &probes[l] {
                let (ca, cb) = (offsets[p as usize], offsets[p as usize + 1]);
                let c = Queries {
                    x: &xp[ca * d..cb * d],
                    norms: &np[ca..cb],
                    ids: &order[ca..cb],
                };
                scan(&q, &c, d, &mut tops, &mut buf);
            }
            for (t, top) in tops.iter().enumerate() {
                let i = order[a + t];
                let cands: Vec<u32> = top.ids().collect();
                finish_row(
                    x,
                    d,
                    i,
                    &cands,
                    &mut oi[t * k..(t + 1) * k],
                    &mut od[t * k..(t + 1) * k],
                );
            }
            ctx.advance((b - a) as u64);
            Ok(())
        })?;
    // Back to row order.
    let mut indices = vec![0u32; n * k];
    let mut sq = vec![0.0f64; n * k];
    for (pos, &i) in order.iter().enumerate() {
        let i = i as usize;
        indices[i * k..(i + 1) * k].copy_from_slice(&ids_p[pos * k..(pos + 1) * k]);
        sq[i * k..(i + 1) * k].copy_from_slice(&d2_p[pos * k..(pos + 1) * k]);
    }
    Ok(Knn {
        k,
        indices,
        sqdist: sq,
    })
}

/// Row `i`'s result from candidate ids (never `i`): itself first, then the
/// `k − 1` nearest by exact (distance, index).
fn finish_row(x: &[f32], d: usize, i: u32, cands: &[u32], ids: &mut [u32], d2: &mut [f64]) {
    let xi = &x[i as usize * d..(i as usize + 1) * d];
    let mut all: Vec<(f64, u32)> = cands
        .iter()
        .map(|&c| (sqdist(xi, &x[c as usize * d..(c as usize + 1) * d]), c))
        .collect();
    all.sort_unstable_by(|p, q| p.0.total_cmp(&q.0).then(p.1.cmp(&q.1)));
    ids[0] = i;
    d2[0] = 0.0;
    debug_assert!(all.len() + 1 >= ids.len());
    for (t, &(v, c)) in all.iter().take(ids.len() - 1).enumerate() {
        ids[t + 1] = c;
        d2[t + 1] = v;
    }
}

/// Reverse neighbours: for every row, the rows that list it, nearest
/// first (by (distance, index)), at most `k − 1` of them; CSR layout.
fn reverse(g: &Knn) -> (Vec<usize>, Vec<u32>) {
    let k = g.k;
    let n = g.indices.len() / k;
    let mut ptr = vec![0usize; n + 1];
    for i in 0..n {
        for &j in &g.indices[i * k + 1..(i + 1) * k] {
            ptr[j as usize + 1] += 1;
        }
    }
    for j in 0..n {
        ptr[j + 1] += ptr[j];
    }
    let mut rev = vec![(0.0f64, 0u32); ptr[n]];
    let mut next = ptr.clone();
    for i in 0..n {
        for t in 1..k {
            let j = g.indices[i * k + t] as usize;
            rev[next[j]] = (g.sqdist[i * k + t], u32::try_from(i).expect("fits"));
            next[j] += 1;
        }
    }
    let mut out_ptr = vec![0usize; n + 1];
    let mut out = Vec::with_capacity(n * (k - 1));
    for j in 0..n {
        let r = &mut rev[ptr[j]..ptr[j + 1]];
        r.sort_unstable_by(|p, q| p.0.total_cmp(&q.0).then(p.1.cmp(&q.1)));
        out.extend(r.iter().take(k - 1).map(|p| p.1));
        out_ptr[j + 1] = out.len();
    }
    (out_ptr, out)
}

/// One round of neighbourhood refinement (as in NN-descent, Dong et al.
/// 2011): each row's candidates are its neighbours' and reverse
/// neighbours' neighbours and reverse neighbours; the new list is the best
/// of the old list and the candidates. Reads only `g`, so rows do not see
/// each other's updates and the order of work does not matter.
pub fn refine(ctx: &Ctx, x: &[f32], d: usize, g: &Knn) -> Result<Knn> {
    let k = g.k;
    let n = g.indices.len() / k;
    let (rptr, rev) = reverse(g);
    let near = |j: usize| {
        g.indices[j * k + 1..(j + 1) * k]
            .iter()
            .chain(&rev[rptr[j]..rptr[j + 1]])
            .copied()
    };
    let mut indices = vec![0u32; n * k];
    let mut sq = vec![0.0f64; n * k];
    indices
        .par_chunks_mut(REFINE_BLOCK * k)
        .zip(sq.par_chunks_mut(REFINE_BLOCK * k))
        .enumerate()
        .try_for_each(|(blk, (oi, od))| {
            ctx.check()?;
            let mut cands = Vec::with_capacity(4 * k * k);
            let mut all: Vec<(f64, u32)> = Vec::with_capacity(4 * k * k);
            for t in 0..oi.len() / k {
                let i = blk * REFINE_BLOCK + t;
                let row = &g.indices[i * k..(i + 1) * k];
                let xi = &x[i * d..(i + 1) * d];
                cands.clear();
                for j in near(i) {
                    cands.push(j);
                    cands.extend(near(j as usize));
                }
                cands.sort_unstable();
                cands.dedup();
                all.clear();
                all.extend(
                    row[1..]
                        .iter()
                        .zip(&g.sqdist[i * k + 1..(i + 1) * k])
                        .map(|(&c, &v)| (v, c)),
                );
                let worst = all.last().map_or(f64::INFINITY, |p| p.0);
                for &c in &cands {
                    if c as usize == i || row.contains(&c) {
                        continue;
                    }
                    let v = sqdist(xi, &x[c as usize * d..(c as usize + 1) * d]);
                    if v <= worst {
                        all.push((v, c));
                    }
                }
                all.sort_unstable_by(|p, q| p.0.total_cmp(&q.0).then(p.1.cmp(&q.1)));
                oi[t * k] = u32::try_from(i).expect("fits");
                od[t * k] = 0.0;
                for (s, &(v, c)) in all.iter().take(k - 1).enumerate() {
                    oi[t * k + 1 + s] = c;
                    od[t * k + 1 + s] = v;
                }
            }
            ctx.advance((oi.len() / k) as u64);
            Ok(())
        })?;
    Ok(Knn {
        k,
        indices,
        sqdist: sq,
    })
}
