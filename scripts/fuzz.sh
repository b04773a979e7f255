#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation and runs
# each for a bounded number of inputs from the seed corpus. It needs neither
# cargo-fuzz nor nightly: the instrumentation flags cargo-fuzz passes are
# stable codegen options, given here directly. A crash fails the run; the
# crashing input is left in fuzz/artifacts/. For long sessions use
# `cargo fuzz run <target>` as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20000}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
targets=(batch_reader recovery request_decoder codecs producer_snapshot offsets_record topic_config transaction_record txn_index sasl_exchange)

flags=(
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  --cfg fuzzing
  -Cdebug-assertions
  -Coverflow-checks
)
# An explicit --target keeps the flags off build scripts, as cargo-fuzz does.
host="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="${flags[*]}" cargo build --release --manifest-path fuzz/Cargo.toml \
  --target-dir "$target_dir/fuzz" --target "$host" --bins
mkdir -p fuzz/artifacts
for t in "${targets[@]}"; do
  corpus="$(mktemp -d)"
  "$target_dir/fuzz/$host/release/$t" -runs="$runs" -max_len=65536 -artifact_prefix="fuzz/artifacts/$t-" "$corpus" "fuzz/seeds/$t"
  rm -rf "$corpus"
done
