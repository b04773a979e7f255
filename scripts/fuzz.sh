#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation and runs
# them. It needs neither cargo-fuzz nor nightly: the instrumentation flags
# cargo-fuzz passes are stable codegen options, given here directly.
#
#   scripts/fuzz.sh [RUNS]                 each target for RUNS inputs (20000),
#                                          from the committed corpus and the
#                                          seeds; nothing is written back (the
#                                          test command's short run)
#   scripts/fuzz.sh --minutes N [TARGET…]  a campaign: each target (or those
#                                          named) for N minutes, new inputs
#                                          kept in fuzz/corpus/<target>, which
#                                          is minimized afterwards (commit it)
#
# A crash fails the run; the crashing input is left in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
targets=(batch_reader recovery request_decoder dispatch codecs producer_snapshot offsets_record topic_config
  transaction_record txn_index sasl_exchange)

minutes=""
runs=20000
if [ "${1:-}" = "--minutes" ]; then
  minutes="${2:?--minutes needs a number}"
  shift 2
  [ $# -gt 0 ] && targets=("$@")
elif [ $# -gt 0 ]; then
  runs="$1"
fi

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
bin="$target_dir/fuzz/$host/release"
mkdir -p fuzz/artifacts
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus"
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  if [ -z "$minutes" ]; then
    scratch="$(mktemp -d)"
    "$bin/$t" -runs="$runs" -max_len=65536 -artifact_prefix="fuzz/artifacts/$t-" "$scratch" "$corpus" "${seeds[@]}"
    rm -rf "$scratch"
  else
    log="$(mktemp)"
    "$bin/$t" -max_total_time=$((minutes * 60)) -max_len=65536 -artifact_prefix="fuzz/artifacts/$t-" \
      -print_final_stats=1 "$corpus" "${seeds[@]}" 2>"$log" || { tail -50 "$log"; exit 1; }
    # Keep the smallest set of inputs with the same coverage.
    minimized="$(mktemp -d)"
    "$bin/$t" -merge=1 -max_len=65536 "$minimized" "$corpus" 2>/dev/null
    rm -rf "$corpus" && mv "$minimized" "$corpus"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
    echo "$t: ${minutes} min, ${execs} executions, ${cov}, corpus $(ls "$corpus" | wc -l) inputs, no crash"
    rm -f "$log"
  fi
done
