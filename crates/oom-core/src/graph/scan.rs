//! Brute-force distance blocks by GEMM and the per-query top-k lists they
//! fill.
//!
//! A block of queries `Q` (m × d) is compared with a block of candidates
//! `C` (c × d) through `‖q‖² + ‖c‖² − 2 q·c`: one f32 matrix product per
//! block, so the inner loop runs at GEMM speed. The formula loses precision
//! for close points, so it only *ranks*; the winners' distances are
//! recomputed directly (see [`sqdist`]) before they are reported.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// Candidates per GEMM block: the block of products (c × m f32) stays a
/// few MB, in cache-friendly pieces.
const CAND_BLOCK: usize = 2048;

/// Id that never equals a candidate's: queries that exclude nobody.
pub const NO_ID: u32 = u32::MAX;

/// The `cap` smallest `(key, id)` pairs pushed so far, ascending; equal
/// keys are ordered by id, so the result never depends on push order.
#[derive(Clone, Debug)]
pub struct TopK {
    items: Vec<(f32, u32)>,
    cap: usize,
}

#[inline]
fn before(a: (f32, u32), b: (f32, u32)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

impl TopK {
    pub fn new(cap: usize) -> Self {
        TopK {
            items: Vec::with_capacity(cap + 1),
            cap,
        }
    }

    /// Key a new item must not exceed to enter.
    #[inline]
    pub fn worst(&self) -> f32 {
        if self.items.len() < self.cap {
            f32::INFINITY
        } else {
            self.items[self.cap - 1].0
        }
    }

    #[inline]
    pub fn push(&mut self, key: f32, id: u32) {
        if self.items.len() == self.cap {
            if !before((key, id), self.items[self.cap - 1]) {
                return;
            }
            self.items.pop();
        }
        let pos = self.items.partition_point(|&it| before(it, (key, id)));
        self.items.insert(pos, (key, id));
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.items.iter().map(|&(_, i)| i)
    }
}

/// Squared euclidean distance in f64 (the exact value reported).
#[inline]
pub fn sqdist(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for t in 0..4 {
            let v = f64::from(x[t]) - f64::from(y[t]);
            acc[t] += v * v;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        let v = f64::from(*x) - f64::from(*y);
        s += v * v;
    }
    s
}

/// Squared norms of the rows of `x` (row-major, `d` columns).
pub fn norms(x: &[f32], d: usize) -> Vec<f32> {
    x.chunks_exact(d)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

/// A query block: rows (m × d), their squared norms and ids.
pub struct Queries<'a> {
    pub x: &'a [f32],
    pub norms: &'a [f32],
    pub ids: &'a [u32],
}

/// Push every candidate of `c` (rows, norms, ids) into the top-k of every
/// query of `q` (`tops[i]` for query `i`), skipping a query's own id.
/// `buf` is scratch space reused between calls.
pub fn scan(q: &Queries<'_>, c: &Queries<'_>, d: usize, tops: &mut [TopK], buf: &mut Vec<f32>) {
    let m = q.ids.len();
    debug_assert_eq!(tops.len(), m);
    let mut start = 0;
    while start < c.ids.len() {
        let end = (start + CAND_BLOCK).min(c.ids.len());
        let nc = end - start;
        buf.clear();
        buf.resize(nc * m, 0.0);
        // (C Qᵀ) column-major = one contiguous run of nc products per query.
        let dst = MatMut::from_column_major_slice_mut(&mut buf[..], nc, m);
        let lhs = MatRef::from_row_major_slice(&c.x[start * d..end * d], nc, d);
        let rhs = MatRef::from_row_major_slice(q.x, m, d).transpose();
        matmul(dst, Accum::Replace, lhs, rhs, -2.0f32, Par::Seq);
        let (cn, cid) = (&c.norms[start..end], &c.ids[start..end]);
        for (qi, top) in tops.iter_mut().enumerate() {
            let row = &buf[qi * nc..(qi + 1) * nc];
            let (base, own) = (q.norms[qi], q.ids[qi]);
            let mut worst = top.worst();
            for j in 0..nc {
                let v = base + cn[j] + row[j];
                if v <= worst && cid[j] != own {
                    top.push(v, cid[j]);
                    worst = top.worst();
                }
            }
        }
        start = end;
    }
}
