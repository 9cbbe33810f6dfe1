"""The ``anndataoom`` command line: info, convert, run (end to end on PBMC 3k)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from anndataoom.cli.__main__ import main

PNGS = ("qc_violin.png", "qc_scatter.png", "pca_variance_ratio.png", "umap_leiden.png",
        "marker_genes.png")


def _read_plain(path) -> ad.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


def _script() -> str:
    exe = Path(sys.executable).parent / "anndataoom"
    if not exe.exists():
        pytest.skip("the anndataoom console script is not installed next to this python")
    return str(exe)


def test_console_script_help_and_info(make_h5ad):
    path, _ = make_h5ad(n_obs=40, n_vars=30)
    exe = _script()
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for cmd in ("info", "run", "convert"):
        assert cmd in r.stdout
    r = subprocess.run([exe, "info", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "40 cells × 30 genes" in r.stdout


def test_info(make_h5ad, capsys):
    path, mem = make_h5ad(n_obs=50, n_vars=20, fmt="csc", compression="gzip")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "50 cells × 20 genes" in out
    assert "csc_matrix" in out
    assert "gzip" in out
    for col in mem.obs.columns:
        assert col in out


@pytest.mark.parametrize("argv", [["info", "/no/such/file.h5ad"],
                                  ["convert", "/no/such/file.h5ad", "x.h5ad"]])
def test_errors_exit_1(argv, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("anndataoom: error:") and "/no/such/file.h5ad" in err


def test_convert(make_h5ad, tmp_path, capsys):
    path, mem = make_h5ad(n_obs=60, n_vars=25, fmt="csc")
    out = tmp_path / "conv" / "out.h5ad"
    out.parent.mkdir()
    assert main(["convert", str(path), str(out), "--compression", "gzip"]) == 0
    back = _read_plain(out)
    assert sp.issparse(back.X)
    np.testing.assert_array_equal(back.X.toarray(), mem.X.toarray())
    assert list(back.obs_names) == list(mem.obs_names)
    assert os.listdir(out.parent) == ["out.h5ad"]
    assert main(["convert", str(path), str(tmp_path / "out.txt")]) == 1
    assert ".h5ad file or a .zarr store" in capsys.readouterr().err


def test_commands_write_back_nullable_string_columns(make_h5ad, tmp_path):
    """anndata reads them but will not write them by default; a command that read one
    must not fail at its end (run: after the whole pipeline)."""
    import pandas as pd

    path, mem = make_h5ad(n_obs=120, n_vars=200, density=0.2, seed=8)
    mem.obs["barcode"] = pd.array([f"b{i}" for i in range(mem.n_obs)], dtype="string")
    src = tmp_path / "nullable.h5ad"
    with ad.settings.override(allow_write_nullable_strings=True):
        mem.write_h5ad(src)
    with pytest.raises(RuntimeError, match="allow_write_nullable_strings"):
        _read_plain(src).write_h5ad(tmp_path / "anndata_refuses.h5ad")
    conv, out = tmp_path / "conv.h5ad", tmp_path / "run.h5ad"
    assert main(["convert", str(src), str(conv)]) == 0
    assert main(["run", str(src), "-o", str(out), "--min-genes", "1", "--min-cells", "1",
                 "--n-top-genes", "50", "--n-comps", "5", "--no-neighbors", "--no-plots"]) == 0
    for p in (conv, out):
        back = _read_plain(p).obs["barcode"]
        assert back.dtype == "string"
        pd.testing.assert_series_equal(back, mem.obs["barcode"][back.index], check_names=False)
    assert not ad.settings.allow_write_nullable_strings  # the setting is the user's again


def _check_output(out: Path, n_hvg: int, n_comps: int, *, umap: bool = True) -> ad.AnnData:
    r = _read_plain(out)
    assert r.n_vars == n_hvg
    assert r.var["highly_variable"].all()
    for k in ("total_counts", "n_genes_by_counts", "pct_counts_mt"):
        assert k in r.obs
    assert r.obsm["X_pca"].shape == (r.n_obs, n_comps)
    assert r.varm["PCs"].shape == (n_hvg, n_comps)
    vr = np.asarray(r.uns["pca"]["variance_ratio"])
    assert vr.shape == (n_comps,) and np.all(np.diff(vr) <= 1e-12)
    assert "counts" in r.layers and sp.issparse(r.layers["counts"])
    assert r.raw is not None and r.raw.n_vars > n_hvg
    assert "connectivities" in r.obsp
    if umap:
        assert r.obsm["X_umap"].shape == (r.n_obs, 2)
        assert r.obs["leiden"].nunique() > 1
    # scaled (zero mean before clipping at max_value)
    X = np.asarray(r.X)
    assert X.max() <= 10 + 1e-5 and X.min() < 0
    return r


def test_run_pbmc3k_readme_command(tmp_path, capsys, pbmc3k_path):
    """The README's main command: ``anndataoom run pbmc3k -o results/pbmc3k.h5ad``."""
    import matplotlib.image as mpimg
    import scanpy as sc

    out = tmp_path / "results" / "pbmc3k.h5ad"
    before = sorted(os.listdir(os.path.dirname(pbmc3k_path)))
    assert main(["run", "pbmc3k", "-o", str(out), "--max-pct-mt", "5"]) == 0
    text = capsys.readouterr()
    assert text.err == ""  # stderr is not a terminal: no progress bars
    # the cells kept are those scanpy keeps in memory
    mem = _read_plain(pbmc3k_path)
    mem.var["mt"] = mem.var_names.str.startswith("MT-")
    sc.pp.calculate_qc_metrics(mem, qc_vars=["mt"], percent_top=None, inplace=True)
    sc.pp.filter_cells(mem, min_genes=200)
    sc.pp.filter_genes(mem, min_cells=3)
    mem = mem[mem.obs["pct_counts_mt"] <= 5]
    r = _check_output(out, 2000, 50)
    assert list(r.obs_names) == list(mem.obs_names)
    assert r.raw.n_vars == mem.n_vars
    for row in ("cells kept", f"{mem.n_obs:,} of 2,700", "highly variable genes", "PCs",
                "leiden clusters", "markers of 0 (wilcoxon)", "time: pca", "time: markers",
                "time: total", "peak memory (RSS)"):
        assert row in text.out
    # the marker genes are scanpy's on the same clusters and the same raw (log-normalised) data
    rgg = r.uns["rank_genes_groups"]
    ref = r.copy()
    sc.tl.rank_genes_groups(ref, "leiden", method="wilcoxon", use_raw=True)
    for g in rgg["names"].dtype.names:
        np.testing.assert_array_equal(rgg["names"][g][:20], ref.uns["rank_genes_groups"]["names"][g][:20])
    plots = out.parent / "pbmc3k_plots"
    for name in PNGS:
        assert f"plot: {plots / name}" in text.out
        img = mpimg.imread(plots / name)
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
        assert img[..., :3].std() > 0.05  # not blank
    assert sorted(os.listdir(out.parent)) == ["pbmc3k.h5ad", "pbmc3k_plots"]
    assert sorted(os.listdir(os.path.dirname(pbmc3k_path))) == before  # no sidecars


def test_run_options_small(make_h5ad, tmp_path, capsys):
    path, _ = make_h5ad("in.h5ad", n_obs=300, n_vars=400, density=0.2, seed=7)
    listing = sorted(os.listdir(path.parent))
    out = tmp_path / "o" / "res.h5ad"
    argv = ["run", str(path), "-o", str(out), "--min-genes", "5", "--min-cells", "2",
            "--max-pct-mt", "50", "--target-sum", "1000", "--n-top-genes", "100",
            "--flavor", "seurat_v3", "--batch-key", "batch", "--n-comps", "12",
            "--no-umap", "--no-leiden", "--plots", str(tmp_path / "pl"), "--progress", "always"]
    assert main(argv) == 0
    text = capsys.readouterr()
    assert " rows" in text.err  # forced progress bars are drawn on stderr
    r = _check_output(out, 100, 12, umap=False)
    assert "X_umap" not in r.obsm and "leiden" not in r.obs
    assert r.uns["hvg"]["flavor"] == "seurat_v3"
    assert "highly_variable_nbatches" in r.var
    pngs = sorted(p.name for p in (tmp_path / "pl").iterdir())
    assert pngs == ["pca_variance_ratio.png", "qc_scatter.png", "qc_violin.png"]
    assert sorted(os.listdir(path.parent)) == listing + ["o", "pl"]


def test_run_with_at_most_50_genes_uses_the_pca(make_h5ad, tmp_path, capsys):
    """scanpy's rule (≤ 50 variables: the graph on X) must not make the run load X."""
    path, _ = make_h5ad("in.h5ad", n_obs=300, n_vars=400, density=0.2, seed=7)
    out = tmp_path / "res.h5ad"
    assert main(["run", str(path), "-o", str(out), "--min-genes", "5", "--n-top-genes", "30",
                 "--n-comps", "10", "--no-plots"]) == 0
    r = _check_output(out, 30, 10)
    assert r.uns["neighbors"]["params"]["use_rep"] == "X_pca"
    capsys.readouterr()


def test_run_no_neighbors_no_plots(make_h5ad, tmp_path, capsys):
    path, _ = make_h5ad(n_obs=120, n_vars=200, density=0.2, seed=8)
    out = tmp_path / "r.h5ad"
    assert main(["run", str(path), "-o", str(out), "--min-genes", "1", "--min-cells", "1",
                 "--n-top-genes", "50", "--n-comps", "5", "--no-neighbors", "--no-plots"]) == 0
    r = _read_plain(out)
    assert "connectivities" not in r.obsp and r.obsm["X_pca"].shape[1] == 5
    assert not (tmp_path / "r_plots").exists()


def test_run_everything_filtered_is_an_error(make_h5ad, tmp_path, capsys):
    path, _ = make_h5ad(n_obs=50, n_vars=30, density=0.1)
    assert main(["run", str(path), "-o", str(tmp_path / "x.h5ad"),
                 "--min-genes", "10000"]) == 1
    assert "pass the filters" in capsys.readouterr().err
    assert not (tmp_path / "x.h5ad").exists()


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--target-sum", "-1", "must be > 0"), ("--n-top-genes", "1", "must be ≥ 2"),
    ("--n-comps", "ten", "not a number"), ("--n-neighbors", "1", "must be ≥ 2"),
    ("--resolution", "0", "must be > 0"), ("--min-genes", "-3", "must be ≥ 0"),
    ("--max-value", "nan", "must be > 0")])
def test_run_refuses_bad_numbers_at_the_command_line(make_h5ad, tmp_path, capsys, option,
                                                     value, says):
    path, _ = make_h5ad(n_obs=50, n_vars=30, density=0.1)
    with pytest.raises(SystemExit) as e:
        main(["run", str(path), "-o", str(tmp_path / "x.h5ad"), option, value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {says}" in err
    assert not (tmp_path / "x.h5ad").exists()


@pytest.mark.parametrize(("args", "says"), [
    (["-o", "{d}/x.zarr"], "run writes an .h5ad file"),  # was an HDF5 file named x.zarr
    (["-o", "{d}/x"], "run writes an .h5ad file"),
    (["-o", "{d}/x.h5ad", "--plots", "{d}/plotfile"], "--plots needs a directory")])
def test_run_refuses_bad_outputs_before_any_work(make_h5ad, tmp_path, capsys, args, says):
    path, _ = make_h5ad(n_obs=50, n_vars=30, density=0.1)
    (tmp_path / "plotfile").write_text("keep")
    args = [a.format(d=tmp_path) for a in args]
    assert main(["run", str(path), *args]) == 1
    captured = capsys.readouterr()
    assert says in captured.err and captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, "plotfile"])
    assert (tmp_path / "plotfile").read_text() == "keep"


def test_convert_refuses_zero_shards(make_h5ad, tmp_path, capsys):
    path, _ = make_h5ad(n_obs=20, n_vars=10)
    with pytest.raises(SystemExit):
        main(["convert", str(path), str(tmp_path / "x.zarr"), "--zarr-format", "3",
              "--shards", "0"])
    assert "argument --shards: must be ≥ 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()


def test_cellranger_options(tmp_path, capsys):
    """--genome picks a genome of a v2 .h5, --prefix reads a prefixed mtx folder."""
    import shutil

    import scanpy as sc

    data = Path(__file__).parent.parent / "data" / "10x"
    multi = data / "1.2.0" / "multiple_genomes.h5"
    assert main(["convert", str(multi), str(tmp_path / "x.h5ad")]) == 1
    assert "more than one genome" in capsys.readouterr().err
    assert main(["convert", str(multi), str(tmp_path / "x.h5ad"), "--genome", "hg19_chr21"]) == 0
    want = sc.read_10x_h5(multi, genome="hg19_chr21")
    got = _read_plain(tmp_path / "x.h5ad")
    assert got.shape == want.shape and list(got.var_names) == list(want.var_names)
    assert main(["info", str(multi), "--genome", "hg19_chr21"]) == 0
    assert f"{want.n_obs:,} cells × {want.n_vars:,} genes" in capsys.readouterr().out
    folder = tmp_path / "star"
    folder.mkdir()
    for name in ("matrix.mtx", "features.tsv", "barcodes.tsv"):
        shutil.copy(data / "3.0.0" / "filtered_feature_bc_matrix" / f"{name}.gz",
                    folder / f"p_{name}.gz")
    assert main(["convert", str(folder), str(tmp_path / "m.h5ad"), "--prefix", "p_",
                 "--all-features"]) == 0
    want = sc.read_10x_mtx(folder, prefix="p_", gex_only=False)
    got = _read_plain(tmp_path / "m.h5ad")
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.X.toarray(), want.X.toarray())


def test_run_unknown_batch_key_names_the_column(make_h5ad, tmp_path, capsys):
    path, _ = make_h5ad(n_obs=50, n_vars=30, density=0.3)
    assert main(["run", str(path), "-o", str(tmp_path / "x.h5ad"), "--min-genes", "0",
                 "--min-cells", "0", "--batch-key", "donor", "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert "anndataoom: error: batch_key='donor' is not a column of adata.obs" in err
    assert not (tmp_path / "x.h5ad").exists()


@pytest.mark.parametrize("flavor", ["seurat", "cell_ranger", "pearson_residuals"])
def test_run_hvg_flavors(make_h5ad, tmp_path, capsys, flavor):
    path, _ = make_h5ad(n_obs=200, n_vars=300, density=0.25, seed=9)
    out = tmp_path / "f.h5ad"
    assert main(["run", str(path), "-o", str(out), "--min-genes", "1", "--min-cells", "1",
                 "--n-top-genes", "60", "--n-comps", "8", "--flavor", flavor,
                 "--no-neighbors", "--no-plots"]) == 0, capsys.readouterr().err
    r = _read_plain(out)
    # seurat/cell_ranger keep ties at the cut-off, as scanpy does
    assert 60 <= r.n_vars <= 62 and r.obsm["X_pca"].shape == (r.n_obs, 8)
    assert r.uns["hvg"]["flavor"] == flavor


@pytest.mark.parametrize("dist", ["normal", "skewed", "with_nan"])
def test_plot_density_matches_scipy_kde(dist):
    from scipy.stats import gaussian_kde

    from anndataoom.cli._plots import density

    rng = np.random.default_rng(3)
    v = rng.normal(5, 2, 20_000) if dist == "normal" else rng.lognormal(0, 0.8, 20_000)
    if dist == "with_nan":
        v[::7] = np.nan
    grid, dens = density(v)
    ref = gaussian_kde(v[np.isfinite(v)])(grid)
    assert np.abs(dens - ref).max() < 0.01 * ref.max()
    assert density(np.full(10, np.nan))[0].size == 0
    g, d = density(np.full(10, 3.0))  # no spread: a finite spike, no division by zero
    assert np.isfinite(d).all() and g[np.argmax(d)] == pytest.approx(3.0, abs=1e-2)


def test_plots_of_many_cells_are_binned(tmp_path, monkeypatch):
    import pandas as pd

    from anndataoom.cli import _plots

    monkeypatch.setattr(_plots, "SCATTER_MAX_POINTS", 100)
    monkeypatch.setattr(_plots, "STRIP_POINTS", 50)
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"n_genes_by_counts": rng.poisson(700, 500),
                        "total_counts": rng.poisson(2000, 500).astype(float),
                        "pct_counts_mt": rng.uniform(0, 5, 500)},
                       index=pd.RangeIndex(500).astype(str))
    written = _plots.write_all(ad.AnnData(obs=obs), tmp_path, thresholds={"total_counts": (1900, None)})
    assert [p.name for p in written] == ["qc_violin.png", "qc_scatter.png"]
    assert all(p.stat().st_size > 0 for p in written)
