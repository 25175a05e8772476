#!/usr/bin/env bash
# Quick self-claim benchmark on this machine: a private durable PostgreSQL
# (synchronous_commit on), a development CA, DEVICES registered chips, claimd, and
# 'claimsim bench' with CONCURRENCY clients for SECONDS seconds. Run by hand.
#   tests/bench/quick.sh [ec|rsa2048|rsa3072 CA key] [ec|rsa device keys]
# Environment: DEVICES (2000), CONCURRENCY (64), SECONDS_RUN (10), THREADS (claimd workers,
# 8), VERIFY=1 (check every certificate against the dev root)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ca=${1:-ec}
dkey=${2:-ec}
devices=${DEVICES:-2000}
conc=${CONCURRENCY:-64}
secs=${SECONDS_RUN:-10}
threads=${THREADS:-8}
work=${BENCH_DIR:-$root/build/bench-quick}
B=$root/build

bash "$root/.ci/deps.sh"
cmake -S "$root" -B "$B" >/dev/null && cmake --build "$B" -j"$(nproc)" >/dev/null
rm -rf "$work" && mkdir -p "$work"
pg=$("$root/tests/pg.sh" start "$work/pg")
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  "$root/tests/pg.sh" stop "$work/pg"
}
trap cleanup EXIT
psql "$pg" -qc "CREATE DATABASE claimd"
"$B/claimctl" dev-ca --out "$work/ca" --key "$ca" >/dev/null
(umask 077 && "$B/claimctl" keygen >"$work/secrets.key")
cat >"$work/claimd.yaml" <<YAML
server:
  listen: "127.0.0.1:0"
  threads: $threads
  log_level: warn
database:
  url: "host=$work/pg user=postgres dbname=claimd"
ca:
  certificate: ca/intermediate.pem
  key: ca/intermediate.key
secrets:
  key_file: secrets.key
YAML
"$B/claimctl" -c "$work/claimd.yaml" migrate >/dev/null
awk -v n="$devices" 'BEGIN { srand(7); print "mac,platform,efuse_key";
  for (i = 1; i <= n; i++) { k = "";
    for (j = 0; j < 16; j++) k = k sprintf("%02X", int(rand() * 256));
    printf "7C%010X,esp32s3,%s\n", i, k } }' >"$work/devices.csv"
"$B/claimctl" -c "$work/claimd.yaml" devices import "$work/devices.csv" >/dev/null
"$B/claimd" -c "$work/claimd.yaml" --ready-file "$work/ready" 2>"$work/claimd.log" &
pid=$!
for _ in $(seq 100); do [ -f "$work/ready" ] && break; sleep 0.1; done
port=$(cat "$work/ready")
echo "CA key: $ca, device keys: $dkey, claimd workers: $threads, $(nproc) cores"
"$B/claimsim" bench --url "http://127.0.0.1:$port" --devices "$work/devices.csv" \
  --concurrency "$conc" --duration "$secs" --key "$dkey" --pid "$pid" ${VERIFY:+--verify --root "$work/ca/root.pem"}
