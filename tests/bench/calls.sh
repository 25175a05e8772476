#!/usr/bin/env bash
# What one claim costs the kernel, counted: claimd and its signer run natively while perf
# counts their system calls (by name), context switches and CPU time per claim. The
# calls and switches depend on little but the code, so two trees can be compared on a
# busy machine where rates cannot; the CPU time is printed too, and is as noisy as the
# machine. cost.sh counts the instructions of claimd's own code; this counts what it asks
# of the kernel, which callgrind does not see. Same load as cost.sh: every device claimed
# once, then CLAIMS re-claims counted. Run by hand.
#   tests/bench/calls.sh
# Environment: BUILD (another tree's build, used as it is), CLAIMS (2000), DEVICES (500),
# CONCURRENCY (8), THREADS (8), EXTRA_YAML (more config), EVENT_LOOP (poll | epoll),
# SAMPLE=1 (also where the signer's and claimd's CPU time goes: perf samples, shares).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "${BUILD:-$root/build}" 2>/dev/null && pwd || echo "$root/build")
claims=${CLAIMS:-2000}
devices=${DEVICES:-500}
conc=${CONCURRENCY:-8}
threads=${THREADS:-8}
work=${BENCH_DIR:-$B/bench-calls}
command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null

. "$root/tests/bench/lib.sh"
bench_setup ec "$(bench_server_yaml "$threads")${EXTRA_YAML:+
$EXTRA_YAML}"
pid= cpid=
trap bench_cleanup EXIT
gen_devices "$devices" 7 "$work/devices.csv"
"$B/claimctl" -c "$work/claimd.yaml" devices import "$work/devices.csv" >/dev/null
start_claimd
sim() {
  "$B/claimsim" bench --url "http://127.0.0.1:$port" --devices "$work/devices.csv" \
    --concurrency "$conc" --count "$1" >"$work/bench-$2.out"
  grep -E 'complete claims|errors' "$work/bench-$2.out" | sed "s/^/$2: /"
}
sim "$devices" warmup
spid=$(pgrep -P "$pid" || true)
calls=accept4,recvfrom,sendto,recvmsg,sendmsg,read,write,writev,poll,ppoll,epoll_wait,epoll_ctl
calls=$calls,close,futex,setsockopt,getsockopt,getsockname,getpeername,fcntl,shutdown,ioctl
calls=$calls,mmap,munmap,madvise,mprotect,brk,getrandom,openat,clock_nanosleep,sched_yield
events=raw_syscalls:sys_enter,context-switches,task-clock
for c in ${calls//,/ }; do events=$events,syscalls:sys_enter_$c; done
perf stat -x, -e "$events" -p "$pid" -o "$work/claimd.stat" &
p1=$!
p2=
if [ -n "$spid" ]; then
  perf stat -x, -e "$events" -p "$spid" -o "$work/signer.stat" &
  p2=$!
fi
p3=
if [ -n "${SAMPLE:-}" ]; then
  # claimd, its signer and claimd's PostgreSQL backends (open since the warm-up).
  pgs=$(pgrep -d, -P "$(head -1 "$work/pg/data/postmaster.pid")" || true)
  perf record -q -e cpu-clock -F 2999 -g -p "$pid${spid:+,$spid}${pgs:+,$pgs}" -o "$work/perf.data" 2>/dev/null &
  p3=$!
fi
sleep 1 # perf attaches to every thread before the clock starts
sim "$claims" measured
kill -INT "$p1" ${p2:+"$p2"} ${p3:+"$p3"}
wait "$p1" ${p2:+"$p2"} ${p3:+"$p3"} 2>/dev/null || true
# perf stat -x, lines: value,unit,event,...; task-clock is in ms.
report() {
  awk -F, -v n="$claims" -v who="$1" '/^[0-9]/ && $1 + 0 > 0 { e = $3; sub(/^syscalls:sys_enter_/, "", e)
      v = $1 / n; if (e == "task-clock") { e = "CPU us"; v = $1 * 1000 / n }
      printf "%-9s %-26s %10.2f\n", who, e, v }' "$2"
}
echo "== per claim (initiate + verify): system calls, context switches, CPU time"
report claimd "$work/claimd.stat"
[ -z "$p2" ] || report signer "$work/signer.stat"
if [ -n "$p3" ]; then
  echo "== samples by thread name and object"
  perf report -i "$work/perf.data" --no-children --sort comm,dso --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | head -20
  echo "== postgres: the domains' regular expressions and CHECKs, index inserts (children included)"
  perf report -i "$work/perf.data" --children --comm postgres --sort sym --stdio 2>/dev/null |
    grep -E '^ +[0-9].*\b(ExecEvalConstraintCheck|domain_check|textregexeq|RE_compile_and_execute|pg_regexec|ExecInsertIndexTuples|btinsert|XLogInsert|ExecutePlan|exec_execute_message)\b' | head -20
  for who in claimd-signer MHD-worker postgres; do
    echo "== $who threads: share of their CPU samples by symbol (perf, self)"
    perf report -i "$work/perf.data" --no-children --comm "$who" --sort dso,sym --stdio 2>/dev/null |
      grep -E '^ +[0-9]' | head -25
  done
fi
