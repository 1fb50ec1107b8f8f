#!/usr/bin/env bash
# The CSV import benchmark. Makes a contacts CSV with the generator's messy phones (default 1,000,000
# rows, plus a 100,000-row one for the memory comparison), then, in the same script and on the same
# cluster, times: psql \copy into a flat table, pgloader into the same flat table, the SQL a DBA would
# write by hand to load the same file into the same normalized tables without phone normalization (the
# reference: \copy into staging, INSERT … ON CONFLICT into contacts by tenant and lower(email), the
# btrim'd office phone as a default work row), and ferry import into the normalized tables (E.164,
# extensions, splits, types, one default, upsert by tenant and email, snapshots for rollback).
set -euo pipefail
ferry=${FERRY:-.build/release/ferry}
rows=${BENCH_IMPORT_ROWS:-1000000}
small=$((rows / 10))
. scripts/bench-common.sh
command -v pgloader >/dev/null || { echo "bench-import: pgloader is not installed (make bench-import installs it)" >&2; exit 1; }
work=$(mktemp -d /tmp/ferry-bench-import.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT


make_csv() {  # $1 rows, $2 file
    $psql -d postgres -c "DROP DATABASE IF EXISTS bench_csv_source" -c "CREATE DATABASE bench_csv_source"
    PGDATABASE=bench_csv_source $psql -f samples/schema.sql
    PGDATABASE=bench_csv_source $psql -v contacts="$1" -f samples/generate.sql
    PGDATABASE=bench_csv_source $psql -c "\\copy (SELECT c.tenant AS \"Tenant\", c.full_name AS \"Full Name\", c.country AS \"Country\", c.email AS \"Email\", cl.client_name AS \"Company\", c.role AS \"Title\", c.phone_number AS \"Office Phone\", NULL AS \"Mobile\", c.notes AS \"Notes\" FROM contacts c LEFT JOIN clients cl USING (tenant, client_id) ORDER BY c.created_at) TO '$2' WITH (FORMAT csv, HEADER)"
}

target_db() {  # $1 name: tenants and organizations of the generator, the normalized tables, no contacts
    $psql -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1 TEMPLATE bench_csv_source"
    PGDATABASE=$1 $psql -c "TRUNCATE contacts CASCADE"
    PGDATABASE=$1 "$ferry" schema apply mappings/contacts-csv.yaml --snapshot-dir "$bench_snapshots" >/dev/null
    settle "$1"
}

flat_db() {
    $psql -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
    PGDATABASE=$1 $psql -c "CREATE TABLE flat (tenant text, full_name text, country text, email text, company text, title text, office_phone text, mobile text, notes text)"
}

ferry_import() {  # $1 db, $2 file, $3 json out
    PGDATABASE=$1 "$ferry" import "$2" --no-progress --json --rejects "$work/rejects.csv" >"$3" || [ $? -eq 4 ]
}

json_number() { grep -o "\"$1\" : [0-9.]*" "$2" | awk '{printf "%.0f", $3}'; }

echo "bench-import: making a $small-row CSV"
make_csv "$small" "$work/small.csv"
target_db bench_import_small
ferry_import bench_import_small "$work/small.csv" "$work/small.json"
small_rss=$(json_number peakResidentMegabytes "$work/small.json")

echo "bench-import: making a $rows-row CSV"
make_csv "$rows" "$work/contacts.csv"
bytes=$(stat -c %s "$work/contacts.csv")

flat_db bench_flat_psql
start=$(now)
PGDATABASE=bench_flat_psql $psql -c "\\copy flat FROM '$work/contacts.csv' WITH (FORMAT csv, HEADER)"
psql_seconds=$(seconds "$start" "$(now)")

flat_db bench_flat_pgloader
cat >"$work/load.pgl" <<LOAD
LOAD CSV FROM '$work/contacts.csv'
     (tenant, full_name, country, email, company, title, office_phone, mobile, notes)
INTO postgresql://${PGUSER}@${PGHOST}:${PGPORT}/bench_flat_pgloader?flat
     (tenant, full_name, country, email, company, title, office_phone, mobile, notes)
WITH skip header = 1, fields optionally enclosed by '"', fields escaped by double-quote, fields terminated by ','
SET client_encoding TO 'utf8';
LOAD
start=$(now)
pgloader --quiet "$work/load.pgl" >"$work/pgloader.log" 2>&1 || { echo "bench-import: pgloader failed:" >&2; cat "$work/pgloader.log" >&2; exit 1; }
pgloader_seconds=$(seconds "$start" "$(now)")
pgloader_rows=$(PGDATABASE=bench_flat_pgloader $psql -Atc "SELECT count(*) FROM flat")

target_db bench_import_sql
start=$(now)
PGDATABASE=bench_import_sql $psql <<SQL
BEGIN;
CREATE TEMP TABLE staging (tenant text, full_name text, country text, email text, company text, title text,
                           office_phone text, mobile text, notes text) ON COMMIT DROP;
\copy staging FROM '$work/contacts.csv' WITH (FORMAT csv, HEADER)
INSERT INTO contacts (tenant, contact_name_id, full_name, email, client_id, role, notes)
SELECT DISTINCT ON (s.tenant, lower(btrim(s.email)))
       s.tenant::uuid, gen_random_uuid(), s.full_name, lower(btrim(s.email)), o.client_id, s.title, s.notes
FROM staging s
LEFT JOIN LATERAL (SELECT c.client_id FROM clients c
                   WHERE c.tenant = s.tenant::uuid AND lower(c.client_name) = lower(btrim(s.company)) LIMIT 1) o ON true
WHERE btrim(s.email) LIKE '%_@_%' AND s.full_name IS NOT NULL
ORDER BY s.tenant, lower(btrim(s.email))
ON CONFLICT (tenant, email) DO UPDATE
    SET full_name = EXCLUDED.full_name, client_id = EXCLUDED.client_id, role = EXCLUDED.role, notes = EXCLUDED.notes,
        updated_at = now();
INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order)
SELECT DISTINCT ON (c.tenant, c.contact_name_id) c.tenant, c.contact_name_id, btrim(s.office_phone), 'work', true, 0
FROM staging s JOIN contacts c ON c.tenant = s.tenant::uuid AND c.email = lower(btrim(s.email))
WHERE btrim(s.office_phone) <> ''
ORDER BY c.tenant, c.contact_name_id
ON CONFLICT DO NOTHING;
COMMIT;
SQL
sql_seconds=$(seconds "$start" "$(now)")
sql_contacts=$(PGDATABASE=bench_import_sql $psql -Atc "SELECT count(*) FROM contacts")
sql_phones=$(PGDATABASE=bench_import_sql $psql -Atc "SELECT count(*) FROM contact_phone_numbers")

target_db bench_import_ferry
start=$(now)
ferry_import bench_import_ferry "$work/contacts.csv" "$work/ferry.json"
ferry_seconds=$(seconds "$start" "$(now)")
rss=$(json_number peakResidentMegabytes "$work/ferry.json")
read=$(json_number rowsRead "$work/ferry.json")
inserted=$(json_number inserted "$work/ferry.json")
rejected=$(json_number rejected "$work/ferry.json")
phones=$(PGDATABASE=bench_import_ferry $psql -Atc "SELECT count(*) FROM contact_phone_numbers")

# The same import with two writer sessions, each taking its share of the file's contacts.
target_db bench_import_jobs
start=$(now)
PGDATABASE=bench_import_jobs "$ferry" import "$work/contacts.csv" --jobs 2 --no-progress --json --rejects "$work/rejects-jobs.csv" >"$work/jobs.json" || [ $? -eq 4 ]
jobs_seconds=$(seconds "$start" "$(now)")
jobs_rss=$(json_number peakResidentMegabytes "$work/jobs.json")
jobs_phones=$(PGDATABASE=bench_import_jobs $psql -Atc "SELECT count(*) FROM contact_phone_numbers")
same_rejects=$(cmp -s "$work/rejects.csv" "$work/rejects-jobs.csv" && echo "the same reject file" || echo "REJECT FILES DIFFER")

cat <<REPORT

CSV import benchmark, $rows rows ($bytes bytes), $(nproc) cores
  psql \\copy into a flat table     $psql_seconds s
  pgloader into the same table     $pgloader_seconds s ($pgloader_rows rows)
  hand-written SQL, same tables    $sql_seconds s ($sql_contacts contacts, $sql_phones phone rows; no normalization, no snapshots)
  ferry import, normalized         $ferry_seconds s (read $read, inserted $inserted, rejected $rejected; $phones phone rows; peak RSS $rss MB)
  ferry import --jobs 2            $jobs_seconds s ($jobs_phones phone rows, $same_rejects; peak RSS $jobs_rss MB)
  ratio ferry import / hand SQL    $(ratio "$ferry_seconds" "$sql_seconds")   (issue 15 target <= 1.5, goal 1.25)
  ratio --jobs 2 / hand SQL        $(ratio "$jobs_seconds" "$sql_seconds")
  ratio ferry import / pgloader    $(ratio "$ferry_seconds" "$pgloader_seconds")   (context: a flat table)
  peak RSS $rows rows / $small rows   $rss MB / $small_rss MB   (target <= 100 MB, within 20%)
REPORT
