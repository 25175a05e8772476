#!/usr/bin/env bash
# The transport floor: 'claimsim bench' against bench_floor, a libmicrohttpd server with
# claimd's settings that answers initiate and verify with fixed bodies and by default
# does nothing else (no crypto, no database). Its claims/s bound any claimd on this
# stack and this machine, with the load generator sharing the cores. Run by hand.
#   tests/bench/floor.sh
# DB=1: each answer also runs claimd's statement for it (an initiate the self initiate's,
# a verify the commit's, on the worker's own connection) against a private durable
# PostgreSQL: the composed ceiling's parts run together instead of apart, no crypto.
# CRYPTO=1 (with DB=1): each verify also does the crypto no claim can skip, with claimd's
# own functions in bench_floor's process (the answer's HMAC, csr_check(), the leaf's
# signature by ca_sign_local()). Left out, each a few µs: the auth_id's MAC, opening the
# sealed eFuse key, the key's fingerprint; and the reply stays a fixed body. What is
# left between that and claimd is mostly the signer process, JSON and claimd's own work.
# Environment: CONCURRENCY (64), SECONDS_RUN (10), THREADS (8), KEEPALIVE=1, DB=1,
# CRYPTO=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
conc=${CONCURRENCY:-64}
secs=${SECONDS_RUN:-10}
threads=${THREADS:-8}
work=${BENCH_DIR:-$root/build/bench-floor}
B=$root/build
. "$root/tests/bench/lib.sh"
if [ -n "${CRYPTO:-}" ] && [ -z "${DB:-}" ]; then
  echo "floor.sh: CRYPTO=1 needs DB=1 (the CA it signs with is the database set-up's)" >&2
  exit 2
fi
fpid= pid= cpid= dbargs=()
if [ -n "${DB:-}" ]; then
  trap '[ -z "$fpid" ] || kill "$fpid" 2>/dev/null || true; bench_cleanup' EXIT
  bench_setup ec ""
  gen_devices 2000 3 "$work/devices.csv"
  "$B/claimctl" -c "$work/claimd.yaml" devices import "$work/devices.csv" >/dev/null
  dbargs=("host=$work/pg user=postgres dbname=claimd" 2000)
  [ -z "${CRYPTO:-}" ] || export FLOOR_CRYPTO=1 FLOOR_CA_CERT=$work/ca/intermediate.pem \
    FLOOR_CA_KEY=$work/ca/intermediate.key
else
  bench_build
  gen_devices 2000 3 "$work/devices.csv"
  trap '[ -z "$fpid" ] || kill "$fpid" 2>/dev/null || true' EXIT
fi
"$B/tests/bench_floor" "$threads" "$work/ready" "${dbargs[@]}" &
fpid=$!
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
if [ ! -s "$work/ready" ] || ! kill -0 "$fpid" 2>/dev/null; then
  echo "floor.sh: bench_floor did not start" >&2
  exit 1
fi
"$B/claimsim" bench --url "http://127.0.0.1:$(cat "$work/ready")" --devices "$work/devices.csv" \
  --concurrency "$conc" --duration "$secs" --pid "$fpid" ${KEEPALIVE:+--keep-alive}
