//! UMAP's layout optimisation: negative-sampling SGD on the fuzzy graph,
//! with umap-learn 0.5's schedule and gradients (`umap/layouts.py`,
//! `optimize_layout_euclidean`; `umap/umap_.py`, `make_epochs_per_sample`;
//! McInnes, Healy & Melville 2018, arXiv:1802.03426, section 3).
//!
//! umap-learn walks the edges in order and moves both ends of each sampled
//! edge in place (Gauss–Seidel, and racy when run in parallel). Here every
//! epoch reads the positions of the previous epoch, and each vertex owns
//! its out-edges: it updates its own position in place while reading the
//! others' from the previous epoch, and draws its negative samples from an
//! RNG keyed by `(seed, epoch, vertex)`. The result is therefore the same
//! for any number of threads. The graph is symmetric, so umap-learn's
//! "move the other end too" becomes a doubled attraction along the owner's
//! copy of the edge (both copies are sampled in the same epochs).
//!
//! The epochs run on the graph relabelled in breadth-first order
//! ([`super::order`]): a vertex's neighbours then sit near it in the
//! position arrays, which keeps the attraction's reads in cache at a
//! million vertices. The RNG streams are keyed by the new labels.

use rayon::prelude::*;

use super::order::Relabeled;
use super::Csr;
use crate::exec::{advance, check_cancel, start_pass};
use crate::linalg::rng::Rng;
use crate::{oom_bail, oom_ensure, Result};

/// Vertices per parallel task are chosen so a task has about this many edges.
const TASK_EDGES: usize = 1 << 14;

/// Largest embedding dimension (each has its own compiled kernel).
pub const MAX_DIM: usize = 8;

/// umap-learn clips each gradient component to ±4.
const CLIP: f32 = 4.0;

/// Negative samples evaluated together: their gradients are computed lane
/// by lane over fixed-size arrays, which the compiler turns into SIMD, and
/// their random reads of positions are issued back to back.
const LANES: usize = 8;

#[derive(Clone, Debug)]
pub struct SgdParams {
    pub n_epochs: usize,
    pub a: f32,
    pub b: f32,
    pub gamma: f32,
    /// Initial learning rate; it decays linearly to 0 over the epochs.
    pub alpha: f32,
    pub negative_sample_rate: f32,
    /// Edges lighter than `max / prune_epochs` are never sampled.
    pub prune_epochs: usize,
    pub seed: u64,
}

/// Epochs between two samples of each edge (`make_epochs_per_sample`):
/// the heaviest edge is sampled every epoch, an edge of weight `w` every
/// `max/w` epochs. Edges lighter than `max / prune_epochs` are dropped
/// (umap-learn zeroes them before the layout) and get `+∞`: never sampled.
pub fn epochs_per_sample(weights: &[f32], prune_epochs: usize) -> Vec<f32> {
    let max = weights.iter().copied().fold(0.0f32, f32::max);
    #[allow(clippy::cast_precision_loss)]
    let floor = max / prune_epochs.max(1) as f32;
    weights.iter().map(|&w| if w > 0.0 && w >= floor { max / w } else { f32::INFINITY }).collect()
}

/// `x^b` for `x > 0` as `2^(b·log2 x)` with polynomial log2/exp2 (relative
/// error < 1e-5): libm's `powf` was most of the cost of a gradient step,
/// and the SGD needs only a few digits. Branch-free, so it vectorises.
#[inline(always)]
fn fast_pow(x: f32, b: f32) -> f32 {
    fast_exp2(b * fast_log2(x))
}

#[inline(always)]
fn fast_log2(x: f32) -> f32 {
    let bits = x.to_bits();
    #[allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    // mantissa in [1, 2); log2 via atanh series in t = (m-1)/(m+1), t ∈ [0, 1/3]
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series = t * (2.885_39 + t2 * (0.961_797 + t2 * (0.577_078 + t2 * (0.412_198 + t2 * 0.320_6))));
    #[allow(clippy::cast_precision_loss)]
    let r = e as f32 + series;
    r
}

#[inline(always)]
fn fast_exp2(y: f32) -> f32 {
    let y = y.clamp(-126.0, 126.0);
    // floor by truncation (one less below zero): `f32::floor` is a libm
    // call on baseline x86-64 and blocks vectorisation
    #[allow(clippy::cast_possible_truncation)]
    let t = y as i32;
    #[allow(clippy::cast_precision_loss)]
    let i = (t - i32::from(y < t as f32)) as f32;
    let f = y - i;
    // 2^f on [0, 1): degree-7 Taylor polynomial of e^(f ln 2)
    let p = 1.0
        + f * (0.693_147_2
            + f * (0.240_226_5 + f * (0.055_504_11 + f * (0.009_618_129 + f * (0.001_333_355 + f * (0.000_154_035_3 + f * 0.000_015_252_73))))));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let scale = f32::from_bits(((i as i32 + 127) as u32) << 23);
    p * scale
}

fn clip(v: f32) -> f32 {
    v.clamp(-CLIP, CLIP)
}

/// A zeroed buffer of `len` floats backed by transparent huge pages where
/// the kernel allows them (Linux, `madvise` mode). Every negative sample
/// reads a random vertex's position: at a million vertices the positions
/// span thousands of 4 KiB pages and those reads miss the TLB (measured:
/// ~8% of an epoch's CPU at 1M). The advice changes nothing else.
fn huge_page_buffer(len: usize) -> Vec<f32> {
    let mut v = Vec::<f32>::with_capacity(len);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_mut_ptr() as usize;
        let (first, end) = ((start + HUGE - 1) & !(HUGE - 1), start + len * std::mem::size_of::<f32>());
        if end > first + HUGE {
            let aligned = (end - first) & !(HUGE - 1);
            // SAFETY: the range lies inside the allocation just made; the
            // advice only affects how its pages are backed (failure is harmless).
            unsafe { libc::madvise(first as *mut libc::c_void, aligned, libc::MADV_HUGEPAGE) };
        }
    }
    v.resize(len, 0.0);
    v
}

/// An RNG stream per `(seed, epoch, vertex)`, independent of scheduling.
fn vertex_rng(seed: u64, epoch: usize, v: usize) -> Rng {
    let mut mix = Rng::new(seed ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    Rng::new(mix.next_u64() ^ (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}


/// Contiguous vertex ranges with about [`TASK_EDGES`] edges each.
fn tasks(g: &Csr<'_>) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for v in 0..g.n() {
        if g.row(v).end - g.row(start).start >= TASK_EDGES {
            out.push(start..v + 1);
            start = v + 1;
        }
    }
    if start < g.n() {
        out.push(start..g.n());
    }
    out
}

/// Split `s` into consecutive pieces of the given lengths.
fn split_mut<'a, T>(mut s: &'a mut [T], lens: impl Iterator<Item = usize>) -> Vec<&'a mut [T]> {
    let mut out = Vec::new();
    for len in lens {
        let (head, tail) = s.split_at_mut(len);
        out.push(head);
        s = tail;
    }
    out
}

/// Per-edge sampling clocks (umap-learn's `epoch_of_next_sample` and
/// `epoch_of_next_negative_sample`) of one task's edges.
struct Clocks<'a> {
    eps: &'a [f32],
    next: &'a mut [f32],
    next_neg: &'a mut [f32],
}

fn sq_dist_d<const D: usize>(x: &[f32; D], y: &[f32; D]) -> f32 {
    let mut s = 0.0;
    for d in 0..D {
        s += (x[d] - y[d]) * (x[d] - y[d]);
    }
    s
}

fn point<const D: usize>(emb: &[f32], k: usize) -> &[f32; D] {
    emb[k * D..(k + 1) * D].try_into().expect("D values")
}

/// The summed repulsion steps of `n_neg` negative samples of vertex `v`
/// at `cur` (umap-learn's negative-sample gradient, clipped per sample),
/// in batches of [`LANES`]. Samples hitting `v` itself or its exact
/// position push nothing, as in umap-learn.
fn repulsion<const D: usize>(prev: &[f32], cur: &[f32; D], v: usize, n_neg: usize, rng: &mut Rng, p: &SgdParams) -> [f32; D] {
    let n = (prev.len() / D) as u64;
    let (a, b) = (p.a, p.b);
    let mut push = [0.0f32; D];
    let mut left = n_neg;
    while left > 0 {
        let m = left.min(LANES);
        left -= m;
        let mut diff = [[0.0f32; D]; LANES];
        let mut d2 = [1.0f32; LANES];
        let mut live = [false; LANES];
        for l in 0..m {
            #[allow(clippy::cast_possible_truncation)]
            let k = rng.below(n) as usize;
            if k == v {
                continue;
            }
            let other = point::<D>(prev, k);
            let mut s = 0.0;
            for d in 0..D {
                diff[l][d] = cur[d] - other[d];
                s += diff[l][d] * diff[l][d];
            }
            d2[l] = s;
            live[l] = s > 0.0;
        }
        let mut coeff = [0.0f32; LANES];
        for l in 0..LANES {
            let c = 2.0 * p.gamma * b / ((0.001 + d2[l]) * (a * fast_pow(d2[l], b) + 1.0));
            coeff[l] = if live[l] { c } else { 0.0 };
        }
        for l in 0..m {
            for d in 0..D {
                push[d] += clip(coeff[l] * diff[l][d]);
            }
        }
    }
    push
}

/// One epoch of one vertex `v` (position `cur`, edges offset `base` into
/// `clocks`): attraction along each due edge, then its negative samples.
/// `D` is the embedding dimension, fixed at compile time so the inner
/// loops unroll.
#[allow(clippy::too_many_arguments)]
fn move_vertex<const D: usize>(
    g: &Csr<'_>,
    prev: &[f32],
    cur: &mut [f32; D],
    v: usize,
    base: usize,
    clocks: &mut Clocks<'_>,
    epoch: f32,
    alpha: f32,
    rng: &mut Rng,
    p: &SgdParams,
) {
    let (a, b) = (p.a, p.b);
    for e in g.row(v) {
        let i = e - base;
        if clocks.next[i] > epoch {
            continue;
        }
        let other = point::<D>(prev, g.indices[e] as usize);
        let d2 = sq_dist_d(cur, other);
        if d2 > 0.0 {
            let pb = fast_pow(d2, b);
            let coeff = -2.0 * a * b * (pb / d2) / (a * pb + 1.0);
            for d in 0..D {
                // twice: this edge and its mirror (k, v) pull v together
                cur[d] += 2.0 * clip(coeff * (cur[d] - other[d])) * alpha;
            }
        }
        clocks.next[i] += clocks.eps[i];
        let eps_neg = clocks.eps[i] / p.negative_sample_rate;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n_neg = ((epoch - clocks.next_neg[i]) / eps_neg).max(0.0) as usize;
        // The negative samples of one edge all push from the same position
        // and their steps are summed: independent iterations instead of one
        // long dependency chain through `cur` (several times faster).
        let push = repulsion::<D>(prev, cur, v, n_neg, rng, p);
        for d in 0..D {
            cur[d] += push[d] * alpha;
        }
        #[allow(clippy::cast_precision_loss)]
        {
            clocks.next_neg[i] += n_neg as f32 * eps_neg;
        }
    }
}

/// Optimise `emb` (n × dim, row-major, already initialised and scaled to
/// [0, 10] as umap-learn does) in place on the graph `g` (validated).
pub fn optimize_layout(g: &Csr<'_>, emb: &mut [f32], dim: usize, p: &SgdParams) -> Result<()> {
    let n = g.n();
    oom_ensure!(emb.len() == n * dim, Value, "the initial embedding has {} values, expected {n} × {dim}", emb.len());
    oom_ensure!(p.negative_sample_rate > 0.0, Value, "negative_sample_rate must be positive");
    oom_ensure!(emb.iter().all(|x| x.is_finite()), Value, "the initial embedding has NaN or infinite values");
    oom_ensure!((1..=MAX_DIM).contains(&dim), Value, "n_components must be between 1 and {MAX_DIM}, got {dim}");
    let relabeled = Relabeled::new(g);
    let g = &relabeled.csr();
    let eps = epochs_per_sample(g.data, p.prune_epochs);
    let mut work = relabeled.to_new(emb, dim);
    match dim {
        1 => optimize::<1>(g, &eps, &mut work, p),
        2 => optimize::<2>(g, &eps, &mut work, p),
        3 => optimize::<3>(g, &eps, &mut work, p),
        4 => optimize::<4>(g, &eps, &mut work, p),
        5 => optimize::<5>(g, &eps, &mut work, p),
        6 => optimize::<6>(g, &eps, &mut work, p),
        7 => optimize::<7>(g, &eps, &mut work, p),
        8 => optimize::<8>(g, &eps, &mut work, p),
        _ => oom_bail!(Value, "n_components must be between 1 and {MAX_DIM}, got {dim}"),
    }?;
    relabeled.to_old(&work, dim, emb);
    Ok(())
}

fn optimize<const D: usize>(g: &Csr<'_>, eps: &[f32], emb: &mut [f32], p: &SgdParams) -> Result<()> {
    let n = g.n();
    let mut next = eps.to_vec();
    let mut next_neg: Vec<f32> = eps.iter().map(|e| e / p.negative_sample_rate).collect();
    let tasks = tasks(g);
    let edge_lens: Vec<usize> = tasks.iter().map(|t| g.row(t.end - 1).end - g.row(t.start).start).collect();
    let mut prev = huge_page_buffer(emb.len());
    prev.copy_from_slice(emb);
    start_pass((n * p.n_epochs) as u64);
    for epoch in 0..p.n_epochs {
        check_cancel()?;
        #[allow(clippy::cast_precision_loss)]
        let (epoch_f, alpha) = (epoch as f32, p.alpha * (1.0 - epoch as f32 / p.n_epochs as f32));
        let pos = split_mut(emb, tasks.iter().map(|t| t.len() * D));
        let nx = split_mut(&mut next, edge_lens.iter().copied());
        let nn = split_mut(&mut next_neg, edge_lens.iter().copied());
        let prev_ref = &prev;
        pos.into_par_iter().zip(nx).zip(nn).zip(&tasks).with_max_len(1).for_each(|(((pos, nx), nn), t)| {
            let base = g.row(t.start).start;
            let mut clocks = Clocks { eps: &eps[base..base + nx.len()], next: nx, next_neg: nn };
            for (v, cur) in t.clone().zip(pos.chunks_exact_mut(D)) {
                let mut rng = vertex_rng(p.seed, epoch, v);
                let cur: &mut [f32; D] = cur.try_into().expect("D values");
                move_vertex::<D>(g, prev_ref, cur, v, base, &mut clocks, epoch_f, alpha, &mut rng, p);
            }
        });
        prev.copy_from_slice(emb);
        advance(n as u64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two triangles joined by one light edge.
    fn two_triangles() -> (Vec<i64>, Vec<u32>, Vec<f32>) {
        let edges = [(0, 1, 1.0), (0, 2, 1.0), (1, 2, 1.0), (3, 4, 1.0), (3, 5, 1.0), (4, 5, 1.0), (2, 3, 0.1)];
        let mut rows = vec![vec![]; 6];
        for &(i, j, w) in &edges {
            rows[i].push((j as u32, w));
            rows[j].push((i as u32, w));
        }
        crate::graph::csr_from_rows(rows)
    }

    fn params(seed: u64) -> SgdParams {
        SgdParams { n_epochs: 200, a: 0.583, b: 1.334, gamma: 1.0, alpha: 1.0, negative_sample_rate: 5.0, prune_epochs: 200, seed }
    }

    #[test]
    fn fast_pow_is_close_to_powf() {
        for &b in &[0.79f32, 0.895, 1.334, 1.93] {
            for i in 0..2000 {
                let x = 1e-6f32 * 1.02f32.powi(i);
                let (want, got) = (x.powf(b), fast_pow(x, b));
                assert!((got - want).abs() <= 2e-5 * want, "{x}^{b}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn epochs_per_sample_matches_umap_learn() {
        // max/w for kept edges; w < max/n_epochs dropped
        let eps = epochs_per_sample(&[1.0, 0.5, 0.25, 0.001], 200);
        assert_eq!(eps, vec![1.0, 2.0, 4.0, f32::INFINITY]);
    }

    #[test]
    fn clusters_separate_and_result_is_deterministic() {
        let (indptr, indices, data) = two_triangles();
        let g = Csr { indptr: &indptr, indices: &indices, data: &data };
        let init: Vec<f32> = (0..12).map(|i| (i * 7 % 11) as f32 * 0.9).collect();
        let run = |threads: usize| {
            let mut emb = init.clone();
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| optimize_layout(&g, &mut emb, 2, &params(3))).unwrap();
            emb
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_ne!(one, init);
        let d = |i: usize, j: usize| sq_dist_d::<2>(point(&one, i), point(&one, j)).sqrt();
        let within = d(0, 1).max(d(0, 2)).max(d(4, 5)).max(d(3, 4));
        let between = d(0, 4).min(d(1, 5)).min(d(0, 5));
        assert!(within < between, "within {within} between {between}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (indptr, indices, data) = two_triangles();
        let g = Csr { indptr: &indptr, indices: &indices, data: &data };
        let mut short = vec![0.0f32; 5];
        assert!(optimize_layout(&g, &mut short, 2, &params(0)).is_err());
        let mut nan = vec![f32::NAN; 12];
        assert!(optimize_layout(&g, &mut nan, 2, &params(0)).is_err());
        let mut wide = vec![0.0f32; 6 * 9];
        assert!(optimize_layout(&g, &mut wide, 9, &params(0)).is_err());
        let bad = Csr { indptr: &indptr, indices: &[9; 14], data: &data };
        assert!(bad.validate().is_err());
    }
}
