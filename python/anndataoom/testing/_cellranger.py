"""Write Cell Ranger v3 ``.h5`` files (for tests and benchmarks)."""

from __future__ import annotations

import os

import h5py
import numpy as np
import scipy.sparse as sp

__all__ = ["write_10x_h5"]


def _strings(values) -> np.ndarray:
    return np.asarray([str(v).encode() for v in values], dtype="S")


def write_10x_h5(path: str | os.PathLike, X: sp.csr_matrix, barcodes, names, *, ids=None,
                 feature_types=None, genomes=None, compression: str | None = "gzip") -> None:
    """Write a cells × features CSR as Cell Ranger v3 writes it (genes × cells CSC).

    A cells × features CSR's arrays are exactly the genes × cells CSC's, so
    they are stored as they are (counts as int32, as Cell Ranger).

    Parameters
    ----------
    path
        The ``.h5`` file to create.
    X
        Counts, cells × features.
    barcodes, names
        Cell barcodes and feature names.
    ids, feature_types, genomes
        Feature ids (default ``names``), types (default ``'Gene Expression'``)
        and genomes (default ``'GRCh38'``).
    compression
        HDF5 compression of every dataset (Cell Ranger uses gzip).
    """
    X = sp.csr_matrix(X)
    n_feat = X.shape[1]
    ids = names if ids is None else ids
    feature_types = ["Gene Expression"] * n_feat if feature_types is None else feature_types
    genomes = ["GRCh38"] * n_feat if genomes is None else genomes
    kw = {"compression": compression} if compression else {}
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=_strings(barcodes), **kw)
        g.create_dataset("data", data=X.data.astype(np.int32), chunks=True, **kw)
        g.create_dataset("indices", data=X.indices.astype(np.int64), chunks=True, **kw)
        g.create_dataset("indptr", data=X.indptr.astype(np.int64), **kw)
        g.create_dataset("shape", data=np.array([n_feat, X.shape[0]], dtype=np.int32))
        feats = g.create_group("features")
        feats.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        feats.create_dataset("feature_type", data=_strings(feature_types), **kw)
        feats.create_dataset("genome", data=_strings(genomes), **kw)
        feats.create_dataset("id", data=_strings(ids), **kw)
        feats.create_dataset("name", data=_strings(names), **kw)
