#!/usr/bin/env bash
# The README's first command, as a new user runs it: docker/demo.sh --once, with its
# state in a folder of its own and a free port. It must set up, claim with three
# simulated devices, an app and the CLI, and stop everything again (exit 0).
#   tests/deploy/demo.sh      (CTest: deploy.demo)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${CLAIMD_BUILD_DIR:-$root/build}
state=$build/tmp/demo
rm -rf "$state" "$state.conf"
mkdir -p "$state"
# The state folder's parents must be searchable by the PostgreSQL it starts.
bash "$root/tests/pg.sh" reach "$state"
port=
for p in $(seq 28080 28180); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "demo test: no free port in 28080-28180" >&2; exit 1; }
# A machine whose own PostgreSQL cluster is not on 5432 (two major versions installed, or
# 5432 taken when the package made its cluster): Debian's psql wrapper then sends a psql
# without a port to that cluster's port, not to the demo's private one. Simulated with a
# cluster configuration of its own that the wrapper reads (PG_CLUSTER_CONF_ROOT) and
# names as the default (PGCLUSTER).
ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
mkdir -p "$state.conf/$ver/other"
printf "port = 5439\nunix_socket_directories = '/tmp'\n" >"$state.conf/$ver/other/postgresql.conf"
out=$state.out
if ! env -u PGPORT PG_CLUSTER_CONF_ROOT="$state.conf" PGCLUSTER="$ver/other" \
  CLAIMD_STATE=$state PORT=$port bash "$root/docker/demo.sh" --once >"$out" 2>&1; then
  cat "$out"
  echo "demo test: docker/demo.sh --once failed" >&2
  exit 1
fi
for want in "android app claimed" "cli claimed" "== done; stopping"; do
  grep -q "$want" "$out" || { cat "$out"; echo "demo test: no '$want' in its output" >&2; exit 1; }
done
n=$(grep -c ': OK$' "$out" || true)
[ "$n" -ge 3 ] || { cat "$out"; echo "demo test: $n certificates verified, want 3" >&2; exit 1; }
! pgrep -f "claimd -c $state/claimd.yaml" >/dev/null || { echo "demo test: claimd still runs" >&2; exit 1; }
rm -rf "$state" "$state.conf" "$out"
echo "demo test: passed ($n certificates verified)"
