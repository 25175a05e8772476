#!/usr/bin/env bash
# Benchmark: import N manufactured chips (default 1,000,000) with claimctl, into a
# private, durable PostgreSQL (fsync on), then import the same file again (a no-op).
# Prints rows per second for both. Run by hand; numbers go in the issue note.
#   tests/bench/import.sh [N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-1000000}
work=${BENCH_DIR:-$root/build/bench-import}
B=$root/build

. "$root/tests/bench/lib.sh"
bench_setup ec
trap '"$root/tests/pg.sh" stop "$work/pg"' EXIT

echo "generating $n rows..."
gen_devices "$n" 42 "$work/chips.csv"
ls -l "$work/chips.csv" | awk '{print "csv bytes:", $5}'

for pass in first again; do
  start=$(date +%s.%N)
  "$B/claimctl" -c "$work/claimd.yaml" devices import "$work/chips.csv"
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v n="$n" -v p="$pass" \
    'BEGIN { printf "import (%s): %d rows in %.1f s = %.0f rows/s\n", p, n, e - s, n / (e - s) }'
done
psql "host=$work/pg user=postgres dbname=claimd" -qtAc \
  "SELECT 'devices table: ' || count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('devices')) FROM devices"
