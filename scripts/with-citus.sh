#!/usr/bin/env bash
# Runs a command with a throwaway Citus cluster (scripts/citus.sh): PG* point at the coordinator and
# FERRY_CITUS_WORKERS lists the workers' ports. Stops the cluster afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/ferry-citus.XXXXXX)
trap '"$here/citus.sh" stop "$dir"' EXIT
"$here/citus.sh" start "$dir"
# shellcheck disable=SC1091
. "$dir/env"
"$@"
