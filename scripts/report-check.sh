#!/usr/bin/env bash
# Renders the HTML plan reports of the sample database (phones, customers, service requests, and the
# import's dry run of the sample partner file) in headless
# Chromium at 1280 px and saves screenshots (out/report.png, out/report-customers.png,
# out/report-service-requests.png), so a person can see what a DBA will see. Fails if any step fails.
set -euo pipefail
ferry=${FERRY:-.build/debug/ferry}
psql="/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1"
mkdir -p out
export PGDATABASE=ferry_report
$psql -d postgres -c "CREATE DATABASE ferry_report"
$psql -f samples/schema.sql
for table in tenants clients contacts projects service_requests; do
    $psql -c "\\copy $table FROM 'samples/small/$table.csv' WITH (FORMAT csv, HEADER)"
done
chromium=$(command -v chromium || command -v chromium-browser)
for job in phones customers service-requests; do
    name=report; [ "$job" = phones ] || name="report-$job"
    "$ferry" schema apply "mappings/$job.yaml" --snapshot-dir out/snapshots >/dev/null
    "$ferry" plan "mappings/$job.yaml" --report "out/$name.html" >/dev/null
    # Chromium's sandbox needs user namespaces that a root CI shell may not have.
    # Tall enough for the whole phones report (its SQL appendix and sign-off block come last).
    "$chromium" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,7000 \
        --screenshot="$PWD/out/$name.png" "file://$PWD/out/$name.html" >/dev/null 2>&1
    test -s "out/$name.png"
    echo "report: out/$name.html, screenshot: out/$name.png ($(stat -c %s "out/$name.png") bytes)"
done
# The import's dry-run report of the sample partner file, the same way.
"$ferry" schema apply mappings/contacts-csv.yaml --snapshot-dir out/snapshots >/dev/null
"$ferry" import samples/import/partner-contacts.csv --dry-run --rejects out/partner.rejects.csv \
    --report out/report-import.html >/dev/null || [ $? -eq 4 ]
"$chromium" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,7000 \
    --screenshot="$PWD/out/report-import.png" "file://$PWD/out/report-import.html" >/dev/null 2>&1
test -s out/report-import.png
grep -q "COPY ferry_import_rows" out/report-import.html
echo "report: out/report-import.html, screenshot: out/report-import.png ($(stat -c %s out/report-import.png) bytes)"
