# What every benchmark script uses (sourced): psql that stops at the first error, wall-clock seconds,
# and a database settled (vacuumed, analyzed, checkpointed) before a timed step.
psql="/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1"
now() { date +%s.%N; }
seconds() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
# ratio A B: A / B to two decimals.
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
# The whole machine's busy CPU time (every process on every core), in seconds since boot: between two
# readings, what a timed step used of the machine, whoever used it (ferry, the server's backends and
# background processes). A target of R times a baseline's wall time on C cores leaves R x C x that
# time of CPU at most: a step that needs more cannot meet it here, however its work is spread.
cpu_now() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / hz}' /proc/stat; }
# cpu_allowed BASELINE_SECONDS: the CPU time a 1.5x target leaves on this machine's cores.
cpu_allowed() { echo "1.5 * $1 * $(nproc)" | bc -l | xargs printf '%.1f'; }
# Benchmarks take a schema snapshot per database they set up: kept out of the checkout, and in the
# throwaway cluster's folder when scripts/with-cluster.sh started one (removed with it).
bench_snapshots="${FERRY_CLUSTER_DIR:-${TMPDIR:-/tmp}}/ferry-bench-snapshots"
settle() { $psql -d "$1" -c "VACUUM ANALYZE"; $psql -d postgres -c "CHECKPOINT"; }
