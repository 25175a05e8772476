#!/usr/bin/env bash
# What one claim costs, counted instead of timed, so that two trees can be compared on a
# busy machine: claimd runs under callgrind (instructions by function, the signer
# process left out: its sandbox forbids what valgrind needs; its CPU time is read from
# /proc instead) and PostgreSQL with pg_stat_statements (calls, rows, time, blocks and
# WAL per statement). After WARMUP claims (every device claimed once, so that the
# measured claims are re-claims, as in quick.sh), the counters are zeroed and CLAIMS
# claims are measured. Prints per claim: claimd's instructions in total and by shared
# object, the top functions (self), the signer's CPU time, and the statements. Run by hand.
#   tests/bench/cost.sh
# Environment: BUILD (a build directory to measure, default build/; another tree's build
# is used as it is, with its own claimctl and claimsim), CLAIMS (2000), DEVICES (500),
# CONCURRENCY (8), THREADS (8), TOP (30 functions), EXTRA_YAML (more config), SIGNER=1
# (count the signer's instructions instead: it runs under callgrind, unconfined by
# spawn_exe.so, and claimd natively).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "${BUILD:-$root/build}" 2>/dev/null && pwd || echo "$root/build")
claims=${CLAIMS:-2000}
devices=${DEVICES:-500}
conc=${CONCURRENCY:-8}
threads=${THREADS:-8}
top=${TOP:-30}
work=${BENCH_DIR:-$B/bench-cost}
command -v callgrind_annotate >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null

. "$root/tests/bench/lib.sh"
# callgrind_control cannot reach a claimd that became server.user: it stays root here.
# Nothing on a claim's path depends on the uid (the signer is the same child either way).
export BENCH_RUN_AS_ROOT=1
# The signer under valgrind takes seconds to say hello.
[ -z "${SIGNER:-}" ] || export BENCH_SIGNER_TIMEOUT=60
export PG_OPTS="${PG_OPTS:-} -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c track_io_timing=on"
bench_setup ec "$(bench_server_yaml "$threads")${EXTRA_YAML:+
$EXTRA_YAML}"
pid= cpid=
trap bench_cleanup EXIT
db="$pg dbname=claimd"
psql "$db" -qc "CREATE EXTENSION pg_stat_statements"
gen_devices "$devices" 7 "$work/devices.csv"
"$B/claimctl" -c "$work/claimd.yaml" devices import "$work/devices.csv" >/dev/null
# The output directory is open to the signer's user, should valgrind ever follow it.
mkdir -p "$work/cg" && chmod 1777 "$work/cg"
# claimd runs its signer as /proc/self/exe, which under valgrind is valgrind's tool:
# spawn_exe.so points that one spawn at claimd itself, run natively.
cc -shared -fPIC -O2 -o "$work/spawn_exe.so" "$root/tests/bench/spawn_exe.c" -ldl
export CLAIMD_EXE=$B/claimd
if [ -n "${SIGNER:-}" ]; then
  # The signer under callgrind instead, claimd natively; only what the signer does for
  # requests is counted (warm-up claims included: the signer's work is the same).
  export CLAIMD_SIGNER_VALGRIND="--tool=callgrind --dump-instr=no --collect-atstart=no
    --toggle-collect=signer_answer --toggle-collect=wire_recv --toggle-collect=wire_send
    --callgrind-out-file=$work/cg/signer.%p"
  CLAIMD_WRAP="env LD_PRELOAD=$work/spawn_exe.so" start_claimd
  # callgrind made its output file as root; it writes it at the end as signer.user.
  [ "$(id -u)" -ne 0 ] || chown nobody "$work"/cg/signer.*
else
  CLAIMD_WRAP="env LD_PRELOAD=$work/spawn_exe.so valgrind --tool=callgrind --trace-children=no --dump-instr=no
  --callgrind-out-file=$work/cg/callgrind.%p" start_claimd
fi
sim() {
  "$B/claimsim" bench --url "http://127.0.0.1:$port" --devices "$work/devices.csv" \
    --concurrency "$conc" --count "$1" >"$work/bench-$2.out"
  grep -E 'complete claims|errors' "$work/bench-$2.out" | sed "s/^/$2: /"
}
sim "$devices" warmup
spid=$(pgrep -P "$pid" || true)
cpu() { [ -z "$spid" ] && echo 0 || awk '{print $14 + $15}' "/proc/$spid/stat"; }
[ -n "${SIGNER:-}" ] || callgrind_control -z "$pid" >/dev/null
psql "$db" -qAtc "SELECT pg_stat_statements_reset()" >/dev/null
# The signer runs natively: where its time goes is sampled by perf (shares, not counts).
ppid=
if [ -n "$spid" ] && command -v perf >/dev/null; then
  perf record -q -e cpu-clock -F 2999 -g -p "$spid" -o "$work/signer.perf" 2>/dev/null &
  ppid=$!
fi
s0=$(cpu)
sim "$claims" measured
s1=$(cpu)
[ -z "$ppid" ] || { kill -INT "$ppid"; wait "$ppid" 2>/dev/null || true; }
[ -n "${SIGNER:-}" ] || callgrind_control -d "$pid" >/dev/null
dpid=$pid
psql "$db" -qAt -F ' | ' -c "SELECT 'wal per claim: ' || round(sum(wal_bytes) / $claims) || ' bytes, ' ||
    round(sum(wal_records)::numeric / $claims, 1) || ' records, ' ||
    round(sum(shared_blks_dirtied)::numeric / $claims, 2) || ' blocks dirtied'
  FROM pg_stat_statements" >"$work/wal.txt"
psql "$db" -qA -F ' | ' -c "SELECT round(calls::numeric / $claims, 2) AS per_claim,
    round(mean_exec_time::numeric * 1000) AS mean_us, round(rows::numeric / greatest(calls, 1), 2) AS rows_per_call,
    round(shared_blks_hit::numeric / $claims, 1) AS hit, round(shared_blks_dirtied::numeric / $claims, 2) AS dirtied,
    round(wal_bytes::numeric / $claims) AS wal_bytes, round(wal_records::numeric / $claims, 1) AS wal_recs,
    left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS statement
  FROM pg_stat_statements WHERE calls >= $claims / 10 ORDER BY calls DESC, total_exec_time DESC" \
  >"$work/statements.txt"
stop_claimd
if [ -n "${SIGNER:-}" ]; then
  for _ in $(seq 100); do ls "$work"/cg/signer.* >/dev/null 2>&1 && break; sleep 0.1; done
  f=$(ls "$work"/cg/signer.* | head -1)
  n=$((devices + claims))
  callgrind_annotate --inclusive=no --threshold=100 "$f" 2>/dev/null >"$work/annotate.txt"
  awk -v n="$n" '/PROGRAM TOTALS/ {gsub(",", "", $1); printf "signer instructions per claim: %.0f\n", $1 / n}' "$work/annotate.txt"
  echo "== signer instructions per claim by shared object"
  awk -v n="$n" '/^ *[0-9,]+ .*:/ && $0 !~ /PROGRAM/ { x = $1; gsub(",", "", x); s = $0;
      sub(/^.*\[/, "", s); sub(/\].*$/, "", s); if (s == $0) next; sub(/^.*\//, "", s); o[s] += x }
    END { for (k in o) printf "%12.0f  %s\n", o[k] / n, k }' "$work/annotate.txt" | sort -rn | head -12
  echo "== signer top functions, instructions per claim (inclusive)"
  callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null |
    awk -v n="$n" -v top="$top" '/^ *[0-9,]+ .*:/ && $0 !~ /PROGRAM/ && c < top { x = $1; gsub(",", "", x);
      s = $0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", s); printf "%10.0f  %s\n", x / n, s; c++ }'
  exit 0
fi
f=$(ls "$work"/cg/callgrind.*.1 | head -1) # the dump of the measured claims
# The threads' entry points carry their threads' totals: left out of the table.
callgrind_annotate --inclusive=no --threshold=100 "$f" 2>/dev/null |
  grep -vE 'clone\.S:clone |pthread_create\.c:start_thread ' >"$work/annotate.txt"
awk -v n="$claims" '/PROGRAM TOTALS/ {gsub(",", "", $1); printf "claimd instructions per claim: %.0f\n", $1 / n}' "$work/annotate.txt"
echo "signer CPU per claim: $(( (s1 - s0) * 10000000 / $(getconf CLK_TCK) / claims / 10 )) us (from /proc, clock ticks)"
cat "$work/wal.txt"
echo "== claimd instructions per claim by shared object"
awk -v n="$claims" '/^ *[0-9,]+ .*:/ && $0 !~ /PROGRAM/ { x = $1; gsub(",", "", x); s = $0;
    sub(/^.*\[/, "", s); sub(/\].*$/, "", s); if (s == $0) next; sub(/^.*\//, "", s); o[s] += x }
  END { for (k in o) printf "%12.0f  %s\n", o[k] / n, k }' "$work/annotate.txt" | sort -rn | head -12
echo "== claimd top functions, instructions per claim (self)"
awk -v n="$claims" -v top="$top" '/^ *[0-9,]+ .*:/ && $0 !~ /PROGRAM/ && c < top { x = $1; gsub(",", "", x);
    s = $0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", s); printf "%10.0f  %s\n", x / n, s; c++ }' "$work/annotate.txt"
echo "== statements (per claim: calls, hit and dirtied blocks, WAL; mean time in us)"
cat "$work/statements.txt"
if [ -s "$work/signer.perf" ]; then
  echo "== signer: share of its CPU samples by symbol (perf, self)"
  perf report -i "$work/signer.perf" --no-children --sort dso,sym --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | head -"$top"
fi
