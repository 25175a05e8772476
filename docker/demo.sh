#!/usr/bin/env bash
# Sets everything up and runs claimd on this machine: installs the Debian packages,
# builds, starts a private PostgreSQL under the state directory, makes a development
# CA, secrets key and identity provider, registers three simulated devices, starts
# claimd and lets each simulated device self-claim a certificate, which openssl then
# verifies; then a simulated phone app (assisted claiming) and the simulated RainMaker
# CLI (host-driven claiming) claim two more devices for a logged-in user.
#   docker/demo.sh           keep claimd running in the foreground (Ctrl-C stops all)
#   docker/demo.sh --once    stop after the demonstration
# Environment: CLAIMD_STATE (default ./state), PORT (default 8080).
set -euo pipefail
# Debian's psql wrapper gives a psql without a port the port of this machine's own
# default cluster, which need not be 5432, the private cluster's: say it.
export PGPORT=${PGPORT:-5432}
root=$(cd "$(dirname "$0")/.." && pwd)
state=${CLAIMD_STATE:-$root/state}
port=${PORT:-8080}
once=
# Only what the usage above says: a mistyped flag must not start the keep-running mode.
for arg in "$@"; do
  case "$arg" in
  --once) once=--once ;;
  -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "demo: unknown argument '$arg' (usage: docker/demo.sh [--once])" >&2; exit 2 ;;
  esac
done
case "$port" in
'' | *[!0-9]*) echo "demo: PORT must be a port number, not '$port'" >&2; exit 2 ;;
esac
case "$state" in
*[[:space:]]*) echo "demo: CLAIMD_STATE must not contain spaces: '$state'" >&2; exit 2 ;;
esac
# Before anything is installed or built: it installs packages and makes two users.
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root: it installs packages, and claimd runs its signer and itself as two users of their own" >&2
  exit 1
fi
mkdir -p "$state"
state=$(cd "$state" && pwd) # absolute: the database URL names its socket folder
# One demo per state directory: a second one would share the first one's PostgreSQL,
# and stop it on its way out. The lock is held until this script and claimd end.
exec 9>"$state/demo.lock"
if ! flock -n 9; then
  echo "demo: another docker/demo.sh runs with the state directory $state; stop it first (Ctrl-C)," \
    "or give this one a state directory and port of its own: CLAIMD_STATE=state2 PORT=8090 bash docker/demo.sh" >&2
  exit 1
fi
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; fi
  "$root/tests/pg.sh" stop "$state/pg"
}

echo "== Debian packages (installed only if missing)"
bash "$root/.ci/deps.sh"
echo "== building claimd, claimctl and claimsim in $root/build (a minute or two the first time)"
cmake -S "$root" -B "$root/build" >/dev/null
# A line at every quarter of the build instead of silence or hundreds of lines. A shell
# loop, not awk: Debian's awk (mawk) reads a pipe in blocks and would print them all at
# the end. make builds the three targets one after another, each counting from 0 % to
# 100 %: the quarters are claimd's (with the libraries, most of the work), and 100 % is
# said when the last of the three is built, not when claimd is.
next_at=25
cmake --build "$root/build" -j"$(nproc)" --target claimd claimctl claimsim |
  while IFS= read -r line; do
    [[ $line =~ ^\[\ *([0-9]+)%\] ]] || continue
    p=${BASH_REMATCH[1]}
    if [ "$p" -ge "$next_at" ] && [ "$p" -lt 100 ]; then
      echo "   built $p%"
      next_at=$((p - p % 25 + 25))
    fi
  done
echo "   built 100%"
B=$root/build

echo "== private PostgreSQL in $state/pg"
trap cleanup EXIT # from here on, whatever fails stops PostgreSQL again
pg=$("$root/tests/pg.sh" start "$state/pg")
if ! psql "$pg" -qtAc "SELECT 1 FROM pg_database WHERE datname = 'claimd'" | grep -q 1; then
  psql "$pg" -qc "CREATE DATABASE claimd"
fi

echo "== development CA and secrets key"
if [ -f "$state/ca/intermediate.pem" ]; then
  echo "   (reusing those of an earlier run in $state)"
else
  "$B/claimctl" dev-ca --out "$state/ca"
fi
[ -f "$state/secrets.key" ] || (umask 077 && "$B/claimctl" keygen >"$state/secrets.key")
[ -f "$state/idp/jwks.json" ] || "$B/claimctl" dev-idp --out "$state/idp"
# Two users (README, "Security"): started as root, claimd runs its signer as
# claimd-signer and itself as claimd, which cannot read the keys; make them, as
# docs/install.md says to. claimd writes its ready file into the state directory.
for u in claimd claimd-signer; do
  if ! id "$u" >/dev/null 2>&1; then
    echo "== system user $u"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$u"
  fi
done
chown claimd "$state"
cat >"$state/claimd.yaml" <<YAML
server:
  listen: "127.0.0.1:$port"
database:
  url: "host=$state/pg user=postgres dbname=claimd"
ca:
  certificate: ca/intermediate.pem
  key: ca/intermediate.key
secrets:
  key_file: secrets.key
claim:
  mqtt_host: mqtt.example.com
users:
  jwt:
    jwks_file: idp/jwks.json
    issuer: "https://idp.claimd-demo.invalid/"
    audience: "claimd"
YAML
"$B/claimctl" -c "$state/claimd.yaml" migrate
"$B/claimd" -t -c "$state/claimd.yaml"

echo "== registering simulated devices (as a factory would, from its CSV)"
# The CSV holds the chips' eFuse keys: readable by its owner only, like the secrets key.
if [ ! -f "$state/devices.csv" ]; then
  (umask 077 && : >"$state/devices.csv")
  { echo "mac,platform,efuse_key"
    for i in 1 2 3; do
      printf '7CDFA1%06X,esp32s3,%s\n' "$i" "$(openssl rand -hex 16 | tr a-f A-F)"
    done; } >"$state/devices.csv"
fi
chmod 0600 "$state/devices.csv"
"$B/claimctl" -c "$state/claimd.yaml" devices import "$state/devices.csv"

echo "== starting claimd on 127.0.0.1:$port (log: $state/claimd.log)"
rm -f "$state/ready"
"$B/claimd" -c "$state/claimd.yaml" --ready-file "$state/ready" 2>"$state/claimd.log" &
pid=$!
# Until it says it listens, or it exits (a taken port, say): no need to wait longer.
for _ in $(seq 100); do
  [ -f "$state/ready" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ ! -f "$state/ready" ]; then
  cat "$state/claimd.log"
  if grep -q "already in use" "$state/claimd.log"; then
    echo "demo: port $port is taken by another process; choose another: PORT=8090 bash docker/demo.sh" >&2
  fi
  exit 1
fi

echo "== simulated devices self-claim (firmware-exact requests)"
mkdir -p "$state/devices"
tail -n +2 "$state/devices.csv" | while IFS=, read -r mac platform key; do
  "$B/claimsim" self --url "http://127.0.0.1:$port" --mac "$mac" --platform "$platform" \
    --efuse-key "$key" --key-file "$state/devices/$mac.key" --out "$state/devices" \
    --root "$state/ca/root.pem"
  openssl verify -CAfile "$state/ca/root.pem" -untrusted "$state/ca/intermediate.pem" \
    "$state/devices/$mac.crt"
  openssl x509 -in "$state/devices/$mac.crt" -noout -subject -serial -enddate | sed 's/^/    /'
done

echo "== a logged-in user claims devices through the phone app and the CLI"
token=$("$B/claimctl" dev-token --idp "$state/idp" --issuer "https://idp.claimd-demo.invalid/" \
  --audience claimd --user demo-user)
"$B/claimsim" app --url "http://127.0.0.1:$port" --token "$token" --mac 7C:DF:A1:00:10:01 \
  --key-file "$state/devices/app-device.key" --out "$state/devices" --root "$state/ca/root.pem"
"$B/claimsim" cli --url "http://127.0.0.1:$port" --token "$token" --mac 7C:DF:A1:00:10:02 \
  --key-file "$state/devices/cli-device.key" --out "$state/devices" --root "$state/ca/root.pem"
"$B/claimctl" -c "$state/claimd.yaml" nodes list --user demo-user | sed 's/^/    /'

if [ "$once" = "--once" ]; then
  echo "== done; stopping"
  exit 0
fi
echo "== claimd is running on http://127.0.0.1:$port (Ctrl-C stops it and PostgreSQL)"
wait "$pid"
