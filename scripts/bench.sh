#!/usr/bin/env bash
# The phones benchmark: N legacy contacts (default 1,000,000), two identical copies of the database,
# (a) the naive SQL backfill an app would write by hand, (b) ferry apply with full normalization,
# and ferry plan on the same data. Prints both times, their ratio and ferry's peak RSS.
set -euo pipefail
ferry=${FERRY:-.build/release/ferry}
contacts=${BENCH_CONTACTS:-1000000}
psql="/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1"

now() { date +%s.%N; }
seconds() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }

echo "bench: generating $contacts contacts"
$psql -d postgres -c "CREATE DATABASE bench_naive"
PGDATABASE=bench_naive $psql -f samples/schema.sql
PGDATABASE=bench_naive $psql -v contacts="$contacts" -f samples/generate.sql
PGDATABASE=bench_naive "$ferry" schema apply mappings/phones.yaml >/dev/null
$psql -d postgres -c "CHECKPOINT" -c "CREATE DATABASE bench_ferry TEMPLATE bench_naive"
PGDATABASE=bench_naive $psql -c "VACUUM ANALYZE"
PGDATABASE=bench_ferry $psql -c "VACUUM ANALYZE"

echo "bench: (a) naive SQL backfill"
start=$(now)
PGDATABASE=bench_naive $psql <<'SQL'
INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order)
SELECT tenant, contact_name_id, btrim(phone_number), 'work', true, 0
FROM contacts WHERE btrim(phone_number) <> '';
SQL
naive=$(seconds "$start" "$(now)")
naive_rows=$(PGDATABASE=bench_naive $psql -Atc "SELECT count(*) FROM contact_phone_numbers")

echo "bench: (c) ferry plan"
start=$(now)
PGDATABASE=bench_ferry "$ferry" plan mappings/phones.yaml --no-progress --json >/tmp/ferry-bench-plan.json
plan=$(seconds "$start" "$(now)")

echo "bench: (b) ferry apply"
start=$(now)
PGDATABASE=bench_ferry "$ferry" apply mappings/phones.yaml --no-progress --json >/tmp/ferry-bench-apply.json
apply=$(seconds "$start" "$(now)")
ferry_rows=$(PGDATABASE=bench_ferry $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
rss=$(grep -o '"peakResidentMegabytes" : [0-9.]*' /tmp/ferry-bench-apply.json | awk '{printf "%.0f", $3}')
plan_rss=$(grep -o '"peakResidentMegabytes" : [0-9.]*' /tmp/ferry-bench-plan.json | awk '{printf "%.0f", $3}')
adds_up=$(PGDATABASE=bench_ferry $psql -Atc "SELECT count(*) FROM (SELECT tenant, contact_name_id FROM contact_phone_numbers GROUP BY 1,2 HAVING count(*) FILTER (WHERE is_default) <> 1) x")

cat <<REPORT

phones benchmark, $contacts contacts, $(nproc) cores
  (a) naive SQL backfill       ${naive} s   ($naive_rows rows, no normalization)
  (b) ferry apply              ${apply} s   ($ferry_rows rows, E.164, types, splits, one default each)
      ratio (b)/(a)            $(echo "$apply / $naive" | bc -l | xargs printf '%.2f')   (target <= 1.5, goal 1.25)
      ferry peak RSS           ${rss} MB   (target <= 150 MB, goal 100 MB)
      contacts without exactly one default: $adds_up
  (c) ferry plan               ${plan} s   (peak RSS ${plan_rss} MB)
      ratio (c)/(b)            $(echo "$plan / $apply" | bc -l | xargs printf '%.2f')   (issue 4 target <= 0.5)
REPORT
