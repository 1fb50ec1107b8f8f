#!/usr/bin/env bash
# The main job on a throwaway database loaded from samples/: schema, plan, apply, verify.
set -euo pipefail
ferry=${FERRY:-.build/debug/ferry}
psql=/usr/lib/postgresql/15/bin/psql
export PGDATABASE=ferry_demo
"$psql" -q -d postgres -c "CREATE DATABASE ferry_demo"
"$psql" -q -v ON_ERROR_STOP=1 -f samples/schema.sql
for table in tenants clients contacts projects service_requests; do
    "$psql" -q -v ON_ERROR_STOP=1 -c "\\copy $table FROM 'samples/small/$table.csv' WITH (FORMAT csv, HEADER)"
done
"$psql" -q -c "ANALYZE"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step "$ferry" schema apply mappings/phones.yaml --snapshot-dir out/snapshots
step "$ferry" doctor mappings/phones.yaml
step "$ferry" plan mappings/phones.yaml
step "$ferry" apply mappings/phones.yaml
step "$ferry" apply mappings/phones.yaml
printf '\n\033[1mVerification\033[0m\n'
"$psql" -v ON_ERROR_STOP=1 <<'SQL'
SELECT count(*) AS contacts_with_phones,
       count(*) FILTER (WHERE defaults = 1) AS with_exactly_one_default
FROM (SELECT tenant, contact_name_id, count(*) FILTER (WHERE is_default) AS defaults
      FROM contact_phone_numbers GROUP BY 1, 2) per_contact;
SELECT c.phone_number AS legacy_value, p.phone_number, p.extension,
       coalesce(p.canonical_type, t.label) AS type, p.is_default, p.display_order
FROM contacts c
JOIN contact_phone_numbers p USING (tenant, contact_name_id)
LEFT JOIN contact_phone_type_definitions t
       ON t.tenant = p.tenant AND t.contact_phone_type_id = p.custom_phone_type_id
WHERE c.phone_number ~ '[A-Za-z/,]'
ORDER BY c.contact_name_id, p.display_order
LIMIT 16;
SQL

printf '\n\033[1mThe nightly CSV import, and the export\033[0m\n'
rejects=$(mktemp /tmp/ferry-demo-rejects.XXXXXX.csv)
export_file=$(mktemp /tmp/ferry-demo-export.XXXXXX.csv)
status=0
step "$ferry" schema apply mappings/contacts-csv.yaml --snapshot-dir out/snapshots
step "$ferry" import samples/import/partner-contacts.csv --dry-run --rejects "$rejects" || status=$?
[ "$status" -eq 4 ] || { echo "expected exit 4 (rows rejected), got $status" >&2; exit 1; }
status=0
step "$ferry" import samples/import/partner-contacts.csv --rejects "$rejects" || status=$?
[ "$status" -eq 4 ] || { echo "expected exit 4 (rows rejected), got $status" >&2; exit 1; }
printf '\n\033[1m$ cat %s\033[0m\n' "$rejects"
cat "$rejects"
step "$ferry" export -o "$export_file"
# Round trip: nothing is inserted or updated. The samples hold contacts whose emails differ only in case
# (a case-sensitive application allowed them); the import will not guess between two such contacts and
# rejects those lines as ambiguous (exit 4), changing nothing.
status=0
step "$ferry" import "$export_file" --rejects "$rejects" || status=$?
[ "$status" -eq 4 ] || { echo "expected exit 4 (ambiguous case twins rejected), got $status" >&2; exit 1; }
rm -f "$rejects" "$export_file"

printf '\n\033[1mOrganizations as customers, and work owned by companies\033[0m\n'
for job in customers service-requests; do
    step "$ferry" schema apply "mappings/$job.yaml" --snapshot-dir out/snapshots
    step "$ferry" plan "mappings/$job.yaml" --report "out/$job-plan.md"
    step "$ferry" apply "mappings/$job.yaml"
done
"$psql" -v ON_ERROR_STOP=1 <<'SQL'
SELECT p.title, o.client_name AS customer_organization, o.organization_type, c.full_name AS contact_point, cp.role
FROM projects p JOIN clients o ON (o.tenant, o.client_id) = (p.tenant, p.customer_organization_id)
JOIN project_contact_points cp ON (cp.tenant, cp.project_id) = (p.tenant, p.project_id)
JOIN contacts c ON (c.tenant, c.contact_name_id) = (cp.tenant, cp.contact_name_id)
ORDER BY o.organization_type DESC, p.title LIMIT 8;
SELECT status, count(*), count(submitted_by_contact_id) AS with_submitter, count(fleet_company_id) AS with_fleet_company
FROM service_requests GROUP BY 1 ORDER BY 2 DESC;
SQL
# Undo both, newest first: the service requests now point at organizations the customers run created,
# so rolling back the customers run alone would leave those (listed as still referenced, exit 3).
for job in service-requests customers; do
    run=$("$psql" -Atc "SELECT max(run_id) FROM ferry.runs WHERE job = '$job' AND mode = 'apply'")
    step "$ferry" rollback "$run" --yes
done
step "$ferry" apply mappings/customers.yaml
step "$ferry" apply mappings/service-requests.yaml

printf '\n\033[1mThe second half: contract (drop contacts.phone_number once every value is migrated), and its undo\033[0m\n'
# The customers and service-requests runs changed contact rows after the phones apply; rows last written
# by ferry's own batches do not count as changed legacy values.
unmigrated=$(mktemp /tmp/ferry-demo-unmigrated.XXXXXX.csv)
status=0
step "$ferry" contract mappings/phones.yaml --confirm --unmigrated-out "$unmigrated" || status=$?
[ "$status" -eq 5 ] || { echo "expected exit 5 (contract refused: unmigrated values), got $status" >&2; exit 1; }
printf '\n\033[1m$ head -4 %s\033[0m\n' "$unmigrated"
head -4 "$unmigrated"
step "$ferry" contract mappings/phones.yaml --confirm --accept-rejected "$unmigrated" --unmigrated-out "$unmigrated.now"
contract_run=$("$psql" -Atc "SELECT max(run_id) FROM ferry.runs WHERE mode = 'contract' AND status = 'succeeded'")
step "$ferry" rollback "$contract_run" --yes
"$psql" -v ON_ERROR_STOP=1 -c "SELECT count(*) FILTER (WHERE phone_number IS NOT NULL) AS legacy_values_restored FROM contacts"
rm -f "$unmigrated" "$unmigrated.now"
