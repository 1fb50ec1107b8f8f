#!/usr/bin/env bash
# The naive-rows benchmark: BENCH_CONTACTS legacy contacts (default 1,000,000); the application's own
# naive backfill (every non-blank value btrim'd into one default work row) is timed, then on a copy of
# that state `ferry apply` with `existing_rows: replace_naive` rewrites those rows in place (normalized,
# split, extensions, rejects deleted) and is timed against it; then, on another copy with the legacy
# column dropped, `ferry apply mappings/phones-in-place.yaml` normalizes the rows where they stand and is
# timed against it too; each of the two also with --jobs 2 (two writer sessions, tenants divided) on
# another copy. Ratio target for each: <= 1.5.
set -euo pipefail
ferry=${FERRY:-.build/release/ferry}
contacts=${BENCH_CONTACTS:-1000000}
. scripts/bench-common.sh
. scripts/naive-rows.sh
mapping=$(naive_mapping)
trap 'rm -f "$mapping"' EXIT

echo "bench-naive: generating $contacts contacts"
naive_database naive_base "$contacts" "$mapping"

start=$(now) cpu=$(cpu_now)
naive_backfill naive_base
backfill=$(seconds "$start" "$(now)") backfill_cpu=$(seconds "$cpu" "$(cpu_now)")
naive_rows=$(PGDATABASE=naive_base $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
settle naive_base
$psql -d postgres -c "DROP DATABASE IF EXISTS naive_ferry" -c "CREATE DATABASE naive_ferry TEMPLATE naive_base"
settle naive_ferry

start=$(now) cpu=$(cpu_now)
PGDATABASE=naive_ferry "$ferry" apply "$mapping" --no-progress --json >/tmp/ferry-bench-naive.json
apply=$(seconds "$start" "$(now)") apply_cpu=$(seconds "$cpu" "$(cpu_now)")
rss=$(grep -o '"peakResidentMegabytes" : [0-9.]*' /tmp/ferry-bench-naive.json | awk '{printf "%.0f", $3}')
replaced=$(grep -o '"naiveRowsReplaced" : [0-9]*' /tmp/ferry-bench-naive.json | awk '{print $3}')
deleted=$(grep -o '"naiveRowsDeleted" : [0-9]*' /tmp/ferry-bench-naive.json | awk '{print $3}')
rows=$(PGDATABASE=naive_ferry $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
bad=$(PGDATABASE=naive_ferry $psql -Atc "SELECT count(*) FROM (SELECT 1 FROM contact_phone_numbers GROUP BY tenant, contact_name_id HAVING count(*) FILTER (WHERE is_default) <> 1) x")
$psql -d postgres -c "DROP DATABASE naive_ferry"

$psql -d postgres -c "DROP DATABASE IF EXISTS naive_ferry2" -c "CREATE DATABASE naive_ferry2 TEMPLATE naive_base"
settle naive_ferry2
start=$(now) cpu=$(cpu_now)
PGDATABASE=naive_ferry2 "$ferry" apply "$mapping" --no-progress --jobs 2 --json >/tmp/ferry-bench-naive-jobs2.json
apply_jobs2=$(seconds "$start" "$(now)") apply_jobs2_cpu=$(seconds "$cpu" "$(cpu_now)")
rows_jobs2=$(PGDATABASE=naive_ferry2 $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
[ "$rows_jobs2" = "$rows" ] || { echo "bench-naive: --jobs 2 left $rows_jobs2 rows, one writer $rows" >&2; exit 1; }
$psql -d postgres -c "DROP DATABASE naive_ferry2"

# The application's next release drops the legacy column: the naive rows are the only copy, and ferry
# normalizes them where they stand (mappings/phones-in-place.yaml).
without_legacy_column naive_base naive_dropped
$psql -d postgres -c "DROP DATABASE IF EXISTS naive_in_place2" -c "CREATE DATABASE naive_in_place2 TEMPLATE naive_dropped"
$psql -d postgres -c "DROP DATABASE IF EXISTS naive_in_place" -c "CREATE DATABASE naive_in_place TEMPLATE naive_dropped"
settle naive_in_place
start=$(now) cpu=$(cpu_now)
PGDATABASE=naive_in_place "$ferry" apply mappings/phones-in-place.yaml --no-progress --json >/tmp/ferry-bench-in-place.json
in_place=$(seconds "$start" "$(now)") in_place_cpu=$(seconds "$cpu" "$(cpu_now)")
in_place_rss=$(grep -o '"peakResidentMegabytes" : [0-9.]*' /tmp/ferry-bench-in-place.json | awk '{printf "%.0f", $3}')
in_place_rows=$(PGDATABASE=naive_in_place $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
in_place_e164=$(PGDATABASE=naive_in_place $psql -Atc "SELECT count(*) FROM contact_phone_numbers WHERE phone_number ~ '^\+[1-9][0-9]{6,14}$'")
in_place_bad=$(PGDATABASE=naive_in_place $psql -Atc "SELECT count(*) FROM (SELECT 1 FROM contact_phone_numbers GROUP BY tenant, contact_name_id HAVING count(*) FILTER (WHERE is_default) <> 1) x")
$psql -d postgres -c "DROP DATABASE naive_in_place"
settle naive_in_place2
start=$(now) cpu=$(cpu_now)
PGDATABASE=naive_in_place2 "$ferry" apply mappings/phones-in-place.yaml --no-progress --jobs 2 --json >/dev/null
in_place_jobs2=$(seconds "$start" "$(now)") in_place_jobs2_cpu=$(seconds "$cpu" "$(cpu_now)")
in_place_rows_jobs2=$(PGDATABASE=naive_in_place2 $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
[ "$in_place_rows_jobs2" = "$in_place_rows" ] || { echo "bench-naive: in place --jobs 2 left $in_place_rows_jobs2 rows, one writer $in_place_rows" >&2; exit 1; }
$psql -d postgres -c "DROP DATABASE naive_in_place2" -c "DROP DATABASE naive_dropped" -c "DROP DATABASE naive_base"

# against_backfill SECONDS: SECONDS against the backfill's, and whether that meets issue 17's target.
against_backfill() {
    local value
    value=$(ratio "$1" "$backfill")
    if [ "$(echo "$value <= 1.5" | bc)" = 1 ]; then echo "$value (target <= 1.5: met)"; else echo "$value (target <= 1.5: not met)"; fi
}

cat <<REPORT
naive-rows benchmark, $contacts contacts, $(nproc) cores (CPU: the whole machine's busy time during each step)
  the application's naive backfill   $backfill s, CPU $backfill_cpu s ($naive_rows rows)
  ferry apply, replace_naive          $apply s, CPU $apply_cpu s ($replaced rewritten in place, $deleted deleted; $rows rows after; contacts without exactly one default: $bad; peak RSS $rss MB)
  ratio ferry / naive backfill        $(against_backfill "$apply")
  the same with --jobs 2              $apply_jobs2 s, CPU $apply_jobs2_cpu s, ratio $(against_backfill "$apply_jobs2")
  ferry apply, in place (no legacy)   $in_place s, CPU $in_place_cpu s ($in_place_rows rows after, $in_place_e164 in E.164, the rest kept as they were and reported; contacts without exactly one default: $in_place_bad; peak RSS $in_place_rss MB)
  ratio in place / naive backfill     $(against_backfill "$in_place")
  the same with --jobs 2              $in_place_jobs2 s, CPU $in_place_jobs2_cpu s, ratio $(against_backfill "$in_place_jobs2")
  CPU the 1.5 target leaves           $(cpu_allowed "$backfill") s (1.5 x the backfill's time on $(nproc) cores): a step that used more cannot meet it on this machine
REPORT
