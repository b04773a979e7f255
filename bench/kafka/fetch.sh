#!/usr/bin/env bash
# Puts Apache Kafka's jars from Maven Central (cached in ~/.m2) into
# bench/kafka/lib/: lib/3.9 (the 3.9.1 broker, its tools, reload4j logging)
# and lib/4 (the newest 4.x Java client), as pom.xml's profiles list them;
# `fetch.sh 4-broker` fetches lib/4-broker (Kafka 4's KRaft broker) instead.
# A lib dir whose stamp is newer than pom.xml is kept as it is.
set -euo pipefail
cd "$(dirname "$0")"

fetch() { # profile dir
  local dir="lib/$2"
  if [ -f "$dir/.fetched" ] && [ "$dir/.fetched" -nt pom.xml ]; then
    return
  fi
  rm -rf "$dir" "$dir.tmp"
  local out
  if ! out=$(mvn -q -B -f pom.xml -P "$1" dependency:copy-dependencies -DoutputDirectory="$dir.tmp" 2>&1); then
    printf '%s\n' "$out" >&2
    exit 1
  fi
  touch "$dir.tmp/.fetched"
  mv "$dir.tmp" "$dir"
  echo "bench/kafka/$dir: $(ls "$dir" | wc -l) jars"
}

if [ "${1:-}" = "4-broker" ]; then
  fetch kafka-4-broker 4-broker
  exit 0
fi
fetch kafka-3.9 3.9
fetch kafka-4 4
