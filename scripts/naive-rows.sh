# The application's state before ferry, as the naive-rows benchmarks build it (sourced by
# scripts/bench-naive.sh and scripts/bench-one-tenant.sh, which define $psql, $ferry and settle).

# The phones mapping with existing_rows: replace_naive, in a temporary file whose path is printed.
naive_mapping() {
    local mapping
    mapping=$(mktemp /tmp/ferry-bench-naive.XXXXXX.yaml)
    sed 's/^  default_region: US$/  default_region: US\n  existing_rows: replace_naive/' mappings/phones.yaml >"$mapping"
    echo "$mapping"
}

# naive_database DB CONTACTS MAPPING: generated legacy contacts with ferry's schema steps, settled.
naive_database() {
    $psql -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
    PGDATABASE=$1 $psql -f samples/schema.sql
    PGDATABASE=$1 $psql -v contacts="$2" -f samples/generate.sql
    PGDATABASE=$1 "$ferry" schema apply "$3" --snapshot-dir "$bench_snapshots" >/dev/null
    settle "$1"
}

# naive_backfill DB: the application's own backfill, every non-blank value btrim'd into one default work row.
naive_backfill() {
    PGDATABASE=$1 $psql -c "INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order, created_at, updated_at)
        SELECT tenant, contact_name_id, BTRIM(phone_number), 'work', true, 0, COALESCE(created_at, NOW()), COALESCE(updated_at, created_at, NOW())
        FROM contacts WHERE phone_number IS NOT NULL AND BTRIM(phone_number) <> ''"
}

# without_legacy_column FROM TO: a copy of FROM as the application's next release leaves it (the legacy
# column dropped), with the in-place mapping's schema steps, settled.
without_legacy_column() {
    $psql -d postgres -c "DROP DATABASE IF EXISTS $2" -c "CREATE DATABASE $2 TEMPLATE $1"
    PGDATABASE=$2 $psql -c "ALTER TABLE contacts DROP COLUMN phone_number"
    PGDATABASE=$2 "$ferry" schema apply mappings/phones-in-place.yaml --snapshot-dir "$bench_snapshots" >/dev/null
    settle "$2"
}
