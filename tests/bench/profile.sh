#!/usr/bin/env bash
# Where the time goes during a claim benchmark: system-wide perf sampling (cpu-clock,
# which works without hardware counters) while 'claimsim bench' runs against claimd,
# reported by process and then by symbol for claimd and PostgreSQL. Run by hand.
#   tests/bench/profile.sh
# Environment: CONCURRENCY (64), SECONDS_RUN (12), THREADS (8), DEVICES (2000).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
conc=${CONCURRENCY:-64}
secs=${SECONDS_RUN:-12}
threads=${THREADS:-8}
devices=${DEVICES:-2000}
work=${BENCH_DIR:-$root/build/bench-profile}
B=$root/build
command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
. "$root/tests/bench/lib.sh"
bench_setup ec "$(bench_server_yaml "$threads")"
pid= cpid=
trap bench_cleanup EXIT
gen_devices "$devices" 5 "$work/devices.csv"
"$B/claimctl" -c "$work/claimd.yaml" devices import "$work/devices.csv" >/dev/null
start_claimd
"$B/claimsim" bench --url "http://127.0.0.1:$port" --devices "$work/devices.csv" \
  --concurrency "$conc" --duration "$secs" >"$work/bench.out" &
bpid=$!
sleep 2
perf record -q -e cpu-clock -F 999 -a -g -o "$work/perf.data" -- sleep $((secs - 4)) 2>/dev/null
wait "$bpid"
cat "$work/bench.out"
echo "== CPU samples by process"
perf report -i "$work/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
echo "== claimd (MHD-worker threads): top symbols"
perf report -i "$work/perf.data" --no-children --comm MHD-worker --sort dso,sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -25
echo "== postgres: top symbols"
perf report -i "$work/perf.data" --no-children --comm postgres --sort dso,sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
