#!/usr/bin/env bash
# Starts or stops a private PostgreSQL cluster in DIR, listening only on a unix socket
# in DIR. Used by the CTest fixture, docker/demo.sh and the benchmark.
#   tests/pg.sh start DIR [fast]   -> prints a libpq connection string for database 'postgres'
#                                     (with its port, so a psql given it needs no PGPORT)
#   tests/pg.sh stop DIR
#   tests/pg.sh reach DIR          make DIR reachable for the postgres user (start does it too)
# For the outage and failover tests (tests/outage/test_outage.c), on clusters of their own:
#   tests/pg.sh standby DIR PRIMARY_DIR   a streaming standby of the cluster in PRIMARY_DIR
#                                         (pg_basebackup -R), started like 'start'
#   tests/pg.sh kill DIR           kill -9 of the postmaster alone; returns once its
#                                  children have noticed and exited ('start' recovers it)
#   tests/pg.sh promote DIR        promotes the standby in DIR, waiting until it is done
# 'fast' turns fsync off (tests only: durability is not under test there); a durable
# cluster has the group commit the documentation recommends (commit_delay 200 us,
# commit_siblings 2: README.md, "Recommended PostgreSQL settings"). PG_OPTS adds server
# options ("-c name=value ..."), after these, so it can override them.
# As root, the cluster runs as the unprivileged 'postgres' user (initdb refuses root).
set -euo pipefail
# Debian's psql wrapper gives a psql without a port the port of this machine's own
# default cluster, which need not be 5432, the private cluster's: say it.
export PGPORT=${PGPORT:-5432}

cmd=${1:?usage: pg.sh start|stop DIR [fast]}
dir=${2:?usage: pg.sh start|stop DIR [fast]}
mode=${3:-durable}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { echo "pg.sh: PostgreSQL server binaries not found (install postgresql)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# reach DIR: as root, the server runs as 'postgres' and must reach DIR through every
# parent: a parent that others cannot search (such as /root, mode 700) gets o+x (search
# only, not read), and each change is said, since it is outside DIR. Checked from /
# down, so that each check sees the parents above it already searchable.
reach() {
  [ "$(id -u)" -eq 0 ] || return 0
  local target=$1 p parents=()
  p=$target
  while [ "$p" != / ]; do p=$(dirname "$p"); parents=("$p" "${parents[@]}"); done
  for p in "${parents[@]}"; do
    if ! runuser -u postgres -- test -x "$p" 2>/dev/null; then
      chmod o+x "$p" && echo "pg.sh: $p made searchable by others (o+x) so that the postgres user can reach $target" >&2
    fi
  done
}

# own DIR: DIR made, absolute in $dir, owned by the server's user and reachable by it.
own() {
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    reach "$dir"
  fi
}

# serve: starts the cluster in $dir/data unless it runs, and prints its connection string.
serve() {
  opts="-c listen_addresses= -c unix_socket_directories=$dir -c max_connections=200"
  opts="$opts -c shared_buffers=256MB"
  if [ "$mode" = fast ]; then
    opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  else
    opts="$opts -c commit_delay=200 -c commit_siblings=2"
  fi
  opts="$opts ${PG_OPTS:-}"
  if ! as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    # The server outlives this script: it must not keep the caller's other descriptors
    # (a lock taken around a test run, say) open for its whole life.
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$opts" start \
      >/dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- \
      || { tail -n 20 "$dir/server.log" >&2; exit 1; }
  fi
  echo "host=$dir port=$PGPORT user=postgres dbname=postgres"
}

case "$cmd" in
start)
  own
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  serve
  ;;
standby)
  primary=$(cd "${3:?usage: pg.sh standby DIR PRIMARY_DIR}" && pwd)
  mode=durable
  own
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bindir/pg_basebackup" -D "$dir/data" -h "$primary" -U postgres -R -X stream -c fast \
      >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
  fi
  serve
  ;;
kill)
  [ -f "$dir/data/postmaster.pid" ] || exit 0
  pid=$(head -n 1 "$dir/data/postmaster.pid")
  kids=$(pgrep -P "$pid" || true)
  kill -9 "$pid"
  # The children notice their parent's death and exit; a new postmaster cannot start
  # while they hold the old shared memory.
  for _ in $(seq 300); do
    alive=
    for p in $pid $kids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && exit 0
    sleep 0.1
  done
  echo "pg.sh: processes of the killed postmaster still run: $pid $kids" >&2
  exit 1
  ;;
promote)
  as_owner "$bindir/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null
  ;;
reach)
  # What start does to the parents of DIR, alone: tests/run.sh says it before CTest,
  # which shows no output of a passing test.
  mkdir -p "$dir"
  reach "$(cd "$dir" && pwd)"
  ;;
stop)
  [ -d "$dir/data" ] || exit 0
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  ;;
*)
  echo "usage: pg.sh start|stop DIR [fast]" >&2; exit 2 ;;
esac
