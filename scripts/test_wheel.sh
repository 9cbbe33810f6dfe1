#!/usr/bin/env bash
# The wheel as a user gets it.
#
#   scripts/test_wheel.sh dist/anndataoom-*.whl [pytest args...]
#
# A fresh virtualenv (WHEEL_VENV, default .venv-wheel) whose PATH holds no
# cargo or rustc installs the built wheel, checks that anndataoom is imported
# from that venv's site-packages and runs `anndataoom run pbmc3k` with only the
# package's own dependencies; then it adds the test extras (WHEEL_EXTRAS,
# default test,omicverse) and runs the repository's tests against the
# installed package from a scratch directory (nothing is imported from the
# source tree), after mypy's stubtest of the installed extension against
# `_oom.pyi`.  PY picks the interpreter; WHEEL_DOCS=1 also builds the docs
# before the tests.  Runs on Linux, macOS and
# Windows (Git Bash): the release workflow calls it on every platform.
set -euo pipefail
WHEEL="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${WHEEL_VENV:-.venv-wheel}
[[ $VENV = /* ]] || VENV="$PWD/$VENV"
EXTRAS=${WHEEL_EXTRAS:-test,omicverse}
PYTHON=$(command -v "${PY:-python3}")

# The user's PATH: every directory holding cargo or rustc (rustup's
# ~/.cargo/bin, ...) is dropped, and so is the developers' .venv.
user_path=""
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
    [[ -z $d || -e $d/cargo || -e $d/cargo.exe || -e $d/rustc || -e $d/rustc.exe ]] && continue
    [[ $d -ef $ROOT/.venv/bin ]] && continue
    user_path+="${user_path:+:}$d"
done

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
BIN="$VENV/bin"; [[ -d $VENV/Scripts ]] && BIN="$VENV/Scripts"
export PATH="$BIN:$user_path"
unset PYTHONPATH VIRTUAL_ENV
if cargo --version >/dev/null 2>&1 || rustc --version >/dev/null 2>&1; then
    echo "error: cargo/rustc still reachable on PATH=$PATH" >&2
    exit 1
fi
echo "cargo --version in the wheel test's environment: $(cargo --version 2>&1 || true)"

python -m pip install -q --upgrade "pip>=25.1"
start=$SECONDS
python -m pip install -q "$WHEEL"
echo "pip install of the wheel and its dependencies: $((SECONDS - start)) s"
start=$SECONDS
python -m pip install -q --force-reinstall --no-deps "$WHEEL"
echo "pip install of the wheel alone: $((SECONDS - start)) s"

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"
python - <<'PY'
import sys
from pathlib import Path

import anndataoom

where = Path(anndataoom.__file__).resolve()
print(f"anndataoom {anndataoom.__version__} imported from {where}")
if "site-packages" not in where.parts or Path(sys.prefix).resolve() not in where.parents:
    sys.exit(f"error: anndataoom is not the wheel installed in {sys.prefix}")
PY
# The command line with the plain dependencies (what `pip install anndataoom` gives).
anndataoom run pbmc3k -o "$SCRATCH/pbmc3k.h5ad"
python -m pip install -q "$WHEEL[$EXTRAS]"
# The installed extension against its stub `_oom.pyi` (mypy from the lint group).
python -m pip install -q --group "$ROOT/pyproject.toml:lint"
python -m mypy.stubtest anndataoom._oom
# WHEEL_DOCS=1 (CI): the docs of this installed wheel, warnings as errors, tutorial executed.
if [[ -n ${WHEEL_DOCS:-} ]]; then
    python -m pip install -q "$WHEEL[docs]"
    python -m sphinx -W --keep-going -b html "$ROOT/docs" "$ROOT/docs/_build/html"
fi
# -p no:cacheprovider: nothing is written into the source tree.
python -m pytest -p no:cacheprovider --rootdir "$ROOT" -c "$ROOT/pyproject.toml" "$ROOT/tests" "$@"
