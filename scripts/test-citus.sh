#!/usr/bin/env bash
# The Citus tier: the suites that run on distributed tables (and the tests of rows deleted mid-run),
# against the cluster scripts/with-cluster.sh --citus started.
set -euo pipefail
: "${FERRY_CITUS_WORKERS:?run through scripts/with-cluster.sh --citus}"
export FERRY_BIN="${FERRY_BIN:-$PWD/.build/debug/ferry}"
echo "Citus tier: coordinator on port $PGPORT, workers on ports $FERRY_CITUS_WORKERS"
swift test --skip-build --filter "CitusTests|EveryJobTests|DeletedBetweenReadAndWrite"
