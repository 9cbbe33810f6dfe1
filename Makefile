# Every target runs inside .venv, created here, so a fresh machine needs only
# Rust, Python 3.11 and pip.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Optional dependency groups installed with the package; the test targets
# add omicverse for the drop-in integration tests.
EXTRAS  ?= test
test test-py test-rust test-wheel: EXTRAS = test,omicverse
# The venv in which `make test` installs the built wheel (scripts/test_wheel.sh);
# WHEEL_DOCS=1 also builds the docs there, before the tests (CI does).
WHEEL_VENV := .venv-wheel
WHEEL_DOCS ?=
# pytest-xdist: one test process per core (the tests are mostly single-threaded
# Python around short multithreaded passes); PYTEST_WORKERS= runs them in one.
PYTEST_WORKERS ?= -n auto

.PHONY: help venv build-deps lint-deps dev release wheel test test-rust test-wheel test-py \
        test-slow demo bench docs lint lint-static fuzz clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/ —/'

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=25.1" wheel

venv: $(BIN)/python

build-deps: venv  ## maturin, cmake, zig, auditwheel: pyproject's [dependency-groups] build
	$(BIN)/pip install -q "pip>=25.1"  # --group needs it (an older .venv may have an older pip)
	$(BIN)/pip install -q --group build

lint-deps: build-deps  ## ruff, mypy: pyproject's [dependency-groups] lint
	$(BIN)/pip install -q --group lint

release: build-deps  ## build and install the package (release mode, editable) with test extras
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"

dev: venv  ## fast rebuild of the extension into .venv
	$(BIN)/maturin develop --release -q

wheel: build-deps  ## abi3 manylinux2014 wheel + sdist in dist/; size, auditwheel, glibc needed
	rm -rf dist
	$(BIN)/maturin build --release --zig --compatibility manylinux2014 -o dist
	$(BIN)/maturin sdist -o dist
	$(BIN)/python scripts/wheel_report.py dist/*.whl

# clippy runs as the compiler of the workspace's own crates in the build the
# tests need (Cargo.toml's `ci` profile): the dependencies are built once,
# not checked for clippy and then built again for the tests. CLIPPY_ARGS is
# how cargo-clippy hands `-- -D warnings` to clippy-driver.
CLIPPY_BUILD := RUSTC_WORKSPACE_WRAPPER=clippy-driver \
	CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

test-rust: build-deps  ## clippy -D warnings on the workspace while it builds, then the core's cargo tests
	$(CLIPPY_BUILD) cargo build --workspace --profile ci
	$(CLIPPY_BUILD) cargo test --workspace --profile ci

test-wheel: wheel  ## the wheel as users get it: fresh venv, no cargo, pytest + `anndataoom run`
	PY=$(PY) WHEEL_VENV=$(WHEEL_VENV) WHEEL_EXTRAS=$(EXTRAS) WHEEL_DOCS=$(WHEEL_DOCS) \
		scripts/test_wheel.sh dist/*.whl -q --durations=15 $(PYTEST_WORKERS)

test-py: release  ## pytest suite against the editable build in .venv
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS)

# lint-static first: it needs no build of the package, so CI fails fast on it.
test: lint-static test-rust test-wheel  ## everything CI runs: lints, cargo tests, pytest on the installed wheel

test-slow: release  ## slow tier: 1M rows, a full 2^31-entry pass with peak-RSS bounds
	$(BIN)/python -m pytest -q -m slow

fuzz: venv  ## coverage-guided libFuzzer run of the reader (FUZZ_SECONDS=60)
	scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

demo: release  ## the main job on PBMC 3k (downloaded once, cached)
	$(BIN)/anndataoom run pbmc3k -o results/pbmc3k.h5ad

bench: release  ## side-by-side benchmark
	$(BIN)/python bench/run.py

docs:  ## Sphinx site, tutorial executed, warnings as errors → docs/_build/html
	$(MAKE) release EXTRAS=docs
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

# clippy is not here: it runs in `make test-rust`'s build.
lint-static: lint-deps  ## rustfmt --check, ruff (no build of the package)
	cargo fmt --all --check
	$(BIN)/ruff check python tests bench

lint: lint-static release  ## lint-static, clippy -D warnings, the extension stub checked against the dev build
	cargo clippy --workspace --all-targets -- -D warnings
	$(BIN)/python -m mypy.stubtest anndataoom._oom

clean:
	rm -rf $(VENV) $(WHEEL_VENV) target dist docs/_build docs/generated
