#!/usr/bin/env bash
# Renders the HTML plan report of the sample database in headless Chromium at 1280 px and saves a
# screenshot (out/report.png), so a person can see what a DBA will see. Fails if any step fails.
set -euo pipefail
ferry=${FERRY:-.build/debug/ferry}
psql="/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1"
mkdir -p out
export PGDATABASE=ferry_report
$psql -d postgres -c "CREATE DATABASE ferry_report"
$psql -f samples/schema.sql
for table in tenants clients contacts; do
    $psql -c "\\copy $table FROM 'samples/small/$table.csv' WITH (FORMAT csv, HEADER)"
done
"$ferry" schema apply mappings/phones.yaml >/dev/null
"$ferry" plan mappings/phones.yaml --report out/report.html >/dev/null
chromium=$(command -v chromium || command -v chromium-browser)
# Chromium's sandbox needs user namespaces that a root CI shell may not have.
"$chromium" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2600 \
    --screenshot="$PWD/out/report.png" "file://$PWD/out/report.html" >/dev/null 2>&1
test -s out/report.png
echo "report: out/report.html, screenshot: out/report.png ($(stat -c %s out/report.png) bytes)"
