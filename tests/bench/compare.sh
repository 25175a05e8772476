#!/usr/bin/env bash
# claimd against cfssl on this machine: claimd's complete, durable self claims
# (initiate + verify with real HMACs and CSRs, PostgreSQL with synchronous_commit on)
# against cfssl's bare signing of the same CSRs by a CA of the same key type, with the
# same number of concurrent clients, one after the other. Prints both rates and the
# ratio. One command from a fresh clone (installs golang-cfssl if missing):
#   tests/bench/compare.sh
# Environment: CA (ec | rsa2048 | rsa3072, default ec), KEYS (ec | rsa device keys),
# CONCURRENCY (64), SECONDS_RUN (20), DEVICES (5000), THREADS (claimd workers, 8),
# KEEPALIVE=1 (both sides on kept-alive connections instead of one per request).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ca=${CA:-ec}
keys=${KEYS:-ec}
conc=${CONCURRENCY:-64}
secs=${SECONDS_RUN:-20}
devices=${DEVICES:-5000}
threads=${THREADS:-8}
work=${BENCH_DIR:-$root/build/bench-compare}
B=$root/build

if ! command -v cfssl >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then echo "compare: install golang-cfssl (as root)" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-cfssl >/dev/null
fi
. "$root/tests/bench/lib.sh"
bench_setup "$ca" "$(bench_server_yaml "$threads")"
pid= cpid=
trap bench_cleanup EXIT
gen_devices "$devices" 11 "$work/devices.csv"
"$B/claimctl" -c "$work/claimd.yaml" devices import "$work/devices.csv" >/dev/null
psql "$pg" -qtAc "SHOW synchronous_commit" | sed 's/^/PostgreSQL synchronous_commit: /'

echo "== claimd: complete self claims ($ca CA, $keys device keys, $conc clients, $secs s)"
start_claimd
"$B/claimsim" bench --url "http://127.0.0.1:$port" --devices "$work/devices.csv" \
  --concurrency "$conc" --duration "$secs" --key "$keys" --pid "$pid" ${KEEPALIVE:+--keep-alive} | tee "$work/claimd.out"
stop_claimd

echo "== cfssl: bare signing of the same CSRs (same CA key type, $conc clients, $secs s)"
cat >"$work/cfssl.json" <<JSON
{"signing": {"default": {"expiry": "87600h", "usages": ["digital signature", "client auth"]}}}
JSON
# Below the ephemeral range: the claimd run leaves thousands of client ports in TIME_WAIT.
cport=$(( 10000 + RANDOM % 20000 ))
cfssl serve -address 127.0.0.1 -port "$cport" -ca "$work/ca/intermediate.pem" \
  -ca-key "$work/ca/intermediate.key" -config "$work/cfssl.json" -loglevel 4 \
  >"$work/cfssl.log" 2>&1 &
cpid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$cport") 2>/dev/null && break
  sleep 0.1
done
kill -0 "$cpid" 2>/dev/null || { echo "cfssl did not start:"; cat "$work/cfssl.log"; exit 1; }
"$B/claimsim" bench --cfssl --url "http://127.0.0.1:$cport" --devices "$work/devices.csv" \
  --concurrency "$conc" --duration "$secs" --key "$keys" ${KEEPALIVE:+--keep-alive} | tee "$work/cfssl.out"

c=$(awk '/complete claims:/ {print $(NF-3)}' "$work/claimd.out")
s=$(awk '/certificates signed:/ {print $(NF-1)}' "$work/cfssl.out")
awk -v c="$c" -v s="$s" 'BEGIN {
  printf "== claimd %.1f complete claims/s, cfssl %.1f signs/s: ratio %.2f (the bar is 1.00)\n", c, s, (s > 0 ? c / s : 0) }'
