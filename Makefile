# Every target runs inside .venv, created here, so a fresh machine needs only
# Rust, Python 3.11 and pip.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Optional dependency groups installed with the package; the test targets
# add omicverse for the drop-in integration tests.
EXTRAS  ?= test
test test-py test-rust: EXTRAS = test,omicverse

.PHONY: help venv dev release test test-rust test-py test-slow demo bench lint fuzz clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/ —/'

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=23" wheel

venv: $(BIN)/python

release: venv  ## build and install the package (release mode) with test extras
	$(BIN)/pip install -q "cmake>=3.26" "maturin>=1.7,<2"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"

dev: venv  ## fast rebuild of the extension into .venv
	$(BIN)/maturin develop --release -q

test-rust: release  ## cargo tests of the core
	cargo test -p oom-core --release

test-py: release  ## pytest suite
	$(BIN)/python -m pytest -q

test: test-rust test-py  ## everything CI runs

test-slow: release  ## slow tier: 1M rows, a full 2^31-entry pass with peak-RSS bounds
	$(BIN)/python -m pytest -q -m slow

fuzz: venv  ## coverage-guided libFuzzer run of the reader (FUZZ_SECONDS=60)
	scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

demo: release  ## the main job on PBMC 3k (downloaded once, cached)
	$(BIN)/anndataoom run pbmc3k -o results/pbmc3k.h5ad

bench: release  ## side-by-side benchmark
	$(BIN)/python bench/run.py

lint: venv  ## ruff + the extension stub checked against the binary
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/ruff check python
	$(BIN)/python -m mypy.stubtest anndataoom._oom

clean:
	rm -rf $(VENV) target
