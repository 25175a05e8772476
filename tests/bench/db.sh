#!/usr/bin/env bash
# The database ceiling: claimd's claim-path statements alone (bench_db: the same
# prepared SQL and DB functions, no HTTP, no crypto) against a private durable
# PostgreSQL, so the database's share of a claim can be read apart from claimd's.
# Run by hand.
#   tests/bench/db.sh
# Environment: CONNECTIONS (8), SECONDS_RUN (5), DEVICES (2000).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
conns=${CONNECTIONS:-8}
secs=${SECONDS_RUN:-5}
devices=${DEVICES:-2000}
work=${BENCH_DIR:-$root/build/bench-db}
B=$root/build
. "$root/tests/bench/lib.sh"
bench_setup ec ""
pid= cpid=
trap bench_cleanup EXIT
gen_devices "$devices" 5 "$work/devices.csv"
"$B/claimctl" -c "$work/claimd.yaml" devices import "$work/devices.csv" >/dev/null
url="host=$work/pg user=postgres dbname=claimd"
psql "$url" -qtAc "SHOW synchronous_commit" | sed 's/^/PostgreSQL synchronous_commit: /'
for mode in lookup initiate commit; do
  "$B/tests/bench_db" "$url" "$mode" "$conns" "$secs" "$devices"
done
