//! Small `.h5ad`-shaped files written with the hdf5 crate, with their
//! expected dense contents.

use std::path::Path;

use hdf5::types::VarLenUnicode;

/// A deterministic sparse matrix: `nrows` × `ncols`, about a third filled,
/// with row 1 and column 2 empty.
pub fn dense_matrix(nrows: usize, ncols: usize) -> Vec<Vec<f64>> {
    (0..nrows)
        .map(|r| {
            (0..ncols)
                .map(|c| {
                    let v = ((r * 7 + c * 13) % 11) as f64;
                    if r == 1 || c == 2 || (r + c) % 3 != 0 {
                        0.0
                    } else {
                        v + 1.0
                    }
                })
                .collect()
        })
        .collect()
}

pub struct Opts {
    pub csc: bool,
    pub gzip: bool,
    pub chunk: usize,
    pub indptr64: bool,
}

fn set_str(loc: &hdf5::Location, name: &str, value: &str) {
    let v: VarLenUnicode = value.parse().unwrap();
    loc.new_attr::<VarLenUnicode>()
        .create(name)
        .unwrap()
        .write_scalar(&v)
        .unwrap();
}

fn write_1d<T: hdf5::H5Type>(g: &hdf5::Group, name: &str, data: &[T], o: &Opts) {
    let mut b = g.new_dataset_builder();
    if o.gzip && !data.is_empty() {
        b = b.chunk(o.chunk.min(data.len())).shuffle().deflate(4);
    }
    b.with_data(data).create(name).unwrap();
}

/// Write `m` as a sparse AnnData `X` (plus empty obs/var groups).
pub fn write_sparse(path: &Path, m: &[Vec<f64>], o: &Opts) {
    let nrows = m.len();
    let ncols = m.first().map_or(0, Vec::len);
    let (outer, inner) = if o.csc {
        (ncols, nrows)
    } else {
        (nrows, ncols)
    };
    let mut indptr = vec![0i64];
    let mut indices = Vec::new();
    let mut data = Vec::new();
    // (outer, inner) index `m` as (row, column) or, for CSC, transposed.
    #[allow(clippy::needless_range_loop)]
    for i in 0..outer {
        for j in 0..inner {
            let v = if o.csc { m[j][i] } else { m[i][j] };
            if v != 0.0 {
                indices.push(j as i32);
                data.push(v as f32);
            }
        }
        indptr.push(indices.len() as i64);
    }
    let f = hdf5::File::create(path).unwrap();
    f.create_group("obs").unwrap();
    f.create_group("var").unwrap();
    let g = f.create_group("X").unwrap();
    set_str(
        &g,
        "encoding-type",
        if o.csc { "csc_matrix" } else { "csr_matrix" },
    );
    set_str(&g, "encoding-version", "0.1.0");
    g.new_attr_builder()
        .with_data(&[nrows as i64, ncols as i64])
        .create("shape")
        .unwrap();
    write_1d(&g, "data", &data, o);
    write_1d(&g, "indices", &indices, o);
    if o.indptr64 {
        write_1d(&g, "indptr", &indptr, o);
    } else {
        let p32: Vec<i32> = indptr.iter().map(|&p| p as i32).collect();
        write_1d(&g, "indptr", &p32, o);
    }
}

/// Write `m` as a dense `X`, chunked (`chunk` × `chunk`) and gzipped if asked.
pub fn write_dense(path: &Path, m: &[Vec<f64>], o: &Opts) {
    let nrows = m.len();
    let ncols = m.first().map_or(0, Vec::len);
    let flat: Vec<f64> = m.iter().flatten().copied().collect();
    let arr = ndarray::Array2::from_shape_vec((nrows, ncols), flat).unwrap();
    let f = hdf5::File::create(path).unwrap();
    f.create_group("obs").unwrap();
    f.create_group("var").unwrap();
    let mut b = f.new_dataset_builder();
    if o.gzip {
        b = b.chunk((o.chunk, o.chunk)).deflate(4);
    }
    b.with_data(&arr).create("X").unwrap();
}

/// Write raw CSR parts as given (for malformed-structure tests).
pub fn write_raw_csr(
    path: &Path,
    shape: (i64, i64),
    indptr: &[i64],
    indices: &[i32],
    data: &[f32],
) {
    let f = hdf5::File::create(path).unwrap();
    let g = f.create_group("X").unwrap();
    set_str(&g, "encoding-type", "csr_matrix");
    g.new_attr_builder()
        .with_data(&[shape.0, shape.1])
        .create("shape")
        .unwrap();
    g.new_dataset_builder()
        .with_data(data)
        .create("data")
        .unwrap();
    g.new_dataset_builder()
        .with_data(indices)
        .create("indices")
        .unwrap();
    g.new_dataset_builder()
        .with_data(indptr)
        .create("indptr")
        .unwrap();
}
