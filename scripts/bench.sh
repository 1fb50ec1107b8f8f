#!/usr/bin/env bash
# The phones benchmark. Generates N legacy contacts (default 1,000,000) once, then for each round
# (default 3) makes two identical copies of that database and times, on the copies:
#   (a) the naive SQL backfill an app would write by hand,
#   (b) ferry apply with full normalization,
#   (c) ferry plan on the same data.
# Rounds interleave (a) and (b), so a noisy neighbour hurts both; the median ratio is the figure.
set -euo pipefail
ferry=${FERRY:-.build/release/ferry}
contacts=${BENCH_CONTACTS:-1000000}
rounds=${BENCH_ROUNDS:-3}
. scripts/bench-common.sh

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "bench: generating $contacts contacts"
$psql -d postgres -c "CREATE DATABASE bench_base"
PGDATABASE=bench_base $psql -f samples/schema.sql
PGDATABASE=bench_base $psql -v contacts="$contacts" -f samples/generate.sql
PGDATABASE=bench_base "$ferry" schema apply mappings/phones.yaml --snapshot-dir "$bench_snapshots" >/dev/null
settle bench_base

ratios=() plan_ratios=() report=""
for round in $(seq 1 "$rounds"); do
    $psql -d postgres -c "DROP DATABASE IF EXISTS bench_naive" -c "DROP DATABASE IF EXISTS bench_ferry" \
        -c "CREATE DATABASE bench_naive TEMPLATE bench_base" -c "CREATE DATABASE bench_ferry TEMPLATE bench_base"
    settle postgres

    start=$(now)
    PGDATABASE=bench_naive $psql <<'SQL'
INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order)
SELECT tenant, contact_name_id, btrim(phone_number), 'work', true, 0
FROM contacts WHERE btrim(phone_number) <> '';
SQL
    naive=$(seconds "$start" "$(now)")
    naive_rows=$(PGDATABASE=bench_naive $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
    settle bench_naive

    start=$(now)
    PGDATABASE=bench_ferry "$ferry" plan mappings/phones.yaml --no-progress --json >/tmp/ferry-bench-plan.json
    plan=$(seconds "$start" "$(now)")
    settle bench_ferry

    start=$(now)
    PGDATABASE=bench_ferry "$ferry" apply mappings/phones.yaml --no-progress --json >/tmp/ferry-bench-apply.json
    apply=$(seconds "$start" "$(now)")
    ferry_rows=$(PGDATABASE=bench_ferry $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
    bad_defaults=$(PGDATABASE=bench_ferry $psql -Atc "SELECT count(*) FROM (SELECT 1 FROM contact_phone_numbers GROUP BY tenant, contact_name_id HAVING count(*) FILTER (WHERE is_default) <> 1) x")
    rss=$(grep -o '"peakResidentMegabytes" : [0-9.]*' /tmp/ferry-bench-apply.json | awk '{printf "%.0f", $3}')
    plan_rss=$(grep -o '"peakResidentMegabytes" : [0-9.]*' /tmp/ferry-bench-plan.json | awk '{printf "%.0f", $3}')
    ratio=$(ratio "$apply" "$naive")
    plan_ratio=$(ratio "$plan" "$apply")
    ratios+=("$ratio") plan_ratios+=("$plan_ratio")
    report+=$(printf '\n  round %d: naive %6.2f s (%s rows) | ferry apply %6.2f s (%s rows, RSS %s MB, contacts without exactly one default: %s) | ratio %s | plan %6.2f s (RSS %s MB), plan/apply %s' \
        "$round" "$naive" "$naive_rows" "$apply" "$ferry_rows" "$rss" "$bad_defaults" "$ratio" "$plan" "$plan_rss" "$plan_ratio")
    echo "bench: round $round: naive $naive s, ferry apply $apply s, ratio $ratio"
done

cat <<REPORT

phones benchmark, $contacts contacts, $(nproc) cores, $rounds rounds$report

  median ratio ferry apply / naive SQL   $(printf '%s\n' "${ratios[@]}" | median)   (issue 2 target <= 1.5, goal 1.25)
  median ratio ferry plan / ferry apply  $(printf '%s\n' "${plan_ratios[@]}" | median)   (issue 4 target <= 0.5)
REPORT
