#!/usr/bin/env bash
# Runs a command with a throwaway cluster; PG* variables point at it. Stops it afterwards.
#   scripts/with-cluster.sh CMD...          PostgreSQL 15 (scripts/pg.sh)
#   scripts/with-cluster.sh --citus CMD...  Citus: a coordinator and two workers (scripts/citus.sh);
#                                           FERRY_CITUS_WORKERS lists the workers' ports
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cluster="$here/pg.sh"
if [ "${1:-}" = --citus ]; then
    cluster="$here/citus.sh"
    shift
fi
dir=$(mktemp -d /tmp/ferry-pg.XXXXXX)
trap '"$cluster" stop "$dir"' EXIT
"$cluster" start "$dir"
# shellcheck disable=SC1091
. "$dir/env"
# Scratch files of the command (benchmarks' schema snapshots) go with the cluster.
export FERRY_CLUSTER_DIR="$dir"
"$@"
