#!/usr/bin/env python
"""Download (once) and print the path of the PBMC 3k raw-count .h5ad.

Usage: python scripts/fetch_pbmc3k.py [CACHE_DIR]

Loads python/anndataoom/datasets.py by file path, so it works before the
package (and its Rust extension) is built.
"""

import importlib.util
import sys
from pathlib import Path

_DATASETS = Path(__file__).resolve().parent.parent / "python" / "anndataoom" / "datasets.py"


def main() -> int:
    spec = importlib.util.spec_from_file_location("_anndataoom_datasets", _DATASETS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cache_dir = sys.argv[1] if len(sys.argv) > 1 else None
    print(mod.pbmc3k(cache_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
