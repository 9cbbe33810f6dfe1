"""Zarr stores written by anndata itself, in each format and codec."""

from __future__ import annotations

import anndata as ad
import numpy as np
import scipy.sparse as sp

#: (zarr_format, codec, sharded): what anndata ≥ 0.12 writes by default
#: (v2 blosc, v3 zstd), gzip, and v3 sharded arrays.
STORE_KINDS = [(2, "default", False), (2, "gzip", False), (3, "default", False),
               (3, "gzip", False), (3, "default", True)]


def _codec_kwargs(fmt: int, codec: str, sharded: bool) -> dict:
    kw: dict = {}
    if codec == "gzip":
        import numcodecs
        import zarr.codecs

        kw["compressors"] = numcodecs.GZip(5) if fmt == 2 else zarr.codecs.GzipCodec(level=5)
    if sharded:
        kw["chunks"] = (256,)
        kw["shards"] = (1024,)
    return kw


def write_store(mem: ad.AnnData, path, fmt: int, codec: str = "default", sharded: bool = False):
    """Write ``mem`` with anndata's own zarr writer, element by element for codec options."""
    from anndata.io import write_elem

    import zarr

    with ad.settings.override(zarr_write_format=fmt, auto_shard_zarr_v3=False):
        if codec == "default" and not sharded:
            mem.write_zarr(path)
            return path
        kw = _codec_kwargs(fmt, codec, sharded)
        g = zarr.open_group(path, mode="w", zarr_format=fmt)
        g.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
        for k in ("obs", "var", "obsm", "varm", "obsp", "varp", "uns"):
            write_elem(g, k, dict(getattr(mem, k)) if k not in ("obs", "var") else getattr(mem, k))
        x_kw = dict(kw)
        if sharded and not sp.issparse(mem.X):
            x_kw.update(chunks=(64, mem.n_vars), shards=(256, mem.n_vars))
        write_elem(g, "X", mem.X, dataset_kwargs=x_kw)
        write_elem(g, "layers", dict(mem.layers), dataset_kwargs=x_kw)
        zarr.consolidate_metadata(path, zarr_format=fmt)
    return path


def small_anndata(fmt_x: str = "csr", n_obs: int = 700, n_vars: int = 60, seed: int = 0) -> ad.AnnData:
    """Counts with obs/var annotations, obsm, uns and a layer, X as CSR/CSC/dense."""
    rng = np.random.default_rng(seed)
    x = sp.random(n_obs, n_vars, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    x.data = np.ceil(x.data * 20).astype(np.float32)
    X = {"csr": x, "csc": x.tocsc(), "dense": x.toarray()}[fmt_x]
    a = ad.AnnData(X=X)
    a.obs_names = [f"c{i}" for i in range(n_obs)]
    a.var_names = [f"g{j}" for j in range(n_vars)]
    a.obs["group"] = rng.choice(["a", "b", "c"], n_obs)
    a.var["score"] = rng.random(n_vars)
    a.obsm["X_emb"] = rng.random((n_obs, 2))
    a.uns["note"] = "kept"
    a.layers["counts"] = X.copy()
    return a
