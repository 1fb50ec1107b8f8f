#!/usr/bin/env bash
# A throwaway Citus cluster (a coordinator and two workers, PostgreSQL 15, one machine) from an
# installed Citus. This script starts and configures Citus; it never builds or downloads it.
#   scripts/citus.sh available        exit 0 when Citus is installed for PostgreSQL 15
#   scripts/citus.sh start DIR        starts the three nodes; DIR/env points PG* at the coordinator and
#                                     sets FERRY_CITUS_WORKERS (the workers' ports)
#   scripts/citus.sh createdb NAME    (with DIR/env sourced) a database with the citus extension on every
#                                     node, the workers registered with the coordinator
#   scripts/citus.sh stop DIR         stops the nodes and removes DIR
# Citus 12.1 does not propagate CREATE DATABASE: each node gets the database, then the coordinator's
# copy learns its workers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PGBIN=/usr/lib/postgresql/15/bin
action=${1:?usage: scripts/citus.sh available|start|createdb|stop ...}

installed() {
    [ -f "$("$PGBIN/pg_config" --pkglibdir)/citus.so" ] \
        && [ -f "$("$PGBIN/pg_config" --sharedir)/extension/citus.control" ]
}

psql_on() {
    local port=$1 db=$2
    shift 2
    PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

case "$action" in
available)
    installed
    ;;
start)
    dir=${2:?usage: scripts/citus.sh start DIR}
    installed || { echo "Citus is not installed for PostgreSQL 15 (no citus.so in $("$PGBIN/pg_config" --pkglibdir))" >&2; exit 1; }
    mkdir -p "$dir"
    # Each node's folder belongs to the unprivileged user the servers run as (scripts/pg.sh): it must
    # be able to reach them through this one (mktemp makes it 0700).
    chmod 755 "$dir"
    # Citus commits multi-shard writes with two-phase commit: the workers need prepared transactions.
    export FERRY_PG_SETTINGS="-c shared_preload_libraries=citus -c max_prepared_transactions=200 -c max_connections=300 -c shared_buffers=256MB"
    workers=()
    for node in coordinator worker1 worker2; do
        "$here/pg.sh" start "$dir/$node" >/dev/null
        # shellcheck disable=SC1090
        port=$(. "$dir/$node/env" && echo "$PGPORT")
        [ "$node" = coordinator ] && coordinator=$port || workers+=("$port")
    done
    cat >"$dir/env" <<ENV
export PGHOST=127.0.0.1
export PGPORT=$coordinator
export PGUSER=postgres
export PGDATABASE=postgres
export FERRY_CITUS_DIR=$dir
export FERRY_CITUS_WORKERS="${workers[*]}"
ENV
    # The maintenance database gets the extension too: tests and demos create theirs from it.
    FERRY_CITUS_DIR=$dir FERRY_CITUS_WORKERS="${workers[*]}" PGPORT=$coordinator "$0" createdb-existing postgres
    echo "Citus running: coordinator 127.0.0.1:$coordinator, workers ${workers[*]} (data in $dir)"
    ;;
createdb | createdb-existing)
    name=${2:?usage: scripts/citus.sh createdb NAME}
    : "${FERRY_CITUS_WORKERS:?source the env file scripts/citus.sh start wrote}"
    # One at a time: tests create their databases in parallel, and two nodes being added at once on a
    # worker failed with "tuple concurrently updated".
    exec 9>"${FERRY_CITUS_DIR:-/tmp}/createdb.lock"
    flock 9
    for port in $FERRY_CITUS_WORKERS "$PGPORT"; do
        [ "$action" = createdb ] && psql_on "$port" postgres -c "CREATE DATABASE \"$name\""
        psql_on "$port" "$name" -c "CREATE EXTENSION IF NOT EXISTS citus"
    done
    psql_on "$PGPORT" "$name" -c "SELECT citus_set_coordinator_host('127.0.0.1', $PGPORT)" >/dev/null
    for port in $FERRY_CITUS_WORKERS; do
        psql_on "$PGPORT" "$name" -c "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
    done
    ;;
stop)
    dir=${2:?usage: scripts/citus.sh stop DIR}
    for node in worker1 worker2 coordinator; do
        [ -d "$dir/$node" ] && "$here/pg.sh" stop "$dir/$node"
    done
    rm -rf "$dir"
    ;;
*)
    echo "usage: scripts/citus.sh available|start|createdb|stop ..." >&2
    exit 2
    ;;
esac
