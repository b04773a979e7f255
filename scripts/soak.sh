#!/usr/bin/env bash
# The network-partition soak (docs/RELIABILITY.md, "Network partitions"):
# the coordination service and three brokers, each in its own network
# namespace, under an idempotent acks=all workload with consumers and a
# committing group, while a nemesis cuts, delays and flaps links and
# SIGKILLs leaders; then the checker runs over the whole history.
#   scripts/soak.sh --minutes N [--seed S] [--keep DIR] [--kills-per-partition K]
# Needs root (network namespaces) and builds the debug binaries first.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q -p gregor-server -p gregor-cli
PYTHON="${PYTHON:-$HOME/.cache/gregor/venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
GREGOR_SERVER_BIN="$CARGO_TARGET_DIR/debug/gregor-server" exec "$PYTHON" -u tests/e2e/soak.py "$@"
