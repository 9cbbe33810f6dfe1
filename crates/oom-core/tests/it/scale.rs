//! More than 2^31 stored entries without a 16 GB fixture: `data` and
//! `indices` are chunked datasets longer than 2^31 of which only the chunks
//! holding real entries are written (the rest read as the fill value 0),
//! with an int64 `indptr`. Row 0 spans the unwritten gap; rows 1.. sit past
//! 2^31 and must read back exactly, through 64-bit offsets everywhere.

use oom_core::Ctx;
use std::sync::Arc;

use hdf5::types::VarLenUnicode;
use oom_core::block::Block;
use oom_core::kernels::sums::axis_sums;
use oom_core::plan::View;
use oom_core::storage::{open_matrix, H5File};

const GAP: u64 = (1 << 31) + 12_345;
const CHUNK: usize = 1 << 16;

/// Tail rows: (columns, values) per row; row 2 is empty.
fn tail() -> Vec<(Vec<i32>, Vec<f32>)> {
    (0..6u32)
        .map(|k| {
            if k == 2 {
                return (vec![], vec![]);
            }
            let cols: Vec<i32> = (0..10).filter(|c| (c * 3 + k as i32) % 4 != 0).collect();
            let vals = cols
                .iter()
                .map(|&c| (c as f32) + 10.0 * k as f32 + 1.0)
                .collect();
            (cols, vals)
        })
        .collect()
}

/// The stored rows past the gap: (column indices, values) per row.
type Rows = Vec<(Vec<i32>, Vec<f32>)>;

fn write_big(path: &std::path::Path) -> (u64, Rows) {
    let rows = tail();
    let tail_nnz: usize = rows.iter().map(|(c, _)| c.len()).sum();
    let total = GAP + tail_nnz as u64;
    let mut indptr = vec![0i64, GAP as i64];
    for (c, _) in &rows {
        indptr.push(indptr.last().unwrap() + c.len() as i64);
    }
    let f = hdf5::File::create(path).unwrap();
    f.create_group("obs").unwrap();
    f.create_group("var").unwrap();
    let g = f.create_group("X").unwrap();
    let enc: VarLenUnicode = "csr_matrix".parse().unwrap();
    g.new_attr::<VarLenUnicode>()
        .create("encoding-type")
        .unwrap()
        .write_scalar(&enc)
        .unwrap();
    g.new_attr_builder()
        .with_data(&[(rows.len() + 1) as i64, 10])
        .create("shape")
        .unwrap();
    let len = usize::try_from(total).unwrap() + 1000;
    let data = g
        .new_dataset::<f32>()
        .chunk(CHUNK)
        .deflate(1)
        .shape(len)
        .create("data")
        .unwrap();
    let indices = g
        .new_dataset::<i32>()
        .chunk(CHUNK)
        .deflate(1)
        .shape(len)
        .create("indices")
        .unwrap();
    let (a, b) = (GAP as usize, total as usize);
    let vals: Vec<f32> = rows.iter().flat_map(|(_, v)| v.clone()).collect();
    let cols: Vec<i32> = rows.iter().flat_map(|(c, _)| c.clone()).collect();
    data.write_slice(&vals, a..b).unwrap();
    indices.write_slice(&cols, a..b).unwrap();
    g.new_dataset_builder()
        .with_data(&indptr)
        .create("indptr")
        .unwrap();
    (total, rows)
}

fn dense_of(b: &Block) -> Vec<Vec<f64>> {
    let mut out = vec![vec![0.0; b.ncols()]; b.nrows()];
    for (r, row) in out.iter_mut().enumerate() {
        b.for_row(r, |c, v| row[c] += v);
    }
    out
}

fn expected_row(rows: &[(Vec<i32>, Vec<f32>)], k: usize) -> Vec<f64> {
    let mut out = vec![0.0; 10];
    for (&c, &v) in rows[k].0.iter().zip(&rows[k].1) {
        out[c as usize] = f64::from(v);
    }
    out
}

#[test]
fn rows_past_2_pow_31_read_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.h5ad");
    let (total, rows) = write_big(&path);
    assert!(
        std::fs::metadata(&path).unwrap().len() < 1 << 20,
        "the fixture stays small"
    );
    let f = H5File::open(&path).unwrap();
    let m = Arc::new(open_matrix(&f, "X").unwrap());
    assert_eq!(m.stored_nnz(), Some(total));
    assert!(total > 1 << 31);
    let v = View::new(Arc::clone(&m));
    // A contiguous range past the gap.
    let got = dense_of(&v.read(1, 7).unwrap());
    assert_eq!(got.len(), 6);
    for (k, row) in got.iter().enumerate() {
        assert_eq!(*row, expected_row(&rows, k), "row {}", k + 1);
    }
    // A scrambled gather with repeats, and a column subset.
    let order = [6u64, 3, 1, 6, 2];
    let sub = v.subset(Some(&order), Some(&[9, 0, 4])).unwrap();
    let got = dense_of(&sub.read(0, 5).unwrap());
    for (i, &r) in order.iter().enumerate() {
        let e = expected_row(&rows, usize::try_from(r - 1).unwrap());
        assert_eq!(got[i], vec![e[9], e[0], e[4]]);
    }
    // Row and column sums of the rows past the gap.
    let tail_view = v.subset(Some(&[1, 2, 3, 4, 5, 6]), None).unwrap();
    let s = axis_sums(&Ctx::new(), &tail_view).unwrap();
    for k in 0..6 {
        assert_eq!(s.row_sum[k], expected_row(&rows, k).iter().sum::<f64>());
    }
    for c in 0..10 {
        assert_eq!(
            s.col_sum[c],
            (0..6).map(|k| expected_row(&rows, k)[c]).sum::<f64>()
        );
    }
    // Blocks never split the one huge row.
    assert_eq!(v.blocks(1 << 22).unwrap()[0], (0, 1));
}
