#!/usr/bin/env bash
# Old binary against new on the CSV import (run through scripts/with-cluster.sh; `make bench-compare-import
# BASE=commit`): BENCH_IMPORT_ROWS generated rows (default 200,000) as the generator's CSV, imported
# BENCH_ROUNDS times (default 3) by each binary, alternating, each time into a fresh copy of the same
# database (tenants and organizations, no contacts). Prints each run and the medians.
set -euo pipefail
old=${FERRY_OLD:?the older binary}
new=${FERRY:-.build/release/ferry}
rows=${BENCH_IMPORT_ROWS:-200000}
rounds=${BENCH_ROUNDS:-3}
. scripts/bench-common.sh
work=$(mktemp -d /tmp/ferry-compare-import.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

$psql -d postgres -c "DROP DATABASE IF EXISTS compare_import_base" -c "CREATE DATABASE compare_import_base"
PGDATABASE=compare_import_base $psql -f samples/schema.sql
PGDATABASE=compare_import_base $psql -v contacts="$rows" -f samples/generate.sql
PGDATABASE=compare_import_base $psql -c "\\copy (SELECT c.tenant AS \"Tenant\", c.full_name AS \"Full Name\", c.country AS \"Country\", c.email AS \"Email\", cl.client_name AS \"Company\", c.role AS \"Title\", c.phone_number AS \"Office Phone\", NULL AS \"Mobile\", c.notes AS \"Notes\" FROM contacts c LEFT JOIN clients cl USING (tenant, client_id) ORDER BY c.created_at) TO '$work/contacts.csv' WITH (FORMAT csv, HEADER)"
PGDATABASE=compare_import_base $psql -c "TRUNCATE contacts CASCADE"
PGDATABASE=compare_import_base "$new" schema apply mappings/contacts-csv.yaml --snapshot-dir "$bench_snapshots" >/dev/null
PGDATABASE=compare_import_base $psql -c "VACUUM ANALYZE"

: >"$work/old.times"
: >"$work/new.times"
for round in $(seq 1 "$rounds"); do
    for which in old new; do
        binary=$old
        [ "$which" = new ] && binary=$new
        $psql -d postgres -c "DROP DATABASE IF EXISTS compare_import_run" \
            -c "CREATE DATABASE compare_import_run TEMPLATE compare_import_base" -c "CHECKPOINT"
        start=$(now)
        PGDATABASE=compare_import_run "$binary" import "$work/contacts.csv" --mapping mappings/contacts-csv.yaml \
            --no-progress --json --rejects "$work/rejects-$which.csv" >"$work/$which.json" || [ $? -eq 4 ]
        seconds=$(echo "$(now) - $start" | bc -l | xargs printf '%.2f')
        echo "$seconds" >>"$work/$which.times"
        echo "round $round $which $seconds s ($(grep -o '"inserted" : [0-9]*' "$work/$which.json" | head -1))"
    done
done
cmp -s "$work/rejects-old.csv" "$work/rejects-new.csv" && same="the same reject file" || same="REJECT FILES DIFFER"
old_median=$(median <"$work/old.times")
new_median=$(median <"$work/new.times")
$psql -d postgres -c "DROP DATABASE compare_import_run" -c "DROP DATABASE compare_import_base"
cat <<REPORT

CSV import, old against new binary, $rows rows, $rounds rounds alternating, $(nproc) cores ($same)
  old median   $old_median s
  new median   $new_median s
  new / old    $(echo "$new_median / $old_median" | bc -l | xargs printf '%.3f')
REPORT
