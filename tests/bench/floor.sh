#!/usr/bin/env bash
# The transport floor: 'claimsim bench' against bench_floor, a libmicrohttpd server with
# claimd's settings that answers initiate and verify with fixed bodies and does nothing
# else (no crypto, no database). Its claims/s bound any claimd on this stack and this
# machine, with the load generator sharing the cores. Run by hand.
#   tests/bench/floor.sh
# Environment: CONCURRENCY (64), SECONDS_RUN (10), THREADS (8), KEEPALIVE=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
conc=${CONCURRENCY:-64}
secs=${SECONDS_RUN:-10}
threads=${THREADS:-8}
work=${BENCH_DIR:-$root/build/bench-floor}
B=$root/build
. "$root/tests/bench/lib.sh"
bench_build
gen_devices 2000 3 "$work/devices.csv"
fpid=
trap '[ -z "$fpid" ] || kill "$fpid" 2>/dev/null || true' EXIT
"$B/tests/bench_floor" "$threads" "$work/ready" &
fpid=$!
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
"$B/claimsim" bench --url "http://127.0.0.1:$(cat "$work/ready")" --devices "$work/devices.csv" \
  --concurrency "$conc" --duration "$secs" --pid "$fpid" ${KEEPALIVE:+--keep-alive}
