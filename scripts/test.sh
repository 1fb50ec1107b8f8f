#!/usr/bin/env bash
# Builds, then runs every test (unit and integration) against the cluster scripts/with-cluster.sh started;
# then the Citus tier (the same binary against a coordinator and two workers) when Citus is installed.
set -euo pipefail
: "${PGHOST:?run through scripts/with-cluster.sh}"
swift build --build-tests
export FERRY_BIN="$PWD/.build/debug/ferry"
swift test --skip-build --skip CitusTests
if scripts/citus.sh available; then
    scripts/with-cluster.sh --citus scripts/test-citus.sh
else
    echo "Citus tier: NOT RUN — Citus is not installed for PostgreSQL 15 on this machine (citus.so missing)."
    echo "  Only plain PostgreSQL was tested. Install Citus 12.1 for PostgreSQL 15, then: make test-citus"
fi
