"""Text and HTML representations of ``AnnDataOOM``."""

from __future__ import annotations

import html
import os

from anndataoom._core._backed_array import BackedArray

__all__ = ["text_repr", "html_repr"]


def _size(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover


def _disk_size(path: str) -> int:
    """Bytes of a file, or of every file under a Zarr store directory."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def _x_summary(X) -> list[tuple[str, str]]:
    """(label, text) rows describing X."""
    if X is None:
        return [("X", "None")]
    if not isinstance(X, BackedArray):
        return [("X", f"{type(X).__name__} {X.dtype} (in memory)")]
    rows = []
    path = X.path
    try:
        disk = f" ({_size(_disk_size(path))} on disk)"
    except OSError:
        disk = ""
    rows.append(("file", f"{os.path.basename(path)}{disk}"))
    n_obs, n_vars = X.shape
    desc = f"{X.source_format} {X.dtype}"
    nnz = X._known_nnz()
    if nnz is not None and n_obs * n_vars:
        desc += f", density {nnz / (n_obs * n_vars):.2%}"
    if not X.matrix.is_identity:
        desc += ", subset"
    rows.append(("X", desc + " (lazy)"))
    if X.transforms:
        rows.append(("transforms", " → ".join(X.transforms)))
    return rows


def _sections(adata) -> list[tuple[str, str]]:
    out = []
    for attr in ("obs", "var", "uns", "obsm", "varm", "obsp", "varp"):
        keys = list(getattr(adata, attr).keys())
        if keys:
            out.append((attr, ", ".join(repr(str(k)) for k in keys)))
    layers = adata.layers
    if len(layers):
        out.append(("layers", ", ".join(
            f"{k!r}" + ("" if isinstance(v, BackedArray) else " (in memory)")
            for k, v in layers.items())))
    if adata.raw is not None:
        out.append(("raw", f"{adata.raw.n_obs} × {adata.raw.n_vars}"))
    return out


def text_repr(adata) -> str:
    """Multi-line summary: shape, file, X format/dtype/density, keys."""
    head = f"AnnDataOOM object with n_obs × n_vars = {adata.n_obs} × {adata.n_vars}"
    if adata.is_closed:
        return head + " (closed)"
    lines = [head]
    for label, text in _x_summary(adata._X) + _sections(adata):
        lines.append(f"    {label}: {text}")
    return "\n".join(lines)


def html_repr(adata) -> str:
    """Render the same summary as an HTML table (escaped)."""
    head = html.escape(f"AnnDataOOM object with n_obs × n_vars = {adata.n_obs} × {adata.n_vars}")
    if adata.is_closed:
        return f"<div><b>{head}</b> (closed)</div>"
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
        f"<td style='text-align:left'>{html.escape(text)}</td></tr>"
        for label, text in _x_summary(adata._X) + _sections(adata)
    )
    return f"<div><b>{head}</b><table>{rows}</table></div>"
