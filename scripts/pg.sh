#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster in a temporary folder, on a free local port.
#   scripts/pg.sh start DIR   creates and starts it, writes DIR/env (source it for PG* variables);
#                             with FERRY_PG_PASSWORD set, connections need that password (scram-sha-256);
#                             FERRY_PG_SETTINGS adds server settings ("-c name=value ...", scripts/citus.sh)
#   scripts/pg.sh stop DIR    stops it and removes DIR
#   scripts/pg.sh standby DIR PRIMARY_PORT
#                             a streaming standby of the cluster on PRIMARY_PORT, started; DIR/env has its port
# PostgreSQL refuses to run as root: as root, the cluster runs as the unprivileged user `ferrypg`.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
action=${1:?usage: scripts/pg.sh start|stop DIR}
dir=${2:?usage: scripts/pg.sh start|stop DIR}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u ferrypg -- "$@"; else "$@"; fi
}

# The server outlives this script: it must not inherit the caller's descriptors beyond 0-2. Swift's
# Process learns that its child exited when a socket it passed down closes; a server holding a copy
# kept a test waiting for the server instead of this script.
close_inherited_descriptors() {
    local fd
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        # 255 is the descriptor bash reads this script through.
        [ "$fd" -gt 2 ] 2>/dev/null && [ "$fd" != 255 ] && eval "exec $fd>&-" 2>/dev/null
    done
    return 0
}
close_inherited_descriptors

# A port nobody listens on, below the kernel's range for outgoing connections' local ports (a port
# held by one of those is not seen by a connect test, and the server's bind then fails).
free_port() {
    local port low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for _ in $(seq 1 200); do
        port=$(( 20000 + RANDOM % (low - 20000) ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

# Starts the server in $dir/data on a free port with the options "$@" (the port is added), trying
# another port when the chosen one turns out to be taken; sets `port`.
start_server() {
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        rm -f "$dir/server.log"
        if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o "-p $port $*" \
            >/dev/null 2>"$dir/pg_ctl.log"; then
            return 0
        fi
        grep -q "Address already in use" "$dir/server.log" && [ "$attempt" -lt 5 ] || break
    done
    cat "$dir/pg_ctl.log" "$dir/server.log" >&2
    exit 1
}

case "$action" in
start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        id ferrypg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin ferrypg
        chown ferrypg "$dir"
    fi
    # FERRY_PG_PASSWORD: the superuser gets this password and every connection must give one (tests of
    # ferry's password prompt); otherwise the throwaway cluster trusts local connections.
    auth=(--auth=trust)
    if [ -n "${FERRY_PG_PASSWORD:-}" ]; then
        printf '%s\n' "$FERRY_PG_PASSWORD" >"$dir/pwfile"
        [ "$(id -u)" = 0 ] && chown ferrypg "$dir/pwfile"
        auth=(--auth=scram-sha-256 "--pwfile=$dir/pwfile")
    fi
    as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres "${auth[@]}" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # A throwaway cluster: durability settings off. pg_ctl's stderr goes to a file: the server inherits
    # it, and a caller reading our output through a pipe would otherwise wait for the server to exit.
    # Benchmarks compare runs on the same cluster.
    start_server "-k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=4GB -c shared_buffers=512MB -c max_wal_senders=4 -c wal_level=replica ${FERRY_PG_SETTINGS:-}"
    cat >"$dir/env" <<ENV
export PGHOST=127.0.0.1
export PGPORT=$port
export PGUSER=postgres
export PGDATABASE=postgres
export FERRY_PG_DIR=$dir
ENV
    echo "PostgreSQL 15 running on 127.0.0.1:$port (data in $dir/data)"
    ;;
standby)
    primary_port=${3:?usage: scripts/pg.sh standby DIR PRIMARY_PORT}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown ferrypg "$dir"
    as_owner /usr/lib/postgresql/15/bin/pg_basebackup -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/data" -R -X stream -c fast \
        >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
    # Reports its replay position every second, so the primary sees lag (and its end) promptly.
    start_server "-k $dir -c listen_addresses=127.0.0.1 -c hot_standby=on -c wal_receiver_status_interval=1s"
    echo "export STANDBY_PORT=$port" >"$dir/env"
    echo "standby running on 127.0.0.1:$port"
    ;;
stop)
    if [ -d "$dir/data" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: scripts/pg.sh start|stop DIR" >&2
    exit 2
    ;;
esac
