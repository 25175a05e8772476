# Shared by the benchmark scripts (sourced, not run): builds claimd, and sets up a
# private durable PostgreSQL, a development CA, a secrets key and a config in $work.
# Callers set root, work and B first.

# bench_build: the Debian packages, an up-to-date build in $B and an empty $work.
bench_build() {
  bash "$root/.ci/deps.sh"
  cmake -S "$root" -B "$B" >/dev/null && cmake --build "$B" -j"$(nproc)" >/dev/null
  rm -rf "$work" && mkdir -p "$work"
}

# bench_setup CA_KEYTYPE [EXTRA_YAML]: everything up to a migrated database.
bench_setup() {
  local ca=$1 extra=${2:-}
  bench_build
  pg=$("$root/tests/pg.sh" start "$work/pg")
  psql "$pg" -qc "CREATE DATABASE claimd"
  "$B/claimctl" dev-ca --out "$work/ca" --key "$ca" >/dev/null
  (umask 077 && "$B/claimctl" keygen >"$work/secrets.key")
  { [ -z "$extra" ] || printf '%s\n' "$extra"
    cat <<YAML
database:
  url: "host=$work/pg user=postgres dbname=claimd"
ca:
  certificate: ca/intermediate.pem
  key: ca/intermediate.key
secrets:
  key_file: secrets.key
YAML
  } >"$work/claimd.yaml"
  "$B/claimctl" -c "$work/claimd.yaml" migrate >/dev/null
}

# gen_devices N SEED FILE: a manufacturing CSV of N chips with random eFuse keys.
gen_devices() {
  awk -v n="$1" -v seed="$2" 'BEGIN { srand(seed); print "mac,platform,efuse_key";
    for (i = 1; i <= n; i++) { k = "";
      for (j = 0; j < 16; j++) k = k sprintf("%02X", int(rand() * 256));
      printf "7C%010X,esp32s3,%s\n", i, k } }' >"$3"
}

# bench_server_yaml THREADS: the server and limits sections of a benchmark config. One
# load generator re-claims its devices from one address, which the per-address and
# per-MAC limits would (rightly) stop, so they are off. EVENT_LOOP (epoll | poll) sets
# server.event_loop.
bench_server_yaml() {
  printf 'server:\n  listen: "127.0.0.1:0"\n  threads: %s\n  log_level: warn\n  event_loop: %s\nlimits:\n  address_per_minute: 0\n  mac_per_minute: 0\n' "$1" "${EVENT_LOOP:-epoll}"
}

# start_claimd: claimd on $work/claimd.yaml in the background; sets pid and port.
start_claimd() {
  rm -f "$work/ready"
  "$B/claimd" -c "$work/claimd.yaml" --ready-file "$work/ready" 2>"$work/claimd.log" &
  pid=$!
  for _ in $(seq 100); do [ -f "$work/ready" ] && break; sleep 0.1; done
  [ -f "$work/ready" ] || { cat "$work/claimd.log" >&2; return 1; }
  port=$(cat "$work/ready")
}

# stop_claimd: stops it; its exit status after SIGTERM must not stop the caller.
stop_claimd() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi
  pid=
}

# bench_cleanup: for 'trap bench_cleanup EXIT': claimd, cfssl ($cpid) and PostgreSQL.
bench_cleanup() {
  stop_claimd
  if [ -n "${cpid:-}" ]; then kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null || true; fi
  "$root/tests/pg.sh" stop "$work/pg"
}
