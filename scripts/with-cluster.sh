#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL 15 cluster; PG* variables point at it. Stops it afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/ferry-pg.XXXXXX)
trap '"$here/pg.sh" stop "$dir"' EXIT
"$here/pg.sh" start "$dir"
# shellcheck disable=SC1091
. "$dir/env"
"$@"
