"""Example data sets.

``pbmc3k()`` returns the path of a local ``.h5ad`` with the 10x Genomics
PBMC 3k raw counts (2,700 cells x 32,738 genes, CSR float32).

The counts come from the ``desc==2.1.1`` wheel on PyPI, which ships
``desc/datasets/pbmc.h5ad`` in the old (pre-0.7) h5ad layout.  Recent pip
(>= 24.1) refuses that wheel's metadata, so the wheel is fetched with an
older pip inside a throwaway virtual environment, the single file is
extracted, read with anndata and rewritten in the current h5ad layout.

This module only depends on the standard library, numpy, scipy and anndata
(it does not import the compiled extension), so it can be loaded by file
path before the package is built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path

__all__ = ["pbmc3k", "default_cache_dir"]

_DESC_SPEC = "desc==2.1.1"
_DESC_MEMBER = "desc/datasets/pbmc.h5ad"
_PBMC3K_FILE = "pbmc3k_raw.h5ad"
_PBMC3K_SHAPE = (2700, 32738)


def default_cache_dir() -> Path:
    """``$ANNDATAOOM_DATA`` if set, else ``~/.cache/anndataoom``."""
    env = os.environ.get("ANNDATAOOM_DATA")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/anndataoom").expanduser()


def pbmc3k(cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the PBMC 3k raw-count ``.h5ad``, downloading it if needed.

    Parameters
    ----------
    cache_dir
        Directory holding the cached file.  Defaults to ``$ANNDATAOOM_DATA``
        or ``~/.cache/anndataoom``.

    Returns
    -------
    pathlib.Path
        ``<cache_dir>/pbmc3k_raw.h5ad``: 2,700 x 32,738, ``X`` CSR float32
        holding integer UMI counts, ``obs_names`` = cell barcodes,
        ``var_names`` = gene symbols, ``var['gene_ids']`` = Ensembl ids.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cache / _PBMC3K_FILE
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="anndataoom-pbmc3k-") as tmp:
        tmp = Path(tmp)
        wheel = _download_desc_wheel(tmp)
        src = tmp / "pbmc_old.h5ad"
        try:
            with (
                zipfile.ZipFile(wheel) as zf,
                zf.open(_DESC_MEMBER) as fin,
                open(src, "wb") as fout,
            ):
                shutil.copyfileobj(fin, fout, 1 << 20)
        except (KeyError, zipfile.BadZipFile) as e:
            raise RuntimeError(f"could not extract {_DESC_MEMBER} from {wheel.name}: {e}") from e
        adata = _convert(src)

    # temp name in the same directory (so os.replace is atomic); created by
    # HDF5 itself so the final file gets the usual umask-based permissions
    tmp_name = cache / f".{_PBMC3K_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        adata.write_h5ad(tmp_name)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    return target


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit code {proc.returncode}).\n"
            f"command: {' '.join(cmd)}\n--- output ---\n{proc.stdout}"
        )


def _download_desc_wheel(tmp: Path) -> Path:
    """Download the desc wheel with pip<24.1 from a throwaway venv."""
    venv_dir = tmp / "venv"
    dl_dir = tmp / "dl"
    dl_dir.mkdir()
    _run([sys.executable, "-m", "venv", str(venv_dir)], "creating a throwaway virtualenv")
    if os.name == "nt":
        py = venv_dir / "Scripts" / "python.exe"
    else:
        py = venv_dir / "bin" / "python"
    if not py.exists():
        raise RuntimeError(f"virtualenv created at {venv_dir} has no interpreter at {py}")
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(pip + ["install", "--quiet", "pip<24.1"],
         "installing pip<24.1 in the throwaway virtualenv")
    _run(pip + ["download", "--no-deps", "--only-binary=:all:", _DESC_SPEC, "-d", str(dl_dir)],
         f"downloading the {_DESC_SPEC} wheel")
    wheels = sorted(dl_dir.glob("desc-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download of {_DESC_SPEC} produced no wheel in {dl_dir}: "
                           f"{[p.name for p in dl_dir.iterdir()]}")
    return wheels[0]


def _convert(src: Path):
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    adata = ad.read_h5ad(src)
    X = adata.X
    if not sp.issparse(X):
        X = sp.csr_matrix(np.asarray(X))
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sum_duplicates()
    X.sort_indices()
    X.eliminate_zeros()
    if X.shape != _PBMC3K_SHAPE:
        raise RuntimeError(f"unexpected PBMC 3k shape {X.shape}, expected {_PBMC3K_SHAPE}")

    obs = adata.obs.copy()
    var = adata.var.copy()
    obs.index = obs.index.astype(str)
    var.index = var.index.astype(str)
    obs.index.name = None
    var.index.name = None
    out = ad.AnnData(X=X, obs=obs, var=var)
    out.var_names_make_unique()
    return out
