#!/usr/bin/env bash
# Runs every check and test of gregor from a fresh checkout: formatting,
# clippy, unit/property/integration tests, the examples, and a bounded
# fuzz run of every target. Installs what it needs (only the Rust
# toolchain is assumed). Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Disk: a CI machine ran out of space in the end-to-end step (session 13).
# One build from scratch needs no incremental state (the bulk of a debug
# target dir), and line tables keep backtraces' file:line at a fraction
# of full debug info's size.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"

# Each step names the disk space left, so a full disk shows where it filled.
step() { printf '\n=== %s (%s free)\n' "$*" "$(df -h --output=avail . | tail -1 | tr -d ' ')"; }

step "dependencies"
# ZooKeeper 3.8 from Debian for the gregor-coord ZooKeeper backend tests
# (the package brings a Java runtime when there is none).
# kcat (Debian 12's, on librdkafka 2.0.2: the old client that must keep
# working) for the end-to-end suite. A JDK and Maven for the JVM tests.
# iproute2 and nftables for the network-partition tests (network
# namespaces; tests/e2e/test_partitions.py, skipped when not root). QEMU
# for the kernel-TLS tests, run in a VM with Debian's kernel (this
# machine's kernel has no kernel TLS; scripts/vm/).
if [ ! -f /usr/share/java/zookeeper.jar ] || ! command -v javac >/dev/null || ! command -v mvn >/dev/null \
  || ! command -v kcat >/dev/null || ! command -v ip >/dev/null || ! command -v nft >/dev/null \
  || ! command -v qemu-system-x86_64 >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq zookeeper default-jdk-headless maven kcat iproute2 nftables qemu-system-x86 >/dev/null
fi
# Apache Kafka 3.9.1 (broker, tools) and the 4.x Java client from Maven
# Central into bench/kafka/lib (cached in ~/.m2; kept when there).
bench/kafka/fetch.sh
# The Python clients (pinned in tests/requirements.txt) in a virtual
# environment: Debian's own Python refuses pip installs into the system
# (PEP 668). The environment and pip's download cache are kept between runs.
VENV="${GREGOR_VENV:-$HOME/.cache/gregor/venv}"
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3-venv python3-dev build-essential >/dev/null
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
PYTHON="$VENV/bin/python"

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
cargo test --workspace

step "end-to-end: kcat, kafka-python, confluent-kafka, Kafka's Java client and tools against the broker"
cargo build -p gregor-server -p gregor-cli
# Passed tests' temporary directories (broker data) are removed as they end.
GREGOR_SERVER_BIN="$CARGO_TARGET_DIR/debug/gregor-server" "$PYTHON" -m pytest -q -p no:warnings \
  -o tmp_path_retention_policy=failed tests/e2e

step "kernel TLS: tests/e2e/test_kernel_tls.py and the TLS tests of test_security.py in a VM with Debian's kernel"
# The broker here hands TLS connections to the kernel (this machine's own
# kernel has no kernel TLS, so the end-to-end step above ran them in
# userspace). Hardware KVM where there is one, else QEMU's emulation
# (slow, but these are functional tests).
vm=(scripts/vm/run.sh --timeout 1500)
"${vm[@]}" -- true 2>/dev/null || vm+=(--tcg)
"${vm[@]}" -- env GREGOR_SERVER_BIN="$CARGO_TARGET_DIR/debug/gregor-server" "$PYTHON" -m pytest -q -p no:warnings \
  tests/e2e/test_kernel_tls.py tests/e2e/test_security.py -k "kernel or tls or refusals or scram_sha_512"

step "recovery property, 10 000 cases"
GREGOR_PROPTEST_CASES=10000 cargo test -p gregor-log --test properties recovery_keeps_exactly_the_valid_prefix

step "examples"
cargo run --quiet --example embedded_log
cargo run --quiet --example compaction

step "fuzz targets (bounded runs)"
scripts/fuzz.sh "${GREGOR_FUZZ_RUNS:-20000}"

step "all checks passed"
