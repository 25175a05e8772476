#!/usr/bin/env bash
# The full outage runs (issues 13 and 24): the CTest cases of label 'outage'
# (tests/outage/test_outage.c) at their full size: claimsim bench at OUTAGE_RATE claims/s
# (40), OUTAGE_USER_SHARE percent of them (50) assisted claims of 8 users with tokens
# from a development IdP of the case's own, the rest self claims, with phases of
# OUTAGE_PHASE seconds (10) between the events: PostgreSQL stopped
# (fast) and started, killed (kill -9 of the postmaster) and started; failover to a
# synchronous standby; switchover (old primary fenced read-only); claimd stopped with
# SIGTERM under load; and the faults that close no connection: the primary reached over
# TCP through network namespaces of the case's own and cut off with iptables, then
# healed or replaced by its promoted synchronous standby; the database read-only; its
# tablespace's disk full. Prints per case: 503s seen, the first 503 after a fault, the
# slowest reply during it, seconds from the database being back (accepting
# connections, promoted, healed, writable, space freed) to the first claim served again
# and to the last refusal, claims acknowledged, claims lost (must be 0; a user claim
# counts as stored only with its certificate, that user's node for that MAC and its
# audit row), the 503s and acknowledged claims per flow, and the load generator's
# replies per flow. Exit status 0 when every case passed. Run by hand, as root
# (namespaces, mounts).
#   tests/bench/outage.sh [CASE...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
B=$root/build
work=${BENCH_DIR:-$B/bench-outage}
cases=${*:-pg_stop_and_kill failover switchover graceful_stop vanishing_primary_heal vanishing_primary_promotion read_only disk_full}

bash "$root/.ci/deps.sh" --test
cmake -S "$root" -B "$B" >/dev/null && cmake --build "$B" -j"$(nproc)" >/dev/null
rm -rf "$work" && mkdir -p "$work"
# The stop case uses this one (durable, unlike the test fixture's); the others start
# their own.
"$root/tests/pg.sh" start "$work/pg" >/dev/null
trap '"$root/tests/pg.sh" stop "$work/pg"' EXIT
export CLAIMD_BUILD_DIR=$B CLAIMD_TEST_PG="host=$work/pg user=postgres"
export OUTAGE_RATE=${OUTAGE_RATE:-40} OUTAGE_PHASE=${OUTAGE_PHASE:-10}
export OUTAGE_USER_SHARE=${OUTAGE_USER_SHARE:-50}
echo "claims/s: $OUTAGE_RATE ($OUTAGE_USER_SHARE % user claims), phase: $OUTAGE_PHASE s, $(nproc) cores, PostgreSQL $(psql --version | awk '{print $3}')"
status=0
for c in $cases; do
  if "$B/tests/test_outage" "$c" >"$work/$c.out" 2>"$work/$c.err"; then r=PASS; else r=FAIL; status=1; fi
  grep '^figures' "$work/$c.out" | sed 's/^figures //' || true
  grep -E '^  (complete claims|replies|self claims|user claims):' "$work/$c.err" | sed 's/^ */    /' || true
  echo "  $c: $r (details: $work/$c.err)"
done
exit $status
