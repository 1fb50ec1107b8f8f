#!/usr/bin/env bash
# Builds, then runs every test (unit and integration) against the cluster scripts/with-cluster.sh started.
set -euo pipefail
: "${PGHOST:?run through scripts/with-cluster.sh}"
swift build
export FERRY_BIN="$PWD/.build/debug/ferry"
swift test
