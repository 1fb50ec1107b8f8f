#!/usr/bin/env bash
# The customers and service-requests benchmark: generates BENCH_REQUESTS service requests (default
# 1,000,000), BENCH_PROJECTS projects (default 500,000) and BENCH_JOB_CONTACTS contacts (default 200,000),
# then times `ferry plan` and `ferry apply` of each job and prints their peak RSS (as ferry reports it).
set -euo pipefail
ferry=${FERRY:-.build/release/ferry}
requests=${BENCH_REQUESTS:-1000000}
projects=${BENCH_PROJECTS:-500000}
contacts=${BENCH_JOB_CONTACTS:-200000}
. scripts/bench-common.sh
seconds() { echo "$2 - $1" | bc -l | xargs printf '%.1f'; }
peak() { grep -o '"peakResidentMegabytes" : [0-9.]*' "$1" | awk '{ printf "%.0f", $3 }'; }

echo "bench-jobs: generating $contacts contacts, $projects projects, $requests service requests"
$psql -d postgres -c "DROP DATABASE IF EXISTS bench_jobs" -c "CREATE DATABASE bench_jobs"
export PGDATABASE=bench_jobs
$psql -f samples/schema.sql
$psql -v contacts="$contacts" -v projects="$projects" -v requests="$requests" -f samples/generate.sql
for job in customers service-requests; do "$ferry" schema apply "mappings/$job.yaml" --snapshot-dir "$bench_snapshots" >/dev/null; done
$psql -c "VACUUM ANALYZE"

report=""
for job in customers service-requests; do
    start=$(now)
    "$ferry" plan "mappings/$job.yaml" --no-progress > "/tmp/ferry-bench-$job-plan.txt"
    plan=$(seconds "$start" "$(now)")
    start=$(now)
    "$ferry" apply "mappings/$job.yaml" --no-progress --json > "/tmp/ferry-bench-$job-apply.json"
    apply=$(seconds "$start" "$(now)")
    grep -q '"accountingAddsUp"\|"projectsRead"\|"requestsRead"' "/tmp/ferry-bench-$job-apply.json"
    report+=$(printf '\n  %-17s plan %6s s   apply %6s s   apply peak RSS %s MB' "$job" "$plan" "$apply" "$(peak "/tmp/ferry-bench-$job-apply.json")")
done
echo "bench-jobs: $contacts contacts, $projects projects, $requests service requests (apply includes snapshots and checks)$report"
$psql -d postgres -c "DROP DATABASE bench_jobs"
