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

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use crate::block::{Block, Dtype, Values};
use crate::ctx::Ctx;
use crate::error::{OomError, Result};
use crate::exec::{map_blocks, map_blocks_in_order};
use crate::kernels::block_target;
use crate::kernels::moments::SKIP;
use crate::oom_ensure;
use crate::plan::View;
use crate::storage::transpose::{spill_dir, spill_file};

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
    a.partial_cmp(&b)
        .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

/// Rank sums of one column. `sorted`: its non-zero values in the ranked set
/// with their groups, in [`cmp_nan_last`] order; `zeros[g]`: rows of group
/// `g` in the set whose value is zero. Adds each group's rank sum to `sums`
/// and returns Σ(t³ − t) over the tied runs (the zeros being one run).
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

/// One block's entries of a column band, column by column (CSC). float32
/// data keeps 4 bytes per entry (the conversion from the block's f64 view is
/// exact), so a band holds more.
struct Piece {
    start: Vec<usize>,
    vals: Values,
    groups: Vec<u32>,
}

impl Piece {
    /// The block's labelled non-zero entries in columns `cols`.
    fn collect(block: &Block, row0: usize, cols: &Range<usize>, labels: &[u32]) -> Piece {
        let mut start = vec![0usize; cols.len() + 1];
        let each = |f: &mut dyn FnMut(usize, f64, u32)| {
            for r in 0..block.nrows() {
                let g = labels[row0 + r];
                if g != SKIP {
                    block.for_row(r, |c, x| {
                        if cols.contains(&c) && x != 0.0 {
                            f(c - cols.start, x, g);
                        }
                    });
                }
            }
        };
        each(&mut |k, _, _| start[k + 1] += 1);
        for k in 0..cols.len() {
            start[k + 1] += start[k];
        }
        let n = start[cols.len()];
        let dtype = if block.dtype() == Dtype::F32 {
            Dtype::F32
        } else {
            Dtype::F64
        };
        let mut vals = Values::zeros(dtype, n);
        let mut groups = vec![0u32; n];
        let mut next = start.clone();
        match &mut vals {
            Values::F32(v) => each(&mut |k, x, g| {
                (v[next[k]], groups[next[k]]) = (x as f32, g);
                next[k] += 1;
            }),
            Values::F64(v) => each(&mut |k, x, g| {
                (v[next[k]], groups[next[k]]) = (x, g);
                next[k] += 1;
            }),
            _ => unreachable!("pieces hold f32 or f64"),
        }
        Piece {
            start,
            vals,
            groups,
        }
    }

    /// Append column `k`'s entries to `out` as `(value, group)`.
    fn extend_into(&self, k: usize, out: &mut Vec<(f64, u32)>) {
        let r = self.start[k]..self.start[k + 1];
        match &self.vals {
            Values::F32(v) => out.extend(
                v[r.clone()]
                    .iter()
                    .map(|&x| f64::from(x))
                    .zip(self.groups[r].iter().copied()),
            ),
            Values::F64(v) => out.extend(
                v[r.clone()]
                    .iter()
                    .copied()
                    .zip(self.groups[r].iter().copied()),
            ),
            _ => unreachable!("pieces hold f32 or f64"),
        }
    }

    /// Write the columns `band` (relative to this piece's first column).
    fn write_band(&self, band: Range<usize>, w: &mut impl Write) -> std::io::Result<()> {
        let (a, b) = (self.start[band.start], self.start[band.end]);
        let size = self.vals.dtype().size();
        w.write_all(&(b - a).to_le_bytes())?;
        for &s in &self.start[band.start..=band.end] {
            w.write_all(&(s - a).to_le_bytes())?;
        }
        w.write_all(&self.vals.bytes()[a * size..b * size])?;
        w.write_all(Values::U32(self.groups[a..b].to_vec()).bytes())
    }

    /// Read back what [`Piece::write_band`] wrote for a band of `ncols`.
    fn read_band(r: &mut impl Read, ncols: usize, dtype: Dtype) -> std::io::Result<Piece> {
        let mut word = [0u8; 8];
        let mut next =
            |r: &mut dyn Read| r.read_exact(&mut word).map(|()| usize::from_le_bytes(word));
        let n = next(r)?;
        let start = (0..=ncols)
            .map(|_| next(r))
            .collect::<std::io::Result<_>>()?;
        let mut vals = Values::zeros(dtype, n);
        r.read_exact(vals.bytes_mut())?;
        let mut groups = Values::zeros(Dtype::U32, n);
        r.read_exact(groups.bytes_mut())?;
        let Values::U32(groups) = groups else {
            unreachable!("made as u32")
        };
        Ok(Piece {
            start,
            vals,
            groups,
        })
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
    keys: Vec<u64>,
    all: Vec<(f64, u32)>,
    pair: Vec<(f64, u32)>,
    nnz: Vec<u64>,
    zeros: Vec<u64>,
    sums: Vec<f64>,
}

/// A float32 value and its group as one integer key whose order is
/// [`cmp_nan_last`]'s: sorting plain integers is several times faster than
/// comparing floats. Every NaN becomes the positive quiet NaN, above +∞.
fn f32_key(x: f32, g: u32) -> u64 {
    let bits = if x.is_nan() {
        f32::NAN.to_bits()
    } else {
        x.to_bits()
    };
    let ordered = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    };
    u64::from(ordered) << 32 | u64::from(g)
}

fn from_f32_key(key: u64) -> (f64, u32) {
    let (ordered, g) = ((key >> 32) as u32, key as u32);
    let bits = if ordered >> 31 == 1 {
        ordered & !(1 << 31)
    } else {
        !ordered
    };
    (f64::from(f32::from_bits(bits)), g)
}

/// Column `k`'s entries of all pieces into `s.all`, in [`cmp_nan_last`] order.
fn sort_column(pieces: &[Piece], k: usize, s: &mut Scratch) {
    s.all.clear();
    if pieces.iter().all(|p| matches!(p.vals, Values::F32(_))) {
        s.keys.clear();
        for p in pieces {
            let Values::F32(v) = &p.vals else {
                unreachable!("checked")
            };
            let r = p.start[k]..p.start[k + 1];
            s.keys.extend(
                v[r.clone()]
                    .iter()
                    .zip(&p.groups[r])
                    .map(|(&x, &g)| f32_key(x, g)),
            );
        }
        s.keys.sort_unstable();
        s.all.extend(s.keys.iter().map(|&key| from_f32_key(key)));
    } else {
        for p in pieces {
            p.extend_into(k, &mut s.all);
        }
        s.all.sort_unstable_by(|a, b| cmp_nan_last(a.0, b.0));
    }
}

/// `(rank_sum, ties)` of column `k` of a band, one entry per group.
fn column(
    pieces: &[Piece],
    k: usize,
    sizes: &[u64],
    reference: Option<u32>,
    s: &mut Scratch,
) -> (Vec<f64>, Vec<f64>) {
    let n_labels = sizes.len();
    sort_column(pieces, k, s);
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
                s.zeros.extend((0..n_labels).map(|l| {
                    if in_pair(l as u32) {
                        sizes[l] - s.nnz[l]
                    } else {
                        0
                    }
                }));
                s.sums.clear();
                s.sums.resize(n_labels, 0.0);
                ties[g] = rank_column(&s.pair, &s.zeros, &mut s.sums);
                rank_sum[g] = s.sums[g];
            }
        }
    }
    (rank_sum, ties)
}

/// Rank sums and tie terms of every column. One pass over the rows: when
/// the entries exceed the budget, each block's entries are spilled to one
/// temp file per column band, and the bands are ranked one at a time.
pub fn rank_sums(ctx: &Ctx, view: &View, p: &RankParams) -> Result<RankSums> {
    let ncols = usize::try_from(view.ncols()).expect("fits");
    let nrows = usize::try_from(view.nrows()).expect("fits");
    oom_ensure!(
        p.labels.len() == nrows,
        Value,
        "labels have length {}, expected {nrows}",
        p.labels.len()
    );
    oom_ensure!(
        p.col_nnz.len() == ncols,
        Value,
        "col_nnz has length {}, expected {ncols}",
        p.col_nnz.len()
    );
    if let Some(&bad) = p
        .labels
        .iter()
        .find(|&&g| g != SKIP && g as usize >= p.n_labels)
    {
        crate::oom_bail!(Value, "group id {bad} >= n_groups {}", p.n_labels);
    }
    if let Some(r) = p.reference {
        oom_ensure!(
            (r as usize) < p.n_labels,
            Value,
            "reference {r} >= n_groups {}",
            p.n_labels
        );
    }
    let mut sizes = vec![0u64; p.n_labels];
    for &g in p.labels.iter().filter(|&&g| g != SKIP) {
        sizes[g as usize] += 1;
    }
    let mut out = RankSums {
        rank_sum: vec![0.0; p.n_labels * ncols],
        ties: vec![0.0; p.n_labels * ncols],
    };
    let bands = bands(&p.col_nnz, p.budget.max(1));
    let collect = |a: u64, block: Block| {
        Piece::collect(
            &block,
            usize::try_from(a).expect("fits"),
            &(0..ncols),
            &p.labels,
        )
    };
    if bands.len() <= 1 {
        let pieces = map_blocks(ctx, view, block_target(view), |a, _, block| {
            Ok(collect(a, block))
        })?;
        rank_band(&pieces, 0..ncols, &sizes, p, &mut out);
        return Ok(out);
    }
    let dir = spill_dir();
    let io = |e: std::io::Error| {
        OomError::io(&dir, format!("cannot use a temp file for the ranks: {e}"))
    };
    let mut files: Vec<BufWriter<File>> = bands
        .iter()
        .map(|_| spill_file().map(|f| BufWriter::with_capacity(1 << 20, f)))
        .collect::<Result<_>>()?;
    let (mut n_pieces, mut dtype) = (0usize, Dtype::F64);
    map_blocks_in_order(
        ctx,
        view,
        block_target(view),
        |a, _, block| Ok(collect(a, block)),
        |_, _, piece| {
            for (band, w) in bands.iter().zip(&mut files) {
                piece.write_band(band.clone(), w).map_err(io)?;
            }
            (n_pieces, dtype) = (n_pieces + 1, piece.vals.dtype());
            Ok(())
        },
    )?;
    for (band, w) in bands.into_iter().zip(files) {
        ctx.check()?;
        let mut file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        let pieces = (0..n_pieces)
            .map(|_| Piece::read_band(&mut r, band.len(), dtype))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(io)?;
        rank_band(&pieces, band, &sizes, p, &mut out);
    }
    Ok(out)
}

/// Rank the columns `band` (the pieces' columns, in order) into `out`.
fn rank_band(
    pieces: &[Piece],
    band: Range<usize>,
    sizes: &[u64],
    p: &RankParams,
    out: &mut RankSums,
) {
    let ncols = out.rank_sum.len() / p.n_labels.max(1);
    let cols: Vec<(Vec<f64>, Vec<f64>)> = (0..band.len())
        .into_par_iter()
        .map_init(Scratch::default, |s, k| {
            column(pieces, k, sizes, p.reference, s)
        })
        .collect();
    for (k, (sums, ties)) in cols.into_iter().enumerate() {
        let c = band.start + k;
        for g in 0..p.n_labels {
            out.rank_sum[g * ncols + c] = sums[g];
            out.ties[g * ncols + c] = ties[g];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scipy's average ranks of `x` and Σ(t³ − t), by brute force.
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
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    /// A dense `nrows × ncols` matrix with many zeros, ties and negatives.
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
        hdf5::File::create(&path)
            .expect("create")
            .new_dataset_builder()
            .with_data(&a)
            .create("X")
            .expect("write");
        let f = crate::storage::H5File::open(&path).expect("open");
        View::new(Arc::new(
            crate::storage::open_matrix(&f, "X").expect("matrix"),
        ))
    }

    fn check(reference: Option<u32>, budget: u64) {
        let (nrows, ncols, n_labels) = (57, 9, 4usize);
        let x = matrix(nrows, ncols, 7);
        let mut rng = Lcg(3);
        let labels: Vec<u32> = (0..nrows)
            .map(|_| {
                if rng.next() % 9 == 0 {
                    SKIP
                } else {
                    (rng.next() % 4) as u32
                }
            })
            .collect();
        let col_nnz = (0..ncols)
            .map(|c| (0..nrows).filter(|&r| x[r * ncols + c] != 0.0).count() as u64)
            .collect();
        let p = RankParams {
            labels: Arc::new(labels.clone()),
            n_labels,
            reference,
            col_nnz,
            budget,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let got = rank_sums(&Ctx::new(), &view_of(&dir, &x, nrows, ncols), &p).expect("rank sums");
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
                let want: f64 = set
                    .iter()
                    .zip(&ranks)
                    .filter(|(&r, _)| labels[r] == g as u32)
                    .map(|(_, k)| k)
                    .sum();
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
        let piece = |a: usize, b: usize| {
            Piece::collect(
                &view.read(a as u64, b as u64).expect("read"),
                a,
                &band,
                &labels,
            )
        };
        let one = [piece(0, nrows)];
        let split = [piece(0, 13), piece(13, 14), piece(14, nrows)];
        let sizes = [14, 13, 13];
        for reference in [None, Some(1)] {
            for k in 0..ncols {
                let mut s = Scratch::default();
                assert_eq!(
                    column(&one, k, &sizes, reference, &mut s),
                    column(&split, k, &sizes, reference, &mut s)
                );
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
    fn f32_keys_sort_as_floats_and_round_trip() {
        let xs = [
            f32::NEG_INFINITY,
            -3.5,
            -1e-30,
            1e-30,
            2.0,
            2.0,
            f32::INFINITY,
            f32::NAN,
            -f32::NAN,
        ];
        let mut keys: Vec<u64> = xs
            .iter()
            .rev()
            .enumerate()
            .map(|(g, &x)| f32_key(x, g as u32))
            .collect();
        keys.sort_unstable();
        let back: Vec<(f64, u32)> = keys.iter().map(|&k| from_f32_key(k)).collect();
        let mut want: Vec<f64> = xs.iter().map(|&x| f64::from(x)).collect();
        want.sort_unstable_by(|a, b| cmp_nan_last(*a, *b));
        for ((got, _), want) in back.iter().zip(&want) {
            assert!(
                got == want || (got.is_nan() && want.is_nan()),
                "{got} vs {want}"
            );
        }
        assert_eq!(from_f32_key(f32_key(-3.5, 7)), (-3.5, 7));
    }

    #[test]
    fn bands_respect_the_budget() {
        assert_eq!(bands(&[3, 3, 3, 10, 1], 6), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(bands(&[], 6), Vec::<Range<usize>>::new());
    }
}
