"""open_any / input_kind (the dispatch the CLI uses) and the CLI on 10x, MTX and loom inputs."""

from __future__ import annotations

from pathlib import Path

import anndata
import numpy as np
import pytest
import scanpy as sc

from anndataoom.cli.__main__ import main
from anndataoom.io._any import input_kind, open_any

DATA = Path(__file__).parent.parent / "data" / "10x"
H5 = DATA / "3.0.0" / "filtered_feature_bc_matrix.h5"
FOLDER = DATA / "3.0.0" / "filtered_feature_bc_matrix"


def test_kinds(tmp_path):
    ref = sc.read_10x_h5(H5)
    ref.write_h5ad(tmp_path / "a.h5ad")
    assert input_kind(tmp_path / "a.h5ad") == "h5ad"
    assert input_kind(H5) == "10x"
    assert input_kind(DATA / "1.2.0" / "filtered_gene_bc_matrices_h5.h5") == "10x"
    assert input_kind(FOLDER) == "mtx-folder"
    assert input_kind(FOLDER / "matrix.mtx.gz") == "mtx"
    assert input_kind(tmp_path / "x.loom") == "loom"
    ref.write_zarr(tmp_path / "a.zarr")
    assert input_kind(tmp_path / "a.zarr") == "zarr"
    for p in (H5, FOLDER, tmp_path / "a.h5ad", tmp_path / "a.zarr"):
        a = open_any(p)
        assert a.shape == ref.shape
        np.testing.assert_array_equal(a.X.toarray(), ref.X.toarray())
        a.close()


@pytest.mark.parametrize("src", [H5, FOLDER], ids=["h5", "mtx"])
def test_cli_convert_and_info(tmp_path, capsys, src):
    out = tmp_path / "out.h5ad"
    assert main(["convert", str(src), str(out)]) == 0
    got = anndata.read_h5ad(out)
    ref = sc.read_10x_h5(H5)
    assert (got.X != ref.X).nnz == 0
    assert list(got.obs_names) == list(ref.obs_names)
    assert main(["info", str(src)]) == 0
    assert "1,107 cells × 507 genes" in capsys.readouterr().out
