#!/usr/bin/env bash
# Bounded libFuzzer run of the reader (fuzz/fuzz_targets/read_h5ad.rs).
#
#   scripts/fuzz.sh [SECONDS]        # default 60; FUZZ_JOBS=N for parallel jobs
#
# Needs only the stable toolchain: cargo-fuzz's nightly-only flags are
# allowed by RUSTC_BOOTSTRAP=1 and the sanitizer is off (--sanitizer none),
# so this finds panics, aborts, hangs (-timeout) and runaway memory
# (-rss_limit_mb), not memory errors inside C code.  Seeds: fuzz/corpus
# (checked in, regenerate with fuzz/make_corpus.py); the growing corpus is
# kept in target/fuzz-corpus (not checked in).  A crasher is written to
# fuzz/artifacts/read_h5ad/ and the script exits non-zero: fix the bug, then
# move the file to fuzz/regressions/read_h5ad/ (replayed by cargo test and
# pytest tests/reliability).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-60}"
ROOT="$PWD"
export PATH="$ROOT/.venv/bin:$HOME/.cargo/bin:$PATH"   # cmake >= 3.26 for HDF5
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cd fuzz
cargo fuzz build --sanitizer none -O read_h5ad
WORK="$ROOT/target/fuzz-corpus/read_h5ad"
mkdir -p "$WORK" artifacts/read_h5ad
# Replay the saved crashers first: each must now pass.
for f in regressions/read_h5ad/*; do
    [ -e "$f" ] || continue
    cargo fuzz run --sanitizer none -O read_h5ad "$f" -- -runs=1 >/dev/null 2>&1 \
        || { echo "regression input $f fails again"; exit 1; }
done
# Fork mode, so that a timeout does not end the run: HDF5's own C code can
# loop forever on some corrupt files (fuzz/known_hangs, upstream bug; h5py
# hangs on them too). Timeouts are saved and listed; crashes (panics,
# aborts) and out-of-memory fail the run.
before=$(ls artifacts/read_h5ad | wc -l)
set +e
cargo fuzz run --sanitizer none -O read_h5ad "$WORK" corpus/read_h5ad -- \
    -fork="${FUZZ_JOBS:-1}" -ignore_timeouts=1 -ignore_crashes=0 -ignore_ooms=0 \
    -max_total_time="$SECONDS_TO_RUN" -timeout=3 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$ROOT/fuzz/artifacts/read_h5ad/" \
    > "$ROOT/target/fuzz-last.log" 2>&1
status=$?
set -e
new=$(ls artifacts/read_h5ad | wc -l)
if ls artifacts/read_h5ad | grep -qE "^(crash|oom|leak)-"; then
    echo "fuzz: crashers in fuzz/artifacts/read_h5ad:"; ls artifacts/read_h5ad | grep -E "^(crash|oom|leak)-"
    exit 1
fi
if [ "$new" -gt "$before" ]; then
    echo "fuzz: new timeouts saved in fuzz/artifacts/read_h5ad (check against fuzz/known_hangs)"
fi
# Timeouts are ignored (see above), but libFuzzer still exits with its
# timeout code 70 (cargo-fuzz reports 1): a run is good when it ran its full
# time and left no crasher.
if ! grep -q "INFO: fuzzed for" "$ROOT/target/fuzz-last.log"; then
    echo "fuzz: libFuzzer stopped early with $status (see target/fuzz-last.log)"; exit 1
fi
grep -E "^#[0-9]+: cov" "$ROOT/target/fuzz-last.log" | tail -1
echo "fuzz: ${SECONDS_TO_RUN}s, no crash"
