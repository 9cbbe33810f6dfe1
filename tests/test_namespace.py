"""``import anndataoom as oom`` alone gives every sub-package, as ``import scanpy as sc`` does."""

from __future__ import annotations

import subprocess
import sys


def test_subpackages_are_there_after_the_top_import():
    code = ("import anndataoom as oom\n"
            "for f in (oom.datasets.pbmc3k, oom.pp.pca, oom.tl.leiden, oom.get.aggregate, "
            "oom.pl.highest_expr_genes, oom.io.write_zarr,\n"
            "          oom.experimental.pp.recipe_pearson_residuals):\n"
            "    assert callable(f), f\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
