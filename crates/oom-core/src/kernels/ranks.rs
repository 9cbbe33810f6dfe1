//! Wilcoxon rank sums per column (gene) and row group, streamed in column
//! bands.
//!
//! Ranks are scipy's `rankdata(method="average")` as scanpy's
//! `_RankGenes.wilcoxon` applies it: over every labelled row (reference
//! "rest") or over the rows of one group and the reference group. A
//! column's zeros form one tied run between its negative and positive
//! values, so only its non-zero entries are collected and sorted. The tie
//! term Σ(t³ − t) over tied runs is the numerator of scipy's `tiecorrect`.
//!
//! Memory: the columns are cut into bands whose non-zero entries fit a
//! budget; each band costs one pass over the rows.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::block::{Block, Dtype};
use crate::error::Result;
use crate::exec::map_blocks;
use crate::kernels::block_target;
use crate::kernels::moments::SKIP;
use crate::oom_ensure;
use crate::plan::View;

#[derive(Debug, Clone)]
pub struct RankParams {
    /// Group of each output row; `SKIP` = left out of every ranking.
    pub labels: Arc<Vec<u32>>,
    pub n_labels: usize,
    /// `None`: one ranking over all labelled rows; `Some(r)`: for each
    /// group `g ≠ r`, a ranking over the rows of `g` and `r`.
    pub reference: Option<u32>,
    /// Non-zero entries per column, to cut bands (an estimate suffices).
    pub col_nnz: Vec<u64>,
    /// Entries held in memory at once (a single column may exceed it).
    pub budget: u64,
}

/// Per group × column (row-major by group): the sum of the group's ranks
/// and Σ(t³ − t) of the ranking it takes part in. With a reference, the
/// reference group's own entries stay 0.
#[derive(Debug, Clone, PartialEq)]
pub struct RankSums {
    pub rank_sum: Vec<f64>,
    pub ties: Vec<f64>,
}

/// Ascending, NaN last and never tied (numpy's sort and `!=` on NaN).
fn cmp_nan_last(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

/// Rank sums of one column. `sorted`: its non-zero values in the ranked set
/// with their groups, in [`cmp_nan_last`] order; `zeros[g]`: rows of group
/// `g` in the set whose value is zero. Adds each group's rank sum to `sums`
/// and returns Σ(t³ − t) over the tied runs (the zeros being one run).
#[allow(clippy::cast_precision_loss)]
pub fn rank_column(sorted: &[(f64, u32)], zeros: &[u64], sums: &mut [f64]) -> f64 {
    let n_zero: u64 = zeros.iter().sum();
    let mut zeros_left = n_zero > 0;
    let (mut i, mut pos, mut ties) = (0usize, 0u64, 0.0);
    loop {
        let zero_run = zeros_left && sorted.get(i).is_none_or(|e| e.0 >= 0.0 || e.0.is_nan());
        let t = if zero_run {
            n_zero
        } else if let Some(&(v, _)) = sorted.get(i) {
            sorted[i..].iter().take_while(|e| e.0 == v).count().max(1) as u64
        } else {
            break;
        };
        let tf = t as f64;
        ties += tf * tf * tf - tf;
        let avg = pos as f64 + (tf + 1.0) / 2.0;
        pos += t;
        if zero_run {
            for (s, &z) in sums.iter_mut().zip(zeros) {
                *s += z as f64 * avg;
            }
            zeros_left = false;
        } else {
            let j = i + usize::try_from(t).expect("fits");
            for &(_, g) in &sorted[i..j] {
                sums[g as usize] += avg;
            }
            i = j;
        }
    }
    ties
}

/// Stored values of a piece: float32 data keeps 4 bytes per entry (the
/// conversion from the block's f64 view is exact), so a band holds more.
enum PieceVals {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl PieceVals {
    #[allow(clippy::cast_possible_truncation)]
    fn set(&mut self, i: usize, x: f64) {
        match self {
            PieceVals::F32(v) => v[i] = x as f32,
            PieceVals::F64(v) => v[i] = x,
        }
    }

    fn extend_into(&self, r: Range<usize>, groups: &[u32], out: &mut Vec<(f64, u32)>) {
        match self {
            PieceVals::F32(v) => out.extend(v[r.clone()].iter().map(|&x| f64::from(x)).zip(groups[r].iter().copied())),
            PieceVals::F64(v) => out.extend(v[r.clone()].iter().copied().zip(groups[r].iter().copied())),
        }
    }
}

/// One block's entries of a column band, column by column (CSC).
struct Piece {
    start: Vec<usize>,
    vals: PieceVals,
    groups: Vec<u32>,
}

impl Piece {
    fn collect(block: &Block, row0: usize, band: &Range<usize>, labels: &[u32]) -> Piece {
        let mut start = vec![0usize; band.len() + 1];
        let each = |f: &mut dyn FnMut(usize, f64, u32)| {
            for r in 0..block.nrows() {
                let g = labels[row0 + r];
                if g != SKIP {
                    block.for_row(r, |c, x| {
                        if band.contains(&c) && x != 0.0 {
                            f(c - band.start, x, g);
                        }
                    });
                }
            }
        };
        each(&mut |k, _, _| start[k + 1] += 1);
        for k in 0..band.len() {
            start[k + 1] += start[k];
        }
        let n = start[band.len()];
        let mut vals = if block.dtype() == Dtype::F32 { PieceVals::F32(vec![0.0; n]) } else { PieceVals::F64(vec![0.0; n]) };
        let mut groups = vec![0u32; n];
        let mut next = start.clone();
        each(&mut |k, x, g| {
            vals.set(next[k], x);
            groups[next[k]] = g;
            next[k] += 1;
        });
        Piece { start, vals, groups }
    }
}

/// Cut columns into runs whose non-zero counts sum to at most `budget`.
fn bands(col_nnz: &[u64], budget: u64) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut a, mut acc) = (0usize, 0u64);
    for (c, &n) in col_nnz.iter().enumerate() {
        if c > a && acc + n > budget {
            out.push(a..c);
            (a, acc) = (c, 0);
        }
        acc += n;
    }
    if a < col_nnz.len() {
        out.push(a..col_nnz.len());
    }
    out
}

/// Reusable buffers of one worker.
#[derive(Default)]
struct Scratch {
    all: Vec<(f64, u32)>,
    pair: Vec<(f64, u32)>,
    nnz: Vec<u64>,
    zeros: Vec<u64>,
    sums: Vec<f64>,
}

/// `(rank_sum, ties)` of column `k` of a band, one entry per group.
fn column(pieces: &[Piece], k: usize, sizes: &[u64], reference: Option<u32>, s: &mut Scratch) -> (Vec<f64>, Vec<f64>) {
    let n_labels = sizes.len();
    s.all.clear();
    for p in pieces {
        p.vals.extend_into(p.start[k]..p.start[k + 1], &p.groups, &mut s.all);
    }
    s.all.sort_unstable_by(|a, b| cmp_nan_last(a.0, b.0));
    s.nnz.clear();
    s.nnz.resize(n_labels, 0);
    for &(_, g) in &s.all {
        s.nnz[g as usize] += 1;
    }
    let mut rank_sum = vec![0.0; n_labels];
    let mut ties = vec![0.0; n_labels];
    match reference {
        None => {
            s.zeros.clear();
            s.zeros.extend(sizes.iter().zip(&s.nnz).map(|(n, z)| n - z));
            let t = rank_column(&s.all, &s.zeros, &mut rank_sum);
            ties.fill(t);
        }
        Some(r) => {
            for g in (0..n_labels).filter(|&g| g != r as usize && sizes[g] > 0) {
                let in_pair = |x: u32| x as usize == g || x == r;
                s.pair.clear();
                s.pair.extend(s.all.iter().filter(|e| in_pair(e.1)));
                s.zeros.clear();
                s.zeros.extend((0..n_labels).map(|l| if in_pair(l as u32) { sizes[l] - s.nnz[l] } else { 0 }));
                s.sums.clear();
                s.sums.resize(n_labels, 0.0);
                ties[g] = rank_column(&s.pair, &s.zeros, &mut s.sums);
                rank_sum[g] = s.sums[g];
            }
        }
    }
    (rank_sum, ties)
}

/// Rank sums and tie terms of every column, one pass over the rows per band.
pub fn rank_sums(view: &View, p: &RankParams) -> Result<RankSums> {
    let ncols = usize::try_from(view.ncols()).expect("fits");
    let nrows = usize::try_from(view.nrows()).expect("fits");
    oom_ensure!(p.labels.len() == nrows, Value, "labels have length {}, expected {nrows}", p.labels.len());
    oom_ensure!(p.col_nnz.len() == ncols, Value, "col_nnz has length {}, expected {ncols}", p.col_nnz.len());
    if let Some(&bad) = p.labels.iter().find(|&&g| g != SKIP && g as usize >= p.n_labels) {
        crate::oom_bail!(Value, "group id {bad} >= n_groups {}", p.n_labels);
    }
    if let Some(r) = p.reference {
        oom_ensure!((r as usize) < p.n_labels, Value, "reference {r} >= n_groups {}", p.n_labels);
    }
    let mut sizes = vec![0u64; p.n_labels];
    for &g in p.labels.iter().filter(|&&g| g != SKIP) {
        sizes[g as usize] += 1;
    }
    let mut out = RankSums { rank_sum: vec![0.0; p.n_labels * ncols], ties: vec![0.0; p.n_labels * ncols] };
    for band in bands(&p.col_nnz, p.budget.max(1)) {
        let pieces = map_blocks(view, block_target(view), |a, _, block| {
            Ok(Piece::collect(&block, usize::try_from(a).expect("fits"), &band, &p.labels))
        })?;
        let cols: Vec<(Vec<f64>, Vec<f64>)> = (0..band.len())
            .into_par_iter()
            .map_init(Scratch::default, |s, k| column(&pieces, k, &sizes, p.reference, s))
            .collect();
        for (k, (sums, ties)) in cols.into_iter().enumerate() {
            let c = band.start + k;
            for g in 0..p.n_labels {
                out.rank_sum[g * ncols + c] = sums[g];
                out.ties[g * ncols + c] = ties[g];
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scipy's average ranks of `x` and Σ(t³ − t), by brute force.
    #[allow(clippy::cast_precision_loss)]
    fn brute(x: &[f64]) -> (Vec<f64>, f64) {
        let ranks = x
            .iter()
            .map(|&v| {
                let below = x.iter().filter(|&&w| w < v).count() as f64;
                let equal = x.iter().filter(|&&w| w == v).count() as f64;
                below + (equal + 1.0) / 2.0
            })
            .collect();
        let mut ties = 0.0;
        let mut seen: Vec<f64> = Vec::new();
        for &v in x {
            if !seen.contains(&v) {
                seen.push(v);
                let t = x.iter().filter(|&&w| w == v).count() as f64;
                ties += t * t * t - t;
            }
        }
        (ranks, ties)
    }

    /// A small deterministic generator (no dev-dependency needed).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    /// A dense `nrows × ncols` matrix with many zeros, ties and negatives.
    #[allow(clippy::cast_precision_loss)]
    fn matrix(nrows: usize, ncols: usize, seed: u64) -> Vec<f64> {
        let mut rng = Lcg(seed);
        (0..nrows * ncols)
            .map(|_| match rng.next() % 4 {
                0 | 1 => 0.0,
                2 => (rng.next() % 5) as f64 - 2.0,
                _ => (rng.next() % 1000) as f64 / 7.0 - 50.0,
            })
            .collect()
    }

    /// `x` stored as a dense HDF5 `X` (zeros are visited, as after scale).
    fn view_of(dir: &tempfile::TempDir, x: &[f64], nrows: usize, ncols: usize) -> View {
        let path = dir.path().join("x.h5");
        let a = ndarray::Array2::from_shape_vec((nrows, ncols), x.to_vec()).expect("shape");
        hdf5::File::create(&path).expect("create").new_dataset_builder().with_data(&a).create("X").expect("write");
        let f = crate::storage::H5File::open(&path).expect("open");
        View::new(Arc::new(crate::storage::open_matrix(&f, "X").expect("matrix")))
    }

    fn check(reference: Option<u32>, budget: u64) {
        let (nrows, ncols, n_labels) = (57, 9, 4usize);
        let x = matrix(nrows, ncols, 7);
        let mut rng = Lcg(3);
        let labels: Vec<u32> = (0..nrows).map(|_| if rng.next() % 9 == 0 { SKIP } else { (rng.next() % 4) as u32 }).collect();
        let col_nnz = (0..ncols).map(|c| (0..nrows).filter(|&r| x[r * ncols + c] != 0.0).count() as u64).collect();
        let p = RankParams { labels: Arc::new(labels.clone()), n_labels, reference, col_nnz, budget };
        let dir = tempfile::tempdir().expect("tempdir");
        let got = rank_sums(&view_of(&dir, &x, nrows, ncols), &p).expect("rank sums");
        for c in 0..ncols {
            for g in 0..n_labels {
                let set: Vec<usize> = (0..nrows)
                    .filter(|&r| match reference {
                        None => labels[r] != SKIP,
                        Some(rf) => labels[r] == g as u32 || labels[r] == rf,
                    })
                    .collect();
                if reference == Some(g as u32) {
                    assert_eq!(got.rank_sum[g * ncols + c], 0.0);
                    continue;
                }
                let vals: Vec<f64> = set.iter().map(|&r| x[r * ncols + c]).collect();
                let (ranks, ties) = brute(&vals);
                let want: f64 = set.iter().zip(&ranks).filter(|(&r, _)| labels[r] == g as u32).map(|(_, k)| k).sum();
                assert_eq!(got.rank_sum[g * ncols + c], want, "column {c} group {g}");
                assert_eq!(got.ties[g * ncols + c], ties, "ties column {c} group {g}");
            }
        }
    }

    #[test]
    fn rank_sums_match_brute_force_over_all_rows() {
        check(None, 1 << 20);
    }

    #[test]
    fn rank_sums_match_brute_force_against_a_reference() {
        check(Some(2), 1 << 20);
    }

    #[test]
    fn narrow_bands_give_the_same_sums() {
        check(None, 10);
        check(Some(0), 1);
    }

    #[test]
    fn blocks_merge_into_the_same_columns() {
        let (nrows, ncols) = (40, 5);
        let x = matrix(nrows, ncols, 11);
        let labels: Vec<u32> = (0..nrows as u32).map(|r| r % 3).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let view = view_of(&dir, &x, nrows, ncols);
        let band = 0..ncols;
        let piece = |a: usize, b: usize| Piece::collect(&view.read(a as u64, b as u64).expect("read"), a, &band, &labels);
        let one = [piece(0, nrows)];
        let split = [piece(0, 13), piece(13, 14), piece(14, nrows)];
        let sizes = [14, 13, 13];
        for reference in [None, Some(1)] {
            for k in 0..ncols {
                let mut s = Scratch::default();
                assert_eq!(column(&one, k, &sizes, reference, &mut s), column(&split, k, &sizes, reference, &mut s));
            }
        }
    }

    #[test]
    fn zeros_sit_between_negatives_and_positives() {
        // values: -1 (group 0), 0 0 (group 1), 2 2 (groups 0, 1) → ranks 1, 2.5 2.5, 4.5 4.5
        let mut sums = vec![0.0; 2];
        let ties = rank_column(&[(-1.0, 0), (2.0, 0), (2.0, 1)], &[0, 2], &mut sums);
        assert_eq!(sums, vec![1.0 + 4.5, 2.5 + 2.5 + 4.5]);
        assert_eq!(ties, 6.0 + 6.0);
        // only negatives: the zeros come last
        let mut sums = vec![0.0];
        rank_column(&[(-3.0, 0), (-1.0, 0)], &[1], &mut sums);
        assert_eq!(sums, vec![6.0]);
    }

    #[test]
    fn nan_ranks_last_and_untied() {
        let mut v = vec![(f64::NAN, 0), (1.0, 0), (f64::NAN, 0), (-1.0, 0)];
        v.sort_unstable_by(|a, b| cmp_nan_last(a.0, b.0));
        let mut sums = vec![0.0];
        let ties = rank_column(&v, &[0], &mut sums);
        assert_eq!(sums, vec![10.0]);
        assert_eq!(ties, 0.0);
    }

    #[test]
    fn bands_respect_the_budget() {
        assert_eq!(bands(&[3, 3, 3, 10, 1], 6), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(bands(&[], 6), Vec::<Range<usize>>::new());
    }
}
