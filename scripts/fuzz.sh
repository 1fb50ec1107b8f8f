#!/usr/bin/env bash
# Builds ferry's libFuzzer targets (-sanitize=fuzzer,address) and runs each for a bounded time.
#   scripts/fuzz.sh                    every target, FUZZ_SECONDS each (default 60)
#   scripts/fuzz.sh FuzzPhones         one target
#   FUZZ_RUNS=10000000 scripts/fuzz.sh run until that many executions instead of for a time
# Seeds come from ../shared/corpora, samples/ and mappings/; the corpus grows in .build-fuzz/corpus/TARGET.
# A crash, a timeout (10 s an input) or a broken accounting identity (a precondition in the target)
# stops the target, leaves the input in .build-fuzz/findings/TARGET and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzCSVImport FuzzMapping FuzzPhones)
scratch=.build-fuzz
shared=../shared/corpora

seed() {
    local target=$1 dir=$scratch/corpus/$1
    mkdir -p "$dir"
    case "$target" in
    FuzzPhones)
        # The first byte picks the region (see Fuzz/FuzzPhones): the corpus's own region where it has one.
        python3 - "$dir" "$shared/phones" <<'PY'
import os, sys
out, folder = sys.argv[1], sys.argv[2]
regions = ["US", "GB", "DE", "FR", "ES", "JP", "IN", "BR", "AU", "ZZ", "XX", ""]
n = 0
for name in ("messy_phones.dev.tsv", "example_numbers.tsv"):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        continue
    for line in open(path, encoding="utf-8", errors="replace"):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 2:
            continue
        region = regions.index(parts[1]) if parts[1] in regions else 0
        with open(os.path.join(out, "seed-%d" % n), "wb") as f:
            f.write(bytes([region]) + parts[0].encode())
        n += 1
PY
        ;;
    FuzzMapping)
        # The first byte picks the job (see Fuzz/FuzzMapping): each mapping is seeded for its own.
        local index=0
        for job in phones contacts-csv customers service-requests; do
            for file in mappings/*.yaml; do
                grep -q "^job: $job\$" "$file" && { printf "\\x$(printf %02x $index)"; cat "$file"; } >"$dir/seed-$job-$(basename "$file")"
            done
            index=$((index + 1))
        done
        ;;
    FuzzCSVImport)
        find "$shared/csv" samples/import -type f \( -name '*.csv' -o -name '*.tsv' \) -size -64k -print0 |
            while IFS= read -r -d '' file; do cp "$file" "$dir/seed-$(echo "$file" | md5sum | cut -c1-12)"; done
        ;;
    esac
}

status=0
for target in "${targets[@]}"; do
    FERRY_FUZZ=1 swift build -c release --scratch-path "$scratch" --product "$target" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 | tail -1
    seed "$target"
    mkdir -p "$scratch/findings/$target"
    if [ -n "${FUZZ_RUNS:-}" ]; then limit=(-runs="$FUZZ_RUNS"); else limit=(-max_total_time="${FUZZ_SECONDS:-60}"); fi
    echo "fuzzing $target (${limit[*]})"
    log="$scratch/$target.log"
    # Leak reports are off: FoundationEssentials' readBytesFromFile leaks a 4 KiB buffer for every empty
    # file it reads (FileManager.contents and Data(contentsOf:) alike), which stopped FuzzMapping at once.
    if ASAN_OPTIONS=detect_leaks=0 "$scratch/release/$target" "$scratch/corpus/$target" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 \
        -artifact_prefix="$scratch/findings/$target/" -print_final_stats=1 >"$log" 2>&1; then
        echo "$target: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') executions, no finding"
    else
        status=1
        echo "$target: FINDING (see $log and $scratch/findings/$target)" >&2
        tail -40 "$log" >&2
    fi
done
exit $status
