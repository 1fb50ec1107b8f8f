#!/usr/bin/env bash
# Regenerates samples/small/*.csv (2,000 contacts and 1,000 projects in 3 tenants) with the deterministic generator.
# Run through scripts/with-cluster.sh: make samples
set -euo pipefail
psql="/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1"
$psql -d postgres -c "DROP DATABASE IF EXISTS ferry_samples" -c "CREATE DATABASE ferry_samples"
export PGDATABASE=ferry_samples
$psql -f samples/schema.sql
$psql -v contacts=2000 -f samples/generate.sql
for table in tenants clients contacts projects service_requests; do
    $psql -c "\\copy (SELECT * FROM $table ORDER BY 1, 2) TO 'samples/small/$table.csv' WITH (FORMAT csv, HEADER)"
done
wc -l samples/small/*.csv
