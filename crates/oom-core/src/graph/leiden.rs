//! Leiden community detection (Traag, Waltman & van Eck 2019, "From Louvain
//! to Leiden: guaranteeing well-connected communities", Sci. Rep. 9:5233),
//! following igraph's `igraph_community_leiden` step for step, so that
//! `sc.tl.leiden(flavor="igraph")` and this give partitions of the same quality:
//!
//! 1. fast local moving: nodes are visited from a queue (first in random
//!    order); a node moves to the neighbouring (or an empty) community with
//!    the largest strictly positive gain, and its neighbours outside that
//!    community are queued again;
//! 2. refinement: inside each community, singletons that are well connected
//!    merge into well-connected sub-communities chosen at random with
//!    probability ∝ exp(gain / β) among non-negative gains (β = 0.01);
//! 3. aggregation on the refined partition, starting from the unrefined one;
//!    repeated until every community is a single aggregated node.
//!
//! One such pass is an iteration; `n_iterations < 0` repeats until no node
//! moves. The quality is Σ_c [w_in(c) − γ' A_c²] with node weights a
//! (degrees and γ' = γ / 2m for modularity; node counts and γ' = γ for
//! CPM); moving v from community `old` (v removed) to `c` changes it by
//! 2 [(w(v,c) − γ' a_v A_c) − (w(v,old) − γ' a_v A_old)].

use std::collections::VecDeque;

use crate::ctx::Ctx;
use crate::error::Result;
use crate::graph::weighted::{Graph, Weight};
use crate::oom_ensure;
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    Modularity,
    /// Constant Potts model (node weight 1 per original node).
    Cpm,
}

pub struct LeidenParams {
    pub resolution: f64,
    pub objective: Objective,
    /// Randomness of the refinement (igraph's `beta`, the paper's θ).
    pub beta: f64,
    /// Number of iterations; negative = until no node moves.
    pub n_iterations: i64,
    pub seed: u64,
}

pub struct Leiden {
    /// Community of every node, `0` the largest, then by decreasing size.
    pub membership: Vec<u32>,
    pub n_clusters: usize,
    /// Modularity (or CPM quality / 2m) of `membership` at the resolution.
    pub quality: f64,
}

/// A safety stop for `n_iterations < 0` (igraph has none; partitions are
/// stable after a handful of iterations on real graphs).
const MAX_ITERATIONS: i64 = 1000;

pub fn leiden<W: Weight>(ctx: &Ctx, g: &Graph<W>, p: &LeidenParams) -> Result<Leiden> {
    oom_ensure!(
        p.resolution.is_finite() && p.resolution >= 0.0,
        Value,
        "resolution must be >= 0, got {}",
        p.resolution
    );
    oom_ensure!(
        p.beta.is_finite() && p.beta > 0.0,
        Value,
        "beta must be > 0, got {}",
        p.beta
    );
    let n = g.n();
    let degrees = g.degrees();
    let total: f64 = degrees.iter().sum();
    let (node_w, gamma) = match p.objective {
        Objective::Modularity => (
            degrees,
            if total > 0.0 {
                p.resolution / total
            } else {
                0.0
            },
        ),
        Objective::Cpm => (vec![1.0; n], p.resolution),
    };
    let mut rng = Rng::new(p.seed);
    let mut membership: Vec<u32> = (0..n as u32).collect();
    let max_iter = if p.n_iterations < 0 {
        MAX_ITERATIONS
    } else {
        p.n_iterations
    };
    for _ in 0..max_iter {
        let step = Step {
            ctx,
            gamma,
            beta: p.beta,
        };
        let changed = iterate(&step, g, &node_w, &mut membership, &mut rng)?;
        if !changed && p.n_iterations < 0 {
            break;
        }
    }
    let n_clusters = order_by_size(&mut membership);
    let quality = quality(g, &node_w, &membership, gamma) / total.max(f64::MIN_POSITIVE);
    Ok(Leiden {
        membership,
        n_clusters,
        quality,
    })
}

/// Σ_c [w_in(c) − γ' A_c²] of a partition (`w_in` over both directions).
pub fn quality<W: Weight>(g: &Graph<W>, node_w: &[f64], membership: &[u32], gamma: f64) -> f64 {
    let k = membership
        .iter()
        .map(|&c| c as usize + 1)
        .max()
        .unwrap_or(0);
    let mut a = vec![0f64; k];
    let mut inside = 0.0;
    for v in 0..g.n() {
        a[membership[v] as usize] += node_w[v];
        inside += g
            .row(v)
            .filter(|&(u, _)| membership[u] == membership[v])
            .map(|(_, w)| w)
            .sum::<f64>();
    }
    inside - gamma * a.iter().map(|x| x * x).sum::<f64>()
}

/// Modularity of `membership` on `g` at `resolution` (Newman; γ as igraph's).
pub fn modularity<W: Weight>(g: &Graph<W>, membership: &[u32], resolution: f64) -> f64 {
    let degrees = g.degrees();
    let total: f64 = degrees.iter().sum();
    if total <= 0.0 {
        return f64::NAN;
    }
    quality(g, &degrees, membership, resolution / total) / total
}

/// What every level of an iteration shares: the call, the resolution and
/// the refinement's randomness.
struct Step<'a> {
    ctx: &'a Ctx,
    gamma: f64,
    beta: f64,
}

/// One Leiden iteration from `membership` (of `g`'s nodes); true if a node moved.
fn iterate<W: Weight>(
    s: &Step<'_>,
    g: &Graph<W>,
    node_w0: &[f64],
    membership: &mut [u32],
    rng: &mut Rng,
) -> Result<bool> {
    let mut part = membership.to_vec();
    renumber(&mut part);
    let mut node_of: Vec<u32> = (0..g.n() as u32).collect();
    let mut changed = false;
    let mut level = one_level(s, g, node_w0, &mut part, &mut changed, rng)?;
    while let Some((next, next_w, refined)) = level {
        for o in &mut node_of {
            *o = refined[*o as usize];
        }
        level = one_level(s, &next, &next_w, &mut part, &mut changed, rng)?;
    }
    for (m, &o) in membership.iter_mut().zip(&node_of) {
        *m = part[o as usize];
    }
    Ok(changed)
}

/// Local moving on one level; unless every community is already a single
/// node, refine and return the aggregated graph, its node weights and the
/// refined membership (`part` becomes the aggregated nodes' communities).
/// One level's result: the aggregated graph, its node weights and the refined
/// membership.
type Level = (Graph<f64>, Vec<f64>, Vec<u32>);

fn one_level<W: Weight>(
    s: &Step<'_>,
    cur: &Graph<W>,
    node_w: &[f64],
    part: &mut Vec<u32>,
    changed: &mut bool,
    rng: &mut Rng,
) -> Result<Option<Level>> {
    *changed |= move_nodes(s, cur, node_w, part, rng)?;
    let k = renumber(part);
    if k >= cur.n() {
        return Ok(None);
    }
    let mut refined = refine(s, cur, node_w, part, k, rng)?;
    let mut k_ref = renumber(&mut refined);
    if k_ref >= cur.n() {
        refined.clone_from(part);
        k_ref = k;
    }
    let next = cur.aggregate(&refined, k_ref);
    let mut next_w = vec![0f64; k_ref];
    let mut next_part = vec![0u32; k_ref];
    for v in 0..cur.n() {
        next_w[refined[v] as usize] += node_w[v];
        next_part[refined[v] as usize] = part[v];
    }
    *part = next_part;
    s.ctx.check()?;
    Ok(Some((next, next_w, refined)))
}

/// Gain (up to the factor 2 and the terms of v's own community) of putting
/// node v (weight `a_v`, edges of weight `w_vc` to community c) into c of
/// weight `a_c` (v not counted).
fn gain(w_vc: f64, a_v: f64, a_c: f64, gamma: f64) -> f64 {
    w_vc - gamma * a_v * a_c
}

/// Fisher–Yates permutation of `0..n`.
fn permutation(n: usize, rng: &mut Rng) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

/// Uniform in [0, 1).
fn uniform(rng: &mut Rng) -> f64 {
    let u = (rng.next_u64() >> 11) as f64;
    u / (1u64 << 53) as f64
}

/// Sums of edge weights from one node to each neighbouring community,
/// with the list of communities touched (reset after each node).
struct NeighbourWeights {
    w: Vec<f64>,
    seen: Vec<bool>,
    touched: Vec<u32>,
}

impl NeighbourWeights {
    fn new(n: usize) -> Self {
        Self {
            w: vec![0.0; n],
            seen: vec![false; n],
            touched: Vec::new(),
        }
    }

    fn add(&mut self, c: u32, w: f64) {
        let i = c as usize;
        if !self.seen[i] {
            self.seen[i] = true;
            self.touched.push(c);
        }
        self.w[i] += w;
    }

    fn clear(&mut self) {
        for &c in &self.touched {
            self.w[c as usize] = 0.0;
            self.seen[c as usize] = false;
        }
        self.touched.clear();
    }
}

/// Fast local moving (igraph's `fastmovenodes`); true if a node moved.
fn move_nodes<W: Weight>(
    s: &Step<'_>,
    g: &Graph<W>,
    node_w: &[f64],
    part: &mut [u32],
    rng: &mut Rng,
) -> Result<bool> {
    let (ctx, gamma) = (s.ctx, s.gamma);
    let n = g.n();
    let mut cw = vec![0f64; n];
    let mut size = vec![0u32; n];
    for v in 0..n {
        cw[part[v] as usize] += node_w[v];
        size[part[v] as usize] += 1;
    }
    let mut empty: Vec<u32> = (0..n as u32)
        .rev()
        .filter(|&c| size[c as usize] == 0)
        .collect();
    let mut queue: VecDeque<u32> = permutation(n, rng).into();
    let mut queued = vec![true; n];
    let mut nb = NeighbourWeights::new(n);
    let mut changed = false;
    let mut visits = 0u32;
    while let Some(v) = queue.pop_front() {
        visits = visits.wrapping_add(1);
        if visits.trailing_zeros() >= 16 {
            ctx.check()?;
        }
        let v = v as usize;
        queued[v] = false;
        let old = part[v];
        cw[old as usize] -= node_w[v];
        size[old as usize] -= 1;
        if size[old as usize] == 0 {
            empty.push(old);
        }
        nb.add(old, 0.0);
        for (u, w) in g.row(v) {
            if u != v {
                nb.add(part[u], w);
            }
        }
        let mut best = old;
        let mut best_gain = gain(nb.w[old as usize], node_w[v], cw[old as usize], gamma);
        for &c in &nb.touched {
            let d = gain(nb.w[c as usize], node_w[v], cw[c as usize], gamma);
            if d > best_gain {
                best = c;
                best_gain = d;
            }
        }
        if best_gain < 0.0 {
            best = *empty
                .last()
                .expect("v's removal leaves a community or one was empty");
        }
        nb.clear();
        if size[best as usize] == 0 {
            empty.pop();
        }
        cw[best as usize] += node_w[v];
        size[best as usize] += 1;
        part[v] = best;
        if best != old {
            changed = true;
            for (u, _) in g.row(v) {
                if !queued[u] && part[u] != best {
                    queued[u] = true;
                    queue.push_back(u as u32);
                }
            }
        }
    }
    Ok(changed)
}

/// Refinement (igraph's `mergenodes` over every community): the refined
/// membership, as node ids of the sub-community each node joined.
fn refine<W: Weight>(
    s: &Step<'_>,
    g: &Graph<W>,
    node_w: &[f64],
    part: &[u32],
    k: usize,
    rng: &mut Rng,
) -> Result<Vec<u32>> {
    let Step { ctx, gamma, beta } = *s;
    let n = g.n();
    let mut total = vec![0f64; k];
    let mut start = vec![0usize; k + 1];
    for v in 0..n {
        total[part[v] as usize] += node_w[v];
        start[part[v] as usize + 1] += 1;
    }
    for c in 0..k {
        start[c + 1] += start[c];
    }
    // Nodes grouped by community, each group in random order.
    let mut order = vec![0u32; n];
    let mut fill = start.clone();
    for v in permutation(n, rng) {
        let c = part[v as usize] as usize;
        order[fill[c]] = v;
        fill[c] += 1;
    }
    drop(fill);
    let mut refined: Vec<u32> = (0..n as u32).collect();
    let mut rw = node_w.to_vec();
    let mut size = vec![1u32; n];
    // Weight from each sub-community to the rest of its community.
    let mut external: Vec<f64> = (0..n)
        .map(|v| {
            g.row(v)
                .filter(|&(u, _)| u != v && part[u] == part[v])
                .map(|(_, w)| w)
                .sum()
        })
        .collect();
    let mut nb = NeighbourWeights::new(n);
    let mut cand: Vec<(u32, f64)> = Vec::new();
    for c in 0..k {
        if c % 4096 == 0 {
            ctx.check()?;
        }
        let tot = total[c];
        for &v in &order[start[c]..start[c + 1]] {
            let v = v as usize;
            let own = refined[v];
            let o = own as usize;
            if size[o] != 1 || external[o] < gamma * rw[o] * (tot - rw[o]) {
                continue;
            }
            rw[o] = 0.0;
            size[o] = 0;
            nb.add(own, 0.0);
            for (u, w) in g.row(v) {
                if u != v && part[u] as usize == c {
                    nb.add(refined[u], w);
                }
            }
            cand.clear();
            let mut max_gain = f64::NEG_INFINITY;
            for &r in &nb.touched {
                let ri = r as usize;
                if external[ri] >= gamma * rw[ri] * (tot - rw[ri]) {
                    let d = gain(nb.w[ri], node_w[v], rw[ri], gamma);
                    if d >= 0.0 {
                        cand.push((r, d));
                        max_gain = max_gain.max(d);
                    }
                }
            }
            let mut chosen = own;
            if cand.len() > 1 {
                let sum: f64 = cand
                    .iter()
                    .map(|&(_, d)| ((d - max_gain) / beta).exp())
                    .sum();
                let mut x = uniform(rng) * sum;
                for &(r, d) in &cand {
                    chosen = r;
                    x -= ((d - max_gain) / beta).exp();
                    if x < 0.0 {
                        break;
                    }
                }
            }
            nb.clear();
            let ch = chosen as usize;
            rw[ch] += node_w[v];
            size[ch] += 1;
            if chosen != own {
                external[o] = 0.0;
                for (u, w) in g.row(v) {
                    if u != v && part[u] as usize == c {
                        if refined[u] == chosen {
                            external[ch] -= w;
                        } else {
                            external[ch] += w;
                        }
                    }
                }
                refined[v] = chosen;
            }
        }
    }
    Ok(refined)
}

/// Relabel communities `0..k` in order of first appearance; returns `k`.
fn renumber(part: &mut [u32]) -> usize {
    let n = part.len();
    let mut map = vec![u32::MAX; n.max(part.iter().map(|&c| c as usize + 1).max().unwrap_or(0))];
    let mut k = 0u32;
    for c in part.iter_mut() {
        let m = &mut map[*c as usize];
        if *m == u32::MAX {
            *m = k;
            k += 1;
        }
        *c = *m;
    }
    k as usize
}

/// Relabel communities by decreasing size (ties: first appearance), as
/// leidenalg orders them; returns the number of communities.
pub fn order_by_size(part: &mut [u32]) -> usize {
    let k = renumber(part);
    let mut size = vec![0usize; k];
    for &c in part.iter() {
        size[c as usize] += 1;
    }
    let mut by_size: Vec<u32> = (0..k as u32).collect();
    by_size.sort_by_key(|&c| std::cmp::Reverse(size[c as usize]));
    let mut rank = vec![0u32; k];
    for (r, &c) in by_size.iter().enumerate() {
        rank[c as usize] = r as u32;
    }
    for c in part.iter_mut() {
        *c = rank[*c as usize];
    }
    k
}

#[cfg(test)]
mod tests;
