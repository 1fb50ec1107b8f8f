#!/usr/bin/env bash
# Old binary against new on the phones benchmark, alternating in every round so that a noisy moment
# hurts both: for each round (default 4: as many rounds with old first as with new first), two fresh copies of one generated database, then on them
#   the naive SQL backfill (the reference), old plan, new plan, old apply, new apply,
# with the order of old and new swapped every other round. Prints each binary's median
# apply/naive and plan/apply and the median new/old ratio of each step.
#   FERRY_OLD=/path/to/old/ferry FERRY=/path/to/new/ferry scripts/with-cluster.sh scripts/bench-compare.sh
set -euo pipefail
old=${FERRY_OLD:?FERRY_OLD names the binary to compare against (make bench-compare BASE=commit builds it)}
new=${FERRY:-.build/release/ferry}
contacts=${BENCH_CONTACTS:-1000000}
rounds=${BENCH_ROUNDS:-4}
. scripts/bench-common.sh

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Three decimals: the medians of several rounds differ in the third.
precise_ratio() { echo "$1 / $2" | bc -l | xargs printf '%.3f'; }
timed() { local start; start=$(now); "$@" >/dev/null; seconds "$start" "$(now)"; }

echo "bench-compare: generating $contacts contacts"
$psql -d postgres -c "DROP DATABASE IF EXISTS compare_base" -c "CREATE DATABASE compare_base"
PGDATABASE=compare_base $psql -f samples/schema.sql
PGDATABASE=compare_base $psql -v contacts="$contacts" -f samples/generate.sql
PGDATABASE=compare_base "$new" schema apply mappings/phones.yaml --snapshot-dir "$bench_snapshots" >/dev/null
settle compare_base

declare -A apply_naive plan_apply
old_new_apply=() old_new_plan=() report=""
for round in $(seq 1 "$rounds"); do
    order=(old new)
    [ $((round % 2)) -eq 0 ] && order=(new old)
    for db in compare_naive compare_old compare_new; do
        $psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db TEMPLATE compare_base"
    done
    settle postgres
    start=$(now)
    PGDATABASE=compare_naive $psql -c "INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order)
        SELECT tenant, contact_name_id, btrim(phone_number), 'work', true, 0 FROM contacts WHERE btrim(phone_number) <> ''"
    naive=$(seconds "$start" "$(now)")
    declare -A plan apply
    # Both plans, then both applies (a plan changes nothing, so each binary's apply finds the same data).
    for step in plan apply; do
        for which in "${order[@]}"; do
            binary=$old
            [ "$which" = new ] && binary=$new
            # Both copies settled: autovacuum would otherwise still be working on the copy the other
            # binary just wrote, on the same cores, and every second run of a round paid for it.
            settle compare_old
            settle compare_new
            seconds_taken=$(PGDATABASE=compare_$which timed "$binary" "$step" mappings/phones.yaml --no-progress --json)
            if [ "$step" = plan ]; then plan[$which]=$seconds_taken; else apply[$which]=$seconds_taken; fi
        done
    done
    rows_old=$(PGDATABASE=compare_old $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
    rows_new=$(PGDATABASE=compare_new $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
    [ "$rows_old" = "$rows_new" ] || { echo "bench-compare: old wrote $rows_old rows, new $rows_new" >&2; exit 1; }
    for which in old new; do
        apply_naive[$which]+="$(precise_ratio "${apply[$which]}" "$naive") "
        plan_apply[$which]+="$(precise_ratio "${plan[$which]}" "${apply[$which]}") "
    done
    old_new_apply+=("$(precise_ratio "${apply[new]}" "${apply[old]}")")
    old_new_plan+=("$(precise_ratio "${plan[new]}" "${plan[old]}")")
    report+=$(printf '\n  round %d (%s first): naive %6.2f s | plan old %6.2f new %6.2f | apply old %6.2f new %6.2f | %s rows' \
        "$round" "${order[0]}" "$naive" "${plan[old]}" "${plan[new]}" "${apply[old]}" "${apply[new]}" "$rows_new")
    echo "bench-compare: round $round done"
done
$psql -d postgres -c "DROP DATABASE compare_naive" -c "DROP DATABASE compare_old" -c "DROP DATABASE compare_new" \
    -c "DROP DATABASE compare_base"

cat <<REPORT

phones benchmark, old $old against new $new: $contacts contacts, $(nproc) cores, $rounds rounds$report

                          old      new
  median apply / naive    $(echo ${apply_naive[old]} | tr ' ' '\n' | median)    $(echo ${apply_naive[new]} | tr ' ' '\n' | median)
  median plan / apply     $(echo ${plan_apply[old]} | tr ' ' '\n' | median)    $(echo ${plan_apply[new]} | tr ' ' '\n' | median)
  median new / old: apply $(printf '%s\n' "${old_new_apply[@]}" | median), plan $(printf '%s\n' "${old_new_plan[@]}" | median)
REPORT
