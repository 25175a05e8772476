# Shared by the benchmark scripts (sourced, not run): builds claimd, and sets up a
# private durable PostgreSQL, a development CA, a secrets key and a config in $work.
# Callers set root, work and B first.

# Debian's psql wrapper gives a psql without a port the port of this machine's own
# default cluster, which need not be 5432, the private cluster's: say it.
export PGPORT=${PGPORT:-5432}

# bench_build: the Debian packages, an up-to-date build in $B and an empty $work. A $B
# other than $root/build (BUILD=DIR, another tree's build, for comparing trees) is used
# as it is.
bench_build() {
  bash "$root/.ci/deps.sh"
  if [ "$B" = "$root/build" ]; then
    cmake -S "$root" -B "$B" >/dev/null && cmake --build "$B" -j"$(nproc)" >/dev/null
  fi
  rm -rf "$work" && mkdir -p "$work"
}

# bench_hsm: a SoftHSM2 token in $work/hsm holding the development CA's key (imported,
# the file then removed); prints the pkcs11: URI for ca.key. The caller exports
# SOFTHSM2_CONF=$work/hsm/softhsm2.conf (this runs in a command substitution).
bench_hsm() {
  local h=$work/hsm
  mkdir -p "$h/tokens"
  printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$h" >"$h/softhsm2.conf"
  SOFTHSM2_CONF=$h/softhsm2.conf softhsm2-util --init-token --free --label claimd-ca --pin 1234 --so-pin 4321 >/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$work/ca/intermediate.key" -out "$h/ca.p8"
  SOFTHSM2_CONF=$h/softhsm2.conf softhsm2-util --import "$h/ca.p8" --token claimd-ca --label ca --id 01 --pin 1234 >/dev/null
  rm -f "$h/ca.p8" "$work/ca/intermediate.key"
  (umask 077 && echo 1234 >"$h/pin")
  # Started as root, the signer runs as nobody and must read the token's files.
  [ "$(id -u)" -ne 0 ] || chown -R nobody "$h"
  echo "pkcs11:token=claimd-ca;object=ca;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:$h/pin"
}

# bench_setup CA_KEYTYPE [EXTRA_YAML]: everything up to a migrated database. HSM=1: the
# CA key in a SoftHSM2 token (bench_hsm).
bench_setup() {
  local ca=$1 extra=${2:-} key=ca/intermediate.key
  bench_build
  pg=$("$root/tests/pg.sh" start "$work/pg")
  psql "$pg" -qc "CREATE DATABASE claimd"
  "$B/claimctl" dev-ca --out "$work/ca" --key "$ca" >/dev/null
  (umask 077 && "$B/claimctl" keygen >"$work/secrets.key")
  if [ -n "${HSM:-}" ]; then
    key=$(bench_hsm)
    export SOFTHSM2_CONF=$work/hsm/softhsm2.conf
  fi
  # Run as root, claimd becomes server.user, which writes the ready file here.
  [ "$(id -u)" -ne 0 ] || chown daemon "$work"
  { [ -z "$extra" ] || printf '%s\n' "$extra"
    local user
    user=$(bench_server_user)
    case $extra in *server:*) ;; *) [ -z "$user" ] || printf 'server:\n%s\n' "$user" ;; esac
    # Run as root, the signer drops to signer.user: one that exists everywhere (a
    # build from before the signer has no such key).
    # BENCH_SIGNER_TIMEOUT: signer.timeout_seconds (cost.sh's signer under valgrind).
    [ "$(id -u)" -ne 0 ] || ! bench_has_key '^signer:' || printf 'signer:\n  user: nobody\n%s' \
      "${BENCH_SIGNER_TIMEOUT:+  timeout_seconds: $BENCH_SIGNER_TIMEOUT
}"
    cat <<YAML
database:
  url: "host=$work/pg user=postgres dbname=claimd"
ca:
  certificate: ca/intermediate.pem
  key: "$key"
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
# server.event_loop (unset: claimd's default).
bench_server_yaml() {
  local user
  user=$(bench_server_user)
  printf 'server:\n  listen: "127.0.0.1:0"\n  threads: %s\n  log_level: warn\n%s%slimits:\n  address_per_minute: 0\n  mac_per_minute: 0\n' \
    "$1" "${EVENT_LOOP:+  event_loop: $EVENT_LOOP
}" "${user:+$user
}"
}

# bench_server_user: run as root, claimd becomes server.user before it listens (two
# users, as deployed): one that exists everywhere, and may write the ready file in $work.
# BENCH_RUN_AS_ROOT=1: it stays root instead (server.run_as_root; cost.sh: valgrind's
# control channel cannot follow a process that changes its uid). Nothing for a build
# from before server.user.
bench_server_user() {
  [ "$(id -u)" -ne 0 ] || ! bench_has_key 'run_as_root:' || if [ -n "${BENCH_RUN_AS_ROOT:-}" ]; then
    printf '  run_as_root: yes\n'
  else
    printf '  user: daemon\n'
  fi
}

# bench_has_key REGEX: whether the build's example config has a line matching REGEX.
# Read whole first: under pipefail, grep -q closing the pipe early would fail claimctl
# with SIGPIPE and so the test.
bench_has_key() {
  local example
  example=$("$B/claimctl" config-example)
  grep -q "$1" <<<"$example"
}

# start_claimd: claimd on $work/claimd.yaml in the background; sets pid and port.
# CLAIMD_WRAP: a command claimd runs under (such as valgrind), given a minute to start.
start_claimd() {
  rm -f "$work/ready"
  ${CLAIMD_WRAP:-} "$B/claimd" -c "$work/claimd.yaml" --ready-file "$work/ready" 2>"$work/claimd.log" &
  pid=$!
  local tries=100
  [ -z "${CLAIMD_WRAP:-}" ] || tries=600
  for _ in $(seq "$tries"); do [ -f "$work/ready" ] && break; sleep 0.1; done
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
