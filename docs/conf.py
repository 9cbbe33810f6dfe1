"""Sphinx configuration: API reference from ``__all__``, executed tutorial, MyST pages."""

from __future__ import annotations

import importlib
import inspect
import types
from pathlib import Path

from sphinx.util import logging

import anndataoom

project = "anndataoom"
author = "anndataoom developers"
release = anndataoom.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "myst_nb",
]
html_theme = "furo"
html_title = f"anndataoom {release}"
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]

autosummary_generate = True
autodoc_default_options = {"members": False}
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
# The tutorial runs at every build (in a temp dir, so nothing lands in docs/);
# a failing cell fails the build.
nb_execution_mode = "force"
nb_execution_in_temp = True
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_merge_streams = True
nb_output_stderr = "remove"  # library warnings (e.g. tqdm without ipywidgets), not results

# --- API reference ------------------------------------------------------------
# Generated from the ``__all__`` of each public module, so a name added to a
# module appears without editing the docs; modules another branch adds
# (``get``, ``pl``) are listed as soon as they exist.
API_MODULES = ["anndataoom", "anndataoom.io", "anndataoom.pp", "anndataoom.tl",
               "anndataoom.get", "anndataoom.pl", "anndataoom.experimental.pp"]
HERE = Path(__file__).parent
logger = logging.getLogger("anndataoom.docs")
GENERATED = HERE / "generated"


def _public_modules() -> dict[str, types.ModuleType]:
    found = {}
    for name in API_MODULES:
        try:
            found[name] = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # the module exists but is broken: fail the build
                raise
    return found


def _documented_names(module: types.ModuleType) -> list[str]:
    """``__all__`` minus submodules (their own sections) and ``__version__``."""
    return [n for n in module.__all__
            if n != "__version__" and not isinstance(getattr(module, n), types.ModuleType)]


GROUPS = ["Functions", "Classes", "Exceptions",
          "anndataoom 0.1.8 names (omicverse's `backend='rust'` pipeline)"]


def _group(module: types.ModuleType, name: str) -> str:
    obj = getattr(module, name)
    if name in anndataoom._seed.__all__:
        return GROUPS[3]
    if inspect.isclass(obj) and issubclass(obj, Exception):
        return GROUPS[2]
    if inspect.isclass(obj):
        return GROUPS[1]
    return GROUPS[0]


def _write_api_page(modules: dict[str, types.ModuleType]) -> None:
    lines = ["# API reference", "",
             "Every public name of each module (its `__all__`), from the docstrings.",
             f"This build documents version {release} (`anndataoom.__version__`).", ""]
    for modname, module in modules.items():
        lines += [f"## `{modname}`", ""]
        summary = (inspect.getdoc(module) or "").split("\n\n")[0]
        lines += [summary, ""] if summary else []
        groups: dict[str, list[str]] = {}
        for name in _documented_names(module):
            groups.setdefault(_group(module, name), []).append(name)
        for title, names in sorted(groups.items(), key=lambda g: GROUPS.index(g[0])):
            if modname == "anndataoom":
                lines += [f"### {title}", ""]
            lines += ["```{eval-rst}", f".. currentmodule:: {modname}", "",
                      ".. autosummary::", "   :toctree: .", "   :nosignatures:", ""]
            lines += [f"   {n}" for n in sorted(names)]
            lines += ["```", ""]
    GENERATED.mkdir(exist_ok=True)
    page = GENERATED / "api.md"
    text = "\n".join(lines)
    if not page.exists() or page.read_text() != text:  # keep mtimes: incremental builds
        page.write_text(text)


def _check_api_complete(app, env) -> None:
    """Warn (an error under ``-W``, as ``make docs`` builds) for each undocumented public name."""
    objects = env.get_domain("py").objects
    missing = [f"{m}.{n}" for m, mod in _public_modules().items()
               for n in _documented_names(mod) if f"{m}.{n}" not in objects]
    for name in missing:
        logger.warning("public name missing from the API page: %s", name, location="generated/api")


_write_api_page(_public_modules())


def setup(app):
    """Check the API page against every module's ``__all__`` once all pages are read."""
    app.connect("env-check-consistency", _check_api_complete)
