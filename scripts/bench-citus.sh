#!/usr/bin/env bash
# The Citus benchmark (needs an installed Citus; run through scripts/with-cluster.sh --citus): BENCH_CONTACTS
# legacy contacts (default 1,000,000) on the coordinator-and-two-workers cluster, the sample schema
# distributed by tenant, its three tenants spread over the two workers; the naive backfill (one btrim'd
# work row per non-blank value, INSERT … SELECT) is timed, the phone table emptied, then `ferry apply`
# (one writer, then --jobs 2) is timed on the same cluster. The same on a plain PostgreSQL 15 cluster
# started here, for the figures side by side. Ratio target: <= 1.5.
set -euo pipefail
: "${FERRY_CITUS_WORKERS:?run through scripts/with-cluster.sh --citus}"
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY:-.build/release/ferry}
contacts=${BENCH_CONTACTS:-1000000}
. scripts/bench-common.sh
naive="INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order)
    SELECT tenant, contact_name_id, btrim(phone_number), 'work', true, 0
    FROM contacts WHERE phone_number IS NOT NULL AND btrim(phone_number) <> ''"

# run ENGINE: prints "naive_seconds ferry_seconds rows ferry_jobs2_seconds", then the CPU time of each
# step (the whole machine's: the coordinator, the workers and ferry)
run() {
    local engine=$1 db=bench_citus
    if [ "$engine" = citus ]; then
        "$here/citus.sh" createdb "$db"
    else
        $psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    fi
    PGDATABASE=$db $psql -f samples/schema.sql
    if [ "$engine" = citus ]; then
        PGDATABASE=$db $psql -f samples/citus.sql >/dev/null
        PGDATABASE=$db $psql -f scripts/citus-spread-sample-tenants.sql >/dev/null
    fi
    PGDATABASE=$db $psql -v contacts="$contacts" -f samples/generate.sql
    PGDATABASE=$db "$ferry" schema apply mappings/phones.yaml --snapshot-dir "$bench_snapshots" >/dev/null
    PGDATABASE=$db $psql -c "VACUUM ANALYZE"
    local start cpu naive_s ferry_s rows naive_cpu ferry_cpu jobs2_cpu
    start=$(now) cpu=$(cpu_now)
    PGDATABASE=$db $psql -c "$naive"
    naive_s=$(seconds "$start" "$(now)") naive_cpu=$(seconds "$cpu" "$(cpu_now)")
    PGDATABASE=$db $psql -c "TRUNCATE contact_phone_numbers, contact_phone_type_definitions" -c "VACUUM ANALYZE"
    start=$(now) cpu=$(cpu_now)
    PGDATABASE=$db "$ferry" apply mappings/phones.yaml --no-progress --json >/tmp/ferry-bench-citus-$engine.json
    ferry_s=$(seconds "$start" "$(now)") ferry_cpu=$(seconds "$cpu" "$(cpu_now)")
    rows=$(PGDATABASE=$db $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
    PGDATABASE=$db $psql -c "TRUNCATE contact_phone_numbers, contact_phone_type_definitions" -c "VACUUM ANALYZE"
    start=$(now) cpu=$(cpu_now)
    PGDATABASE=$db "$ferry" apply mappings/phones.yaml --no-progress --jobs 2 --json >/tmp/ferry-bench-citus-$engine-jobs2.json
    jobs2_s=$(seconds "$start" "$(now)") jobs2_cpu=$(seconds "$cpu" "$(cpu_now)")
    echo "$naive_s $ferry_s $rows $jobs2_s $naive_cpu $ferry_cpu $jobs2_cpu"
}

echo "bench-citus: $contacts contacts on Citus (coordinator $PGPORT, workers $FERRY_CITUS_WORKERS)" >&2
read -r citus_naive citus_ferry citus_rows citus_jobs2 citus_naive_cpu citus_ferry_cpu citus_jobs2_cpu < <(run citus)
for port in $FERRY_CITUS_WORKERS; do $psql -p "$port" -d postgres -c "DROP DATABASE IF EXISTS bench_citus WITH (FORCE)"; done
$psql -d postgres -c "DROP DATABASE IF EXISTS bench_citus WITH (FORCE)"

echo "bench-citus: $contacts contacts on plain PostgreSQL 15" >&2
plain=$(mktemp -d /tmp/ferry-bench-plain.XXXXXX)
trap '"$here/pg.sh" stop "$plain"' EXIT
"$here/pg.sh" start "$plain" >/dev/null
read -r plain_naive plain_ferry plain_rows plain_jobs2 plain_naive_cpu plain_ferry_cpu plain_jobs2_cpu < <(
    unset FERRY_CITUS_WORKERS
    # shellcheck disable=SC1091
    . "$plain/env"
    run postgres
)

cat <<REPORT

Citus benchmark, $contacts contacts, $(nproc) cores (Citus: a coordinator and two workers on this machine)
                 naive INSERT … SELECT   ferry apply   ratio (target <= 1.5)   ferry apply --jobs 2   ratio
  Citus 3 nodes  $citus_naive s                $citus_ferry s     $(ratio "$citus_ferry" "$citus_naive")                    $citus_jobs2 s               $(ratio "$citus_jobs2" "$citus_naive")
  PostgreSQL 15  $plain_naive s                $plain_ferry s     $(ratio "$plain_ferry" "$plain_naive")                    $plain_jobs2 s               $(ratio "$plain_jobs2" "$plain_naive")
  ($citus_rows phone rows on Citus, $plain_rows on PostgreSQL)
CPU time of each step (the whole machine's busy time: coordinator, workers, ferry), and what the 1.5 target
leaves on $(nproc) cores (1.5 x the naive statement's time x cores; a step that used more cannot meet it here)
                 naive INSERT … SELECT   ferry apply   ferry apply --jobs 2   the target leaves
  Citus 3 nodes  $citus_naive_cpu s                $citus_ferry_cpu s     $citus_jobs2_cpu s               $(cpu_allowed "$citus_naive") s
  PostgreSQL 15  $plain_naive_cpu s                $plain_ferry_cpu s     $plain_jobs2_cpu s               $(cpu_allowed "$plain_naive") s
REPORT
