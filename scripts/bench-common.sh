# What every benchmark script uses (sourced): psql that stops at the first error, wall-clock seconds,
# and a database settled (vacuumed, analyzed, checkpointed) before a timed step.
psql="/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1"
now() { date +%s.%N; }
seconds() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
# Benchmarks take a schema snapshot per database they set up: kept out of the checkout, and in the
# throwaway cluster's folder when scripts/with-cluster.sh started one (removed with it).
bench_snapshots="${FERRY_CLUSTER_DIR:-${TMPDIR:-/tmp}}/ferry-bench-snapshots"
settle() { $psql -d "$1" -c "VACUUM ANALYZE"; $psql -d postgres -c "CHECKPOINT"; }
