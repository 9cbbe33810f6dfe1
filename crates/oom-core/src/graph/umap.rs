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
//!
//! Within an epoch, what a vertex does apart from arithmetic on positions
//! (which edges are due, its negative samples) is planned a few vertices
//! ahead and the samples' positions prefetched; the vertices then run
//! eight at a time, one per SIMD lane (see [`GROUP`]). Neither changes a
//! single operation of a vertex's update, so the result is bit-for-bit
//! that of the plain per-vertex loop (a test checks it). Measured at 1M
//! cells (24.6M edges, 2 cores): 1.21 s CPU per epoch for that plain loop,
//! 0.56 s now.

use rayon::prelude::*;

use super::order::Relabeled;
use super::Csr;
use crate::ctx::Ctx;
use crate::rng::Rng;
use crate::{oom_bail, oom_ensure, Result};

/// Vertices per parallel task are chosen so a task has about this many edges.
const TASK_EDGES: usize = 1 << 14;

/// Largest embedding dimension (each has its own compiled kernel).
pub const MAX_DIM: usize = 8;

/// umap-learn clips each gradient component to ±4.
const CLIP: f32 = 4.0;

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

/// Weights turned in place into the epochs between two samples of each
/// edge (`make_epochs_per_sample`):
/// the heaviest edge is sampled every epoch, an edge of weight `w` every
/// `max/w` epochs. Edges lighter than `max / prune_epochs` are dropped
/// (umap-learn zeroes them before the layout) and get `+∞`: never sampled.
/// In place: at a million cells another edge array is 100 MB.
fn weights_to_epochs_per_sample(weights: &mut [f32], prune_epochs: usize) {
    let max = weights.iter().copied().fold(0.0f32, f32::max);
    let floor = max / prune_epochs.max(1) as f32;
    for w in weights {
        *w = if *w > 0.0 && *w >= floor {
            max / *w
        } else {
            f32::INFINITY
        };
    }
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
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    // mantissa in [1, 2); log2 via atanh series in t = (m-1)/(m+1), t ∈ [0, 1/3]
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series =
        t * (2.885_39 + t2 * (0.961_797 + t2 * (0.577_078 + t2 * (0.412_198 + t2 * 0.320_6))));
    e as f32 + series
}

/// Adding `1.5 · 2^23` to a float of magnitude below `2^22` rounds it to
/// an integer `k`, held in the low mantissa bits: `bits = MAGIC_BITS + k`.
const MAGIC: f32 = 12_582_912.0;
const MAGIC_BITS: u32 = 0x4b40_0000;

#[inline(always)]
fn fast_exp2(y: f32) -> f32 {
    let y = y.clamp(-126.0, 126.0);
    // floor by the round-to-integer trick, all in float and integer lanes:
    // `f32::floor` is a libm call on baseline x86-64 and `as i32` (which
    // saturates and maps NaN to 0) is compiled lane by lane; both block SIMD
    let r = (y + MAGIC) - MAGIC;
    let i = r - if r > y { 1.0 } else { 0.0 };
    let f = y - i;
    // 2^f on [0, 1): degree-7 Taylor polynomial of e^(f ln 2)
    let p = 1.0
        + f * (std::f32::consts::LN_2
            + f * (0.240_226_5
                + f * (0.055_504_11
                    + f * (0.009_618_129
                        + f * (0.001_333_355 + f * (0.000_154_035_3 + f * 0.000_015_252_73))))));
    // 2^i from the biased exponent i + 127 ∈ [1, 253]
    let scale = f32::from_bits(((i + (127.0 + MAGIC)).to_bits().wrapping_sub(MAGIC_BITS)) << 23);
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
        let (first, end) = (
            (start + HUGE - 1) & !(HUGE - 1),
            start + len * std::mem::size_of::<f32>(),
        );
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
fn split_mut<T>(mut s: &mut [T], lens: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
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

fn point<const D: usize>(emb: &[f32], k: usize) -> &[f32; D] {
    emb[k * D..(k + 1) * D].try_into().expect("D values")
}

/// Hint the core to load the cache line holding `emb[k * D]`: the
/// negative samples of a vertex are known before its positions are
/// needed, and without the hint each batch of them waits for its random
/// reads one after the other (L3 or memory latency at a million vertices).
#[inline(always)]
fn prefetch<const D: usize>(emb: &[f32], k: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(x) = emb.get(k * D) {
        // SAFETY: a prefetch has no architectural effect; SSE is baseline on x86-64.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                std::ptr::from_ref(x).cast(),
            )
        };
    }
}

/// One vertex's work in one epoch as far as it does not depend on
/// positions: which edges are due, and their negative samples. It is made
/// one vertex ahead of the updates, so the random reads of the samples are
/// already in flight when the updates need them.
#[derive(Default)]
struct Plan {
    v: usize,
    /// Neighbour and number of negative samples of each due edge, in row order.
    due: Vec<(u32, u32)>,
    /// The negative samples of the due edges, edge after edge.
    negatives: Vec<u32>,
}

impl Plan {
    /// Advance the clocks of `v`'s edges (umap-learn's schedule), draw the
    /// negative samples from `v`'s RNG stream and prefetch their positions.
    // The hot loop's per-vertex state, passed apart so the borrows stay disjoint.
    #[allow(clippy::too_many_arguments)]
    fn make<const D: usize>(
        &mut self,
        g: &Csr<'_>,
        prev: &[f32],
        v: usize,
        base: usize,
        clocks: &mut Clocks<'_>,
        epoch: f32,
        seed: u64,
        epoch_i: usize,
        p: &SgdParams,
    ) {
        self.v = v;
        self.due.clear();
        self.negatives.clear();
        let row = g.row(v);
        // which edges are due, as bits: one branch per 64 edges instead of
        // a hard-to-predict one per edge
        for start in row.clone().step_by(64) {
            let end = (start + 64).min(row.end);
            let mut due = 0u64;
            for (bit, &next) in clocks.next[start - base..end - base].iter().enumerate() {
                due |= u64::from(next <= epoch) << bit;
            }
            while due != 0 {
                let e = start + due.trailing_zeros() as usize;
                due &= due - 1;
                let i = e - base;
                clocks.next[i] += clocks.eps[i];
                let eps_neg = clocks.eps[i] / p.negative_sample_rate;
                let n_neg = ((epoch - clocks.next_neg[i]) / eps_neg).max(0.0) as u32;
                clocks.next_neg[i] += n_neg as f32 * eps_neg;
                prefetch::<D>(prev, g.indices[e] as usize);
                self.due.push((g.indices[e], n_neg));
            }
        }
        let n = (prev.len() / D) as u64;
        let mut rng = vertex_rng(seed, epoch_i, v);
        shuffle(&mut self.due, &mut rng);
        for &(_, n_neg) in &self.due {
            for _ in 0..n_neg {
                let k = rng.below(n) as u32;
                prefetch::<D>(prev, k as usize);
                self.negatives.push(k);
            }
        }
    }
}

/// Put a vertex's due edges in a random order (Fisher–Yates). Early on a
/// step nearly closes an edge's distance, so the last edges of a vertex
/// decide where it ends the epoch. In row order, which is breadth-first
/// order here, those are always the neighbours farther from the search's
/// root: every vertex drifted outwards, and weakly linked clusters were
/// pulled apart (measured on two Gaussian blobs: cross-blob edges 1.5–13×
/// longer than umap-learn's; with this shuffle, as long).
fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Vertices advanced together, lane by lane. Within an epoch the vertices
/// are independent (each reads the others from the previous epoch), but
/// one vertex's steps form a chain: every gradient reads the position the
/// previous step wrote. Run alone, that chain of divisions and
/// polynomials waits on its own latency; across [`GROUP`] vertices the
/// steps are independent and the arithmetic runs as SIMD over lanes.
/// Each lane does exactly the sequence of operations a vertex alone would,
/// and takes the next vertex as soon as its own is done (vertices have
/// different numbers of due edges; lockstep groups left ~40% idle).
const GROUP: usize = 8;

/// The vertices in the lanes: positions held dimension-major
/// (`cur[d][lane]`) so each step is one SIMD loop over lanes, the next due
/// edge of each, and how many of its negative samples are used.
struct Lanes<const D: usize> {
    cur: [[f32; GROUP]; D],
    step: [usize; GROUP],
    taken: [usize; GROUP],
}

/// Gradient coefficient of an attraction step at squared distance `d2`.
#[inline(always)]
fn attraction_coeff(d2: f32, a: f32, b: f32) -> f32 {
    let pb = fast_pow(d2, b);
    -2.0 * a * b * (pb / d2) / (a * pb + 1.0)
}

/// Gradient coefficient of a negative sample at squared distance `d2`.
#[inline(always)]
fn repulsion_coeff(d2: f32, a: f32, b: f32, gamma: f32) -> f32 {
    2.0 * gamma * b / ((0.001 + d2) * (a * fast_pow(d2, b) + 1.0))
}

/// One step of every lane whose vertex has a due edge left (`plans[l]`):
/// the attraction along the edge, then the summed steps of its negative
/// samples (clipped per sample; a sample hitting the vertex itself or its
/// exact position pushes nothing, as in umap-learn).
#[inline(always)]
fn step_lanes<const D: usize>(
    lanes: &mut Lanes<D>,
    plans: &[Plan],
    prev: &[f32],
    alpha: f32,
    p: &SgdParams,
) {
    let (a, b, gamma) = (p.a, p.b, p.gamma);
    let Lanes { cur, step, taken } = lanes;
    let mut other = [[0.0f32; GROUP]; D];
    let mut n_neg = [0u32; GROUP];
    let mut on = [false; GROUP];
    for (l, q) in plans.iter().enumerate() {
        if let Some(&(k, n)) = q.due.get(step[l]) {
            let x = point::<D>(prev, k as usize);
            for d in 0..D {
                other[d][l] = x[d];
            }
            (n_neg[l], on[l]) = (n, true);
        }
    }
    let mut d2 = [0.0f32; GROUP];
    for d in 0..D {
        for l in 0..GROUP {
            d2[l] += (cur[d][l] - other[d][l]) * (cur[d][l] - other[d][l]);
        }
    }
    let mut coeff = [0.0f32; GROUP];
    for l in 0..GROUP {
        let c = attraction_coeff(d2[l], a, b);
        coeff[l] = if on[l] && d2[l] > 0.0 { c } else { 0.0 };
    }
    for d in 0..D {
        for l in 0..GROUP {
            // twice: this edge and its mirror (k, v) pull v together
            cur[d][l] += 2.0 * clip(coeff[l] * (cur[d][l] - other[d][l])) * alpha;
        }
    }
    // The negative samples of one edge all push from the same position
    // and their steps are summed: independent iterations instead of one
    // long dependency chain through `cur`.
    let mut push = [[0.0f32; GROUP]; D];
    for s in 0..n_neg.iter().copied().max().unwrap_or(0) {
        let mut diff = [[0.0f32; GROUP]; D];
        let mut d2 = [1.0f32; GROUP];
        let mut live = [false; GROUP];
        for (l, q) in plans.iter().enumerate() {
            if s >= n_neg[l] {
                continue;
            }
            let k = q.negatives[taken[l] + s as usize] as usize;
            if k == q.v {
                continue;
            }
            let x = point::<D>(prev, k);
            let mut sum = 0.0;
            for d in 0..D {
                diff[d][l] = cur[d][l] - x[d];
                sum += diff[d][l] * diff[d][l];
            }
            (d2[l], live[l]) = (sum, sum > 0.0);
        }
        let mut coeff = [0.0f32; GROUP];
        for l in 0..GROUP {
            let c = repulsion_coeff(d2[l], a, b, gamma);
            coeff[l] = if live[l] { c } else { 0.0 };
        }
        for d in 0..D {
            for l in 0..GROUP {
                push[d][l] += clip(coeff[l] * diff[d][l]);
            }
        }
    }
    for l in 0..GROUP {
        taken[l] += n_neg[l] as usize;
        step[l] += usize::from(on[l]);
    }
    for d in 0..D {
        for l in 0..GROUP {
            cur[d][l] += push[d][l] * alpha;
        }
    }
}

/// The compiled copies of [`step_lanes`]. Both run the same IEEE
/// operations in the same order (Rust never fuses a multiply and an add
/// by itself), so they give the same bits; AVX2 runs the lane loops eight
/// wide instead of four (measured at 1M cells: 0.556 s CPU per epoch
/// instead of 0.582 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Baseline,
    Avx2,
}

impl Kernel {
    /// The fastest copy this CPU runs.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Kernel::Avx2;
        }
        Kernel::Baseline
    }

    fn step_lanes<const D: usize>(
        self,
        lanes: &mut Lanes<D>,
        plans: &[Plan],
        prev: &[f32],
        alpha: f32,
        p: &SgdParams,
    ) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` is only chosen by `detect` on a CPU with AVX2
            // (or by a test on such a CPU).
            Kernel::Avx2 => unsafe { step_lanes_avx2::<D>(lanes, plans, prev, alpha, p) },
            _ => step_lanes::<D>(lanes, plans, prev, alpha, p),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn step_lanes_avx2<const D: usize>(
    lanes: &mut Lanes<D>,
    plans: &[Plan],
    prev: &[f32],
    alpha: f32,
    p: &SgdParams,
) {
    step_lanes::<D>(lanes, plans, prev, alpha, p);
}

/// Optimise `emb` (n × dim, row-major, already initialised and scaled to
/// [0, 10] as umap-learn does) in place on the graph `g` (validated).
pub fn optimize_layout(
    ctx: &Ctx,
    g: &Csr<'_>,
    emb: &mut [f32],
    dim: usize,
    p: &SgdParams,
) -> Result<()> {
    optimize_layout_with(ctx, g, emb, dim, p, Kernel::detect())
}

/// [`optimize_layout`] with the given compiled kernel (`Avx2` only on a
/// CPU that has it).
pub fn optimize_layout_with(
    ctx: &Ctx,
    g: &Csr<'_>,
    emb: &mut [f32],
    dim: usize,
    p: &SgdParams,
    kernel: Kernel,
) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    oom_ensure!(
        kernel == Kernel::Baseline || std::arch::is_x86_feature_detected!("avx2"),
        Value,
        "this CPU has no AVX2"
    );
    let n = g.n();
    oom_ensure!(
        emb.len() == n * dim,
        Value,
        "the initial embedding has {} values, expected {n} × {dim}",
        emb.len()
    );
    oom_ensure!(
        p.negative_sample_rate > 0.0,
        Value,
        "negative_sample_rate must be positive"
    );
    oom_ensure!(
        emb.iter().all(|x| x.is_finite()),
        Value,
        "the initial embedding has NaN or infinite values"
    );
    oom_ensure!(
        (1..=MAX_DIM).contains(&dim),
        Value,
        "n_components must be between 1 and {MAX_DIM}, got {dim}"
    );
    let mut relabeled = Relabeled::new(g);
    weights_to_epochs_per_sample(relabeled.data_mut(), p.prune_epochs);
    let g = &relabeled.csr();
    let eps = g.data;
    let mut work = relabeled.to_new(emb, dim);
    match dim {
        1 => optimize::<1>(ctx, g, eps, &mut work, p, kernel),
        2 => optimize::<2>(ctx, g, eps, &mut work, p, kernel),
        3 => optimize::<3>(ctx, g, eps, &mut work, p, kernel),
        4 => optimize::<4>(ctx, g, eps, &mut work, p, kernel),
        5 => optimize::<5>(ctx, g, eps, &mut work, p, kernel),
        6 => optimize::<6>(ctx, g, eps, &mut work, p, kernel),
        7 => optimize::<7>(ctx, g, eps, &mut work, p, kernel),
        8 => optimize::<8>(ctx, g, eps, &mut work, p, kernel),
        _ => oom_bail!(
            Value,
            "n_components must be between 1 and {MAX_DIM}, got {dim}"
        ),
    }?;
    relabeled.to_old(&work, dim, emb);
    Ok(())
}

fn optimize<const D: usize>(
    ctx: &Ctx,
    g: &Csr<'_>,
    eps: &[f32],
    emb: &mut [f32],
    p: &SgdParams,
    kernel: Kernel,
) -> Result<()> {
    let n = g.n();
    let mut next = eps.to_vec();
    let mut next_neg: Vec<f32> = eps.iter().map(|e| e / p.negative_sample_rate).collect();
    let tasks = tasks(g);
    let edge_lens: Vec<usize> = tasks
        .iter()
        .map(|t| g.row(t.end - 1).end - g.row(t.start).start)
        .collect();
    let mut prev = huge_page_buffer(emb.len());
    prev.copy_from_slice(emb);
    ctx.start_pass((n * p.n_epochs) as u64);
    for epoch in 0..p.n_epochs {
        ctx.check()?;
        let (epoch_f, alpha) = (
            epoch as f32,
            p.alpha * (1.0 - epoch as f32 / p.n_epochs as f32),
        );
        let pos = split_mut(emb, tasks.iter().map(|t| t.len() * D));
        let nx = split_mut(&mut next, edge_lens.iter().copied());
        let nn = split_mut(&mut next_neg, edge_lens.iter().copied());
        let prev_ref = &prev;
        pos.into_par_iter()
            .zip(nx)
            .zip(nn)
            .zip(&tasks)
            .with_max_len(1)
            .for_each(|(((pos, nx), nn), t)| {
                let base = g.row(t.start).start;
                let mut clocks = Clocks {
                    eps: &eps[base..base + nx.len()],
                    next: nx,
                    next_neg: nn,
                };
                // vertices are planned GROUP ahead of the lanes taking them, so
                // their samples are being fetched meanwhile
                let mut next_v = t.start;
                let mut plan_next = |q: &mut Plan| {
                    let more = next_v < t.end;
                    if more {
                        q.make::<D>(
                            g,
                            prev_ref,
                            next_v,
                            base,
                            &mut clocks,
                            epoch_f,
                            p.seed,
                            epoch,
                            p,
                        );
                        next_v += 1;
                    }
                    more
                };
                let mut ahead = std::collections::VecDeque::with_capacity(GROUP);
                for _ in 0..GROUP {
                    let mut q = Plan::default();
                    if plan_next(&mut q) {
                        ahead.push_back(q);
                    }
                }
                let mut plans: [Plan; GROUP] = Default::default();
                let mut lanes = Lanes::<D> {
                    cur: [[0.0; GROUP]; D],
                    step: [0; GROUP],
                    taken: [0; GROUP],
                };
                loop {
                    // refill the lanes whose vertex is done (or never started)
                    for (l, plan) in plans.iter_mut().enumerate() {
                        while lanes.step[l] == plan.due.len() {
                            if !plan.due.is_empty() {
                                let done = plan.v - t.start;
                                for d in 0..D {
                                    pos[done * D + d] = lanes.cur[d][l];
                                }
                            }
                            let Some(mut q) = ahead.pop_front() else {
                                plan.due.clear();
                                lanes.step[l] = usize::MAX;
                                break;
                            };
                            std::mem::swap(plan, &mut q);
                            if plan_next(&mut q) {
                                ahead.push_back(q);
                            }
                            let v = plan.v - t.start;
                            for d in 0..D {
                                lanes.cur[d][l] = pos[v * D + d];
                            }
                            (lanes.step[l], lanes.taken[l]) = (0, 0);
                        }
                    }
                    if lanes.step.iter().all(|&s| s == usize::MAX) {
                        break;
                    }
                    kernel.step_lanes::<D>(&mut lanes, &plans, prev_ref, alpha, p);
                }
            });
        prev.copy_from_slice(emb);
        ctx.advance(n as u64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two triangles joined by one light edge.
    fn two_triangles() -> (Vec<i64>, Vec<u32>, Vec<f32>) {
        let edges = [
            (0, 1, 1.0),
            (0, 2, 1.0),
            (1, 2, 1.0),
            (3, 4, 1.0),
            (3, 5, 1.0),
            (4, 5, 1.0),
            (2, 3, 0.1),
        ];
        let mut rows = vec![vec![]; 6];
        for &(i, j, w) in &edges {
            rows[i].push((j as u32, w));
            rows[j].push((i as u32, w));
        }
        crate::graph::csr_from_rows(rows)
    }

    fn params(seed: u64) -> SgdParams {
        SgdParams {
            n_epochs: 200,
            a: 0.583,
            b: 1.334,
            gamma: 1.0,
            alpha: 1.0,
            negative_sample_rate: 5.0,
            prune_epochs: 200,
            seed,
        }
    }

    #[test]
    fn fast_pow_is_close_to_powf() {
        for &b in &[0.79f32, 0.895, 1.334, 1.93] {
            for i in 0..2000 {
                let x = 1e-6f32 * 1.02f32.powi(i);
                let (want, got) = (x.powf(b), fast_pow(x, b));
                assert!(
                    (got - want).abs() <= 2e-5 * want,
                    "{x}^{b}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn epochs_per_sample_matches_umap_learn() {
        // max/w for kept edges; w < max/n_epochs dropped
        let mut eps = vec![1.0, 0.5, 0.25, 0.001];
        weights_to_epochs_per_sample(&mut eps, 200);
        assert_eq!(eps, vec![1.0, 2.0, 4.0, f32::INFINITY]);
    }

    #[test]
    fn clusters_separate_and_result_is_deterministic() {
        let (indptr, indices, data) = two_triangles();
        let g = Csr {
            indptr: &indptr,
            indices: &indices,
            data: &data,
        };
        let init: Vec<f32> = (0..12).map(|i| (i * 7 % 11) as f32 * 0.9).collect();
        let run = |threads: usize| {
            let mut emb = init.clone();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| optimize_layout(&Ctx::new(), &g, &mut emb, 2, &params(3)))
                .unwrap();
            emb
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_ne!(one, init);
        let d =
            |i: usize, j: usize| (one[2 * i] - one[2 * j]).hypot(one[2 * i + 1] - one[2 * j + 1]);
        let within = d(0, 1).max(d(0, 2)).max(d(4, 5)).max(d(3, 4));
        let between = d(0, 4).min(d(1, 5)).min(d(0, 5));
        assert!(within < between, "within {within} between {between}");
    }

    /// A random symmetric graph: a ring plus chords of random weights, so
    /// vertices have different numbers of due edges in each epoch.
    fn random_graph(n: usize, seed: u64) -> (Vec<i64>, Vec<u32>, Vec<f32>) {
        let mut rng = Rng::new(seed);
        let mut rows = vec![vec![]; n];
        let mut add = |i: usize, j: usize, w: f32| {
            rows[i].push((j as u32, w));
            rows[j].push((i as u32, w));
        };
        for i in 0..n {
            add(i, (i + 1) % n, 1.0);
        }
        for i in 0..n {
            for _ in 0..3 {
                let j = rng.below(n as u64) as usize;
                if j != i && j != (i + 1) % n && (j + 1) % n != i {
                    add(i, j, (rng.below(1000) + 1) as f32 / 1000.0);
                }
            }
        }
        for r in &mut rows {
            r.sort_by_key(|e| e.0);
            r.dedup_by_key(|e| e.0);
        }
        crate::graph::csr_from_rows(rows)
    }

    /// umap-learn's epoch for one vertex alone, written plainly: along each
    /// due edge, shuffled, the doubled attraction, then the summed clipped
    /// pushes of its negative samples, each from the vertex's RNG stream.
    fn reference_layout(g: &Csr<'_>, emb: &mut [f32], p: &SgdParams) {
        const D: usize = 2;
        let relabeled = Relabeled::new(g);
        let g = &relabeled.csr();
        let mut eps = g.data.to_vec();
        weights_to_epochs_per_sample(&mut eps, p.prune_epochs);
        let (mut next, mut next_neg) = (
            eps.clone(),
            eps.iter()
                .map(|e| e / p.negative_sample_rate)
                .collect::<Vec<_>>(),
        );
        let mut cur = relabeled.to_new(emb, D);
        let n = g.n();
        for epoch in 0..p.n_epochs {
            let prev = cur.clone();
            let (t, alpha) = (
                epoch as f32,
                p.alpha * (1.0 - epoch as f32 / p.n_epochs as f32),
            );
            for v in 0..n {
                let mut rng = vertex_rng(p.seed, epoch, v);
                let x = &mut cur[v * D..(v + 1) * D];
                let mut due = Vec::new();
                for e in g.row(v) {
                    if next[e] > t {
                        continue;
                    }
                    next[e] += eps[e];
                    let eps_neg = eps[e] / p.negative_sample_rate;
                    let n_neg = ((t - next_neg[e]) / eps_neg).max(0.0) as usize;
                    next_neg[e] += n_neg as f32 * eps_neg;
                    due.push((g.indices[e] as usize, n_neg));
                }
                shuffle(&mut due, &mut rng);
                for (k, n_neg) in due {
                    let y = &prev[k * D..][..D];
                    let d2: f32 = (0..D).map(|d| (x[d] - y[d]) * (x[d] - y[d])).sum();
                    if d2 > 0.0 {
                        let c = attraction_coeff(d2, p.a, p.b);
                        for d in 0..D {
                            x[d] += 2.0 * clip(c * (x[d] - y[d])) * alpha;
                        }
                    }
                    let mut push = [0.0f32; D];
                    for _ in 0..n_neg {
                        let k = rng.below(n as u64) as usize;
                        let y = &prev[k * D..][..D];
                        let diff: Vec<f32> = (0..D).map(|d| x[d] - y[d]).collect();
                        let d2: f32 = diff.iter().map(|z| z * z).sum();
                        if k != v && d2 > 0.0 {
                            let c = repulsion_coeff(d2, p.a, p.b, p.gamma);
                            for d in 0..D {
                                push[d] += clip(c * diff[d]);
                            }
                        }
                    }
                    for d in 0..D {
                        x[d] += push[d] * alpha;
                    }
                }
            }
        }
        relabeled.to_old(&cur, D, emb);
    }

    /// The grouped, planned, SIMD kernels do exactly what each vertex alone
    /// would, on every compiled path and any thread count.
    #[test]
    fn grouped_kernels_equal_the_plain_epoch() {
        let (indptr, indices, data) = random_graph(203, 5);
        let g = Csr {
            indptr: &indptr,
            indices: &indices,
            data: &data,
        };
        let mut rng = Rng::new(9);
        let init: Vec<f32> = (0..2 * g.n())
            .map(|_| rng.below(10_000) as f32 / 1000.0)
            .collect();
        let p = SgdParams {
            n_epochs: 30,
            ..params(11)
        };
        let mut want = init.clone();
        reference_layout(&g, &mut want, &p);
        let mut kernels = vec![Kernel::Baseline];
        if Kernel::detect() == Kernel::Avx2 {
            kernels.push(Kernel::Avx2);
        }
        for kernel in kernels {
            for threads in [1, 2] {
                let mut got = init.clone();
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| optimize_layout_with(&Ctx::new(), &g, &mut got, 2, &p, kernel))
                    .unwrap();
                assert_eq!(got, want, "{kernel:?}, {threads} threads");
            }
        }
    }

    #[test]
    fn fast_exp2_floors_exactly() {
        for &y in &[
            -126.0f32, -3.0, -2.5, -1.0, -1e-7, 0.0, 1e-7, 0.5, 1.0, 7.0, 7.999, 125.5,
        ] {
            let (want, got) = (y.exp2(), fast_exp2(y));
            assert!((got - want).abs() <= 2e-6 * want, "2^{y}: {got} vs {want}");
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (indptr, indices, data) = two_triangles();
        let g = Csr {
            indptr: &indptr,
            indices: &indices,
            data: &data,
        };
        let mut short = vec![0.0f32; 5];
        assert!(optimize_layout(&Ctx::new(), &g, &mut short, 2, &params(0)).is_err());
        let mut nan = vec![f32::NAN; 12];
        assert!(optimize_layout(&Ctx::new(), &g, &mut nan, 2, &params(0)).is_err());
        let mut wide = vec![0.0f32; 6 * 9];
        assert!(optimize_layout(&Ctx::new(), &g, &mut wide, 9, &params(0)).is_err());
        let bad = Csr {
            indptr: &indptr,
            indices: &[9; 14],
            data: &data,
        };
        assert!(bad.validate().is_err());
    }
}
