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

bash "$root/.ci/deps.sh"
cmake -S "$root" -B "$B" >/dev/null && cmake --build "$B" -j"$(nproc)" >/dev/null
rm -rf "$work" && mkdir -p "$work"
pg=$("$root/tests/pg.sh" start "$work/pg")
trap '"$root/tests/pg.sh" stop "$work/pg"' EXIT
psql "$pg" -qc "CREATE DATABASE claimd"
"$B/claimctl" dev-ca --out "$work/ca" >/dev/null
(umask 077 && "$B/claimctl" keygen >"$work/secrets.key")
cat >"$work/claimd.yaml" <<YAML
database:
  url: "host=$work/pg user=postgres dbname=claimd"
ca:
  certificate: ca/intermediate.pem
  key: ca/intermediate.key
secrets:
  key_file: secrets.key
YAML
"$B/claimctl" -c "$work/claimd.yaml" migrate >/dev/null

echo "generating $n rows..."
awk -v n="$n" 'BEGIN { srand(42); print "mac,platform,efuse_key";
  for (i = 1; i <= n; i++) { k = "";
    for (j = 0; j < 16; j++) k = k sprintf("%02X", int(rand() * 256));
    printf "7C%010X,esp32s3,%s\n", i, k } }' >"$work/chips.csv"
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
