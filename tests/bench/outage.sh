#!/usr/bin/env bash
# The full outage runs (issue 13): the CTest cases of label 'outage'
# (tests/outage/test_outage.c) at their full size: claimsim bench at OUTAGE_RATE claims/s
# (40) with phases of OUTAGE_PHASE seconds (10) between the events: PostgreSQL stopped
# (fast) and started, killed (kill -9 of the postmaster) and started; failover to a
# synchronous standby; switchover (old primary fenced read-only); claimd stopped with
# SIGTERM under load. Each PostgreSQL case runs durable clusters of its own. Prints per
# case: 503s seen, seconds from PostgreSQL accepting connections (or the promotion) to
# the first claim served again and to the last refusal, claims acknowledged, claims
# lost (must be 0). Exit status 0 when every case passed. Run by hand.
#   tests/bench/outage.sh [CASE...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
B=$root/build
work=${BENCH_DIR:-$B/bench-outage}
cases=${*:-pg_stop_and_kill failover switchover graceful_stop}

bash "$root/.ci/deps.sh"
cmake -S "$root" -B "$B" >/dev/null && cmake --build "$B" -j"$(nproc)" >/dev/null
rm -rf "$work" && mkdir -p "$work"
# The stop case uses this one (durable, unlike the test fixture's); the others start
# their own.
"$root/tests/pg.sh" start "$work/pg" >/dev/null
trap '"$root/tests/pg.sh" stop "$work/pg"' EXIT
export CLAIMD_BUILD_DIR=$B CLAIMD_TEST_PG="host=$work/pg user=postgres"
export OUTAGE_RATE=${OUTAGE_RATE:-40} OUTAGE_PHASE=${OUTAGE_PHASE:-10}
echo "claims/s: $OUTAGE_RATE, phase: $OUTAGE_PHASE s, $(nproc) cores, PostgreSQL $(psql --version | awk '{print $3}')"
status=0
for c in $cases; do
  if "$B/tests/test_outage" "$c" >"$work/$c.out" 2>"$work/$c.err"; then r=PASS; else r=FAIL; status=1; fi
  grep '^figures' "$work/$c.out" | sed 's/^figures //' || true
  grep -E '^  (complete claims|replies):' "$work/$c.err" | sed 's/^ */    /' || true
  echo "  $c: $r (details: $work/$c.err)"
done
exit $status
