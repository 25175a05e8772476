#!/usr/bin/env bash
# Quick self-claim benchmark on this machine: a private durable PostgreSQL
# (synchronous_commit on), a development CA, DEVICES registered chips, claimd, and
# 'claimsim bench' with CONCURRENCY clients for SECONDS seconds. Run by hand.
#   tests/bench/quick.sh [ec|rsa2048|rsa3072 CA key] [ec|rsa device keys]
# Environment: DEVICES (2000), CONCURRENCY (64), SECONDS_RUN (10), THREADS (claimd workers,
# 8), VERIFY=1 (check every certificate against the dev root), RATE (claims started per
# second, all clients together; unset: as fast as they can), EXTRA_YAML (more config, e.g.
# 'revocation: {on_reclaim: keep}'), EVENT_LOOP (poll | epoll: server.event_loop, default poll), HSM=1
# (the CA key in a SoftHSM2 token)
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

. "$root/tests/bench/lib.sh"
bench_setup "$ca" "$(bench_server_yaml "$threads")${EXTRA_YAML:+
$EXTRA_YAML}"
pid= cpid=
trap bench_cleanup EXIT
gen_devices "$devices" 7 "$work/devices.csv"
"$B/claimctl" -c "$work/claimd.yaml" devices import "$work/devices.csv" >/dev/null
start_claimd
echo "CA key: $ca, device keys: $dkey, claimd workers: $threads, $(nproc) cores"
"$B/claimsim" bench --url "http://127.0.0.1:$port" --devices "$work/devices.csv" \
  --concurrency "$conc" --duration "$secs" --key "$dkey" --pid "$pid" ${VERIFY:+--verify --root "$work/ca/root.pem"} \
  ${RATE:+--rate "$RATE"}
