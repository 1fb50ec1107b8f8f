#!/usr/bin/env bash
# One tenant, one writer against two: BENCH_CONTACTS contacts (default 1,000,000) over the generator's
# three tenants, the application's naive backfill written, then for one tenant (`--tenant`)
# `ferry apply` with existing_rows: replace_naive and, on a copy with the legacy column dropped, in
# place, each with --jobs 1 and --jobs 2 (two writers dividing the tenant's contacts into slices),
# alternating over BENCH_ROUNDS rounds (default 2). The rows written must be the same.
#   make bench-one-tenant
set -euo pipefail
ferry=${FERRY:-.build/release/ferry}
contacts=${BENCH_CONTACTS:-1000000}
rounds=${BENCH_ROUNDS:-2}
tenant=00000000-0000-4000-8000-000000000001
. scripts/bench-common.sh
. scripts/naive-rows.sh
mapping=$(naive_mapping)
trap 'rm -f "$mapping"' EXIT

echo "bench-one-tenant: generating $contacts contacts"
naive_database one_base "$contacts" "$mapping"
naive_backfill one_base
settle one_base
without_legacy_column one_base one_dropped
tenant_contacts=$(PGDATABASE=one_base $psql -Atc "SELECT count(*) FROM contacts WHERE tenant = '$tenant'")

report="" declare -A rows
for round in $(seq 1 "$rounds"); do
    order=(1 2)
    [ $((round % 2)) -eq 0 ] && order=(2 1)
    for jobs in "${order[@]}"; do
        for kind in replace_naive in_place; do
            template=one_base form=$mapping
            [ $kind = in_place ] && template=one_dropped form=mappings/phones-in-place.yaml
            $psql -d postgres -c "DROP DATABASE IF EXISTS one_run" -c "CREATE DATABASE one_run TEMPLATE $template"
            settle one_run
            start=$(now)
            PGDATABASE=one_run "$ferry" apply "$form" --tenant $tenant --jobs "$jobs" --no-progress --json >/dev/null
            taken=$(seconds "$start" "$(now)")
            written=$(PGDATABASE=one_run $psql -Atc "SELECT md5(string_agg(contact_name_id || phone_number, ',' ORDER BY contact_name_id, display_order)) FROM contact_phone_numbers WHERE tenant = '$tenant'")
            if [ -n "${rows[$kind]:-}" ] && [ "${rows[$kind]}" != "$written" ]; then
                echo "bench-one-tenant: $kind with --jobs $jobs wrote other rows than before" >&2
                exit 1
            fi
            rows[$kind]=$written
            report+=$(printf '\n  round %d  %-13s --jobs %d  %6.2f s' "$round" "$kind" "$jobs" "$taken")
        done
    done
done
$psql -d postgres -c "DROP DATABASE one_run" -c "DROP DATABASE one_dropped" -c "DROP DATABASE one_base"

cat <<REPORT

one-tenant benchmark: tenant $tenant, $tenant_contacts of $contacts contacts, $(nproc) cores, $rounds rounds (the same rows in every run)$report
REPORT
