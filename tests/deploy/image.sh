#!/usr/bin/env bash
# The container image, proven without a registry or a container runtime: makes the
# Debian 12 base images locally (tests/deploy/image_base.sh, cached), builds docker/Dockerfile
# with 'podman build --isolation=chroot', exports the image's root filesystem and runs
# claimd from it in a chroot both ways the image is shipped, with the compose file's
# claimd config (docker/compose/claimd.yaml, only its listen address and database
# rewritten) against a private PostgreSQL whose socket directory is bind-mounted at
# /run/postgresql: first the external signer ("--signer", uid 10002, the keys' owner)
# and claimd as the image's user (10001) through the entrypoint (which migrates); then
# claimd started as root, which runs its signer as 10002 and itself as 10001. In each:
# a firmware-exact self claim from the host's claimsim, the certificate checked with
# openssl, two uids, neither root; the image's HEALTHCHECK command run in the chroot
# (it must pass while claimd runs and fail after), and SIGTERM must end claimd with
# status 0.
#   tests/deploy/image.sh            (CTest: ctest -L image; CI: .ci/run)
# Environment: CLAIMD_BUILD_DIR (default build/; its claimsim and claimctl are used),
# CLAIMD_CI_CACHE (default /var/cache/claimd-ci: base tarballs and podman's storage,
# so a second run reuses the base and the build stage's packages). Needs root and the
# packages of .ci/deps.sh --image. Work files go to BUILD/image-test.*, removed
# after a passing run (a failed run's are kept until the next run).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${CLAIMD_BUILD_DIR:-$root/build}
cache=${CLAIMD_CI_CACHE:-/var/cache/claimd-ci}
# Per run, so two runs sharing a cache do not remove each other's image.
tag=localhost/claimd:image-test-$$
mac=7CDFA1F00001

die() { echo "image test: $*" >&2; exit 1; }
step() { echo "== image test: $*"; }

[ "$(id -u)" -eq 0 ] || die "needs root (podman build, chroot, bind mount)"
for t in podman debootstrap chroot openssl psql; do
  command -v "$t" >/dev/null || die "$t not found: run .ci/deps.sh --image"
done
for b in claimsim claimctl; do
  [ -x "$build/$b" ] || die "$build/$b not built (cmake --build build)"
done

# What the test mounts in a root filesystem (a container runtime provides both): /proc
# (claimd starts its signer from /proc/self/exe) and the PostgreSQL socket directory.
unmount_in() {
  local m
  for m in "$1/proc" "$1/run/postgresql"; do
    if mountpoint -q "$m" 2>/dev/null; then umount "$m"; fi
  done
}

start=$(date +%s)
mkdir -p "$build" "$cache"
# A run that was killed (SIGKILL at a CTest timeout) leaves its work directory, its
# PostgreSQL and the bind mount behind; a failed one keeps its files for reading.
# Either is cleared now.
for old in "$build"/image-test.*; do
  [ -d "$old" ] || continue
  unmount_in "$old/rootfs"
  "$root/tests/pg.sh" stop "$old/pg" || true
  rm -rf --one-file-system "$old"
done
work=$(mktemp -d "$build/image-test.XXXXXX")
rootfs=$work/rootfs
# podman records its run directory in the storage, so it is fixed per cache too.
podman=(podman --root "$cache/storage" --runroot "$cache/runroot" --storage-driver overlay)
pid=""
spid=""
cid=""
ok=0

cleanup() {
  for p in "$pid" "$spid"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
      kill "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
  unmount_in "$rootfs"
  "$root/tests/pg.sh" stop "$work/pg" || true
  [ -z "$cid" ] || "${podman[@]}" rm -f "$cid" >/dev/null 2>&1 || true
  "${podman[@]}" rmi "$tag" >/dev/null 2>&1 || true
  "${podman[@]}" rmi "$tag-context" >/dev/null 2>&1 || true
  # Each new source tree leaves a few MB of build-stage layers behind; drop those a
  # week old, which also refreshes the cached build dependencies weekly.
  "${podman[@]}" image prune -f --filter until=168h >/dev/null 2>&1 || true
  if [ "$ok" = 1 ]; then
    # Never follow a mount out of the work directory, whatever happened above.
    rm -rf --one-file-system "$work"
  else
    echo "image test: FAILED; work files kept in $work" >&2
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

step "base images (debian:12, debian:12-slim) from debootstrap, cached in $cache"
bash "$root/tests/deploy/image_base.sh" "$cache" "${podman[@]:1}"

step "the build context: what .dockerignore lets through"
# A key where the build trees are, as the test suites leave them there too.
(umask 077 && echo "not a key" >"$work/planted.key")
printf 'FROM debian:12-slim\nCOPY . /context\n' >"$work/Containerfile.context"
"${podman[@]}" build --isolation=chroot --pull=never -q -f "$work/Containerfile.context" \
  -t "$tag-context" "$root" >"$work/context.log" 2>&1 || {
  cat "$work/context.log" >&2
  die "podman build of the context listing failed"
}
cid=$("${podman[@]}" create --no-healthcheck "$tag-context")
"${podman[@]}" export "$cid" | tar -t | sed -n 's|^context/||p' >"$work/context.txt"
"${podman[@]}" rm "$cid" >/dev/null
cid=""
"${podman[@]}" rmi "$tag-context" >/dev/null
grep -qx 'CMakeLists.txt' "$work/context.txt" || die "the build context lacks CMakeLists.txt"
if grep -E '^(\.git|build[^/]*|state)/|\.key$|PG_VERSION$' "$work/context.txt"; then
  die "the build context holds the files above; .dockerignore must leave them out"
fi
echo "context: $(grep -c '[^/]$' "$work/context.txt") files"

step "podman build --isolation=chroot -f docker/Dockerfile (log: $work/build.log)"
t0=$(date +%s)
if ! "${podman[@]}" build --isolation=chroot --pull=never --format docker \
  -f "$root/docker/Dockerfile" -t "$tag" "$root" >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  die "podman build failed"
fi
build_s=$(($(date +%s) - t0))

inspect() { "${podman[@]}" image inspect --format "$1" "$tag" | sed '/^$/d'; }
size=$(inspect '{{.Size}}')
user=$(inspect '{{.Config.User}}')
mapfile -t entrypoint < <(inspect '{{range .Config.Entrypoint}}{{println .}}{{end}}')
mapfile -t cmd < <(inspect '{{range .Config.Cmd}}{{println .}}{{end}}')
mapfile -t env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}')
mapfile -t health < <(inspect '{{if .Config.Healthcheck}}{{range .Config.Healthcheck.Test}}{{println .}}{{end}}{{end}}')
echo "image: $((size / 1000000)) MB, user $user, entrypoint ${entrypoint[*]}, cmd ${cmd[*]}"
[ "$user" = "10001:10001" ] || die "image user is '$user', the README documents 10001:10001"
[ "${#entrypoint[@]}" -gt 0 ] || die "image has no ENTRYPOINT"
[ "${health[0]:-}" = CMD ] || die "image has no HEALTHCHECK CMD (got: ${health[*]:-none})"

step "export the image's root filesystem"
cid=$("${podman[@]}" create --no-healthcheck "$tag")
mkdir "$rootfs"
"${podman[@]}" export "$cid" | tar -C "$rootfs" --numeric-owner -xf -
"${podman[@]}" rm "$cid" >/dev/null
cid=""
for f in usr/bin/cc usr/bin/gcc usr/bin/c++ usr/bin/ld usr/bin/make usr/bin/cmake \
  usr/bin/clang usr/include/stdio.h; do
  [ ! -e "$rootfs/$f" ] || die "the runtime image contains /$f (no build tools belong there)"
done
grep -q '^claimd:x:10001:10001:' "$rootfs/etc/passwd" || die "no user claimd with uid 10001 in the image"
grep -q '^claimd-signer:x:10002:10002:' "$rootfs/etc/passwd" ||
  die "no user claimd-signer with uid 10002 in the image"
mkdir -p "$rootfs/proc"
mount -t proc proc "$rootfs/proc"

# Runs a command inside the image's files as the image's user (or the uid:gid given
# with -u), with only the image's environment (plus the given NAME=VALUE words).
in_image() {
  local extra=() as=$user
  if [ "$1" = -u ]; then as=$2; shift 2; fi
  while [ $# -gt 0 ] && [[ $1 == *=* ]]; do extra+=("$1"); shift; done
  env -i "${env[@]}" HOME=/ "${extra[@]}" chroot --userspec="$as" "$rootfs" "$@"
}
# The uids of process $1 (real, effective, saved, file system).
uids() { sed -n 's/^Uid:[[:space:]]*//p' "/proc/$1/status" | tr -s '\t ' ' '; }

step "keys and the compose config, as an operator would mount them"
keys=$rootfs/etc/claimd/keys db=$rootfs/etc/claimd/db sock=$rootfs/run/claimd-signer/signer.sock
mkdir -p "$keys" "$db"
"$build/claimctl" dev-ca --out "$keys/ca" >/dev/null
(umask 077 && "$build/claimctl" keygen >"$keys/secrets.key")
(umask 077 && echo "postgres:5432:claimd:claimd:unused-with-trust-auth" >"$db/pgpass")
chmod -R go-rwx "$keys" "$db"
chown -R 10001:10001 "$db"
sed -e 's|^  listen: .*|  listen: "127.0.0.1:0"|' \
  -e 's|^  url: .*|  url: "host=/run/postgresql dbname=claimd user=claimd"|' \
  "$root/docker/compose/claimd.yaml" >"$rootfs/etc/claimd/claimd.yaml"
[ "$(diff "$root/docker/compose/claimd.yaml" "$rootfs/etc/claimd/claimd.yaml" | grep -c '^>')" = 2 ] ||
  die "docker/compose/claimd.yaml no longer has one 'listen:' and one 'url:' line to rewrite"
# Keys owned by root, as a first try often leaves them: the signer's user cannot read them.
if in_image -u 10002:10002 claimd --signer -c /etc/claimd/claimd.yaml >"$work/t-root.log" 2>&1 ||
  ! grep -q 'Permission denied' "$work/t-root.log"; then
  cat "$work/t-root.log" >&2
  die "the signer with root-owned 0600 keys did not fail on permissions, as the docs say it does"
fi
chown -R 10002:10002 "$keys"

step "private PostgreSQL; role and database as docs/install.md creates them"
pg=$("$root/tests/pg.sh" start "$work/pg" fast)
psql "$pg" -v ON_ERROR_STOP=1 -qc "CREATE ROLE claimd LOGIN" -c "CREATE DATABASE claimd OWNER claimd"
mkdir -p "$rootfs/run/postgresql"
mount --bind "$work/pg" "$rootfs/run/postgresql"

# Waits for claimd ($pid, log $1) to write /tmp/ready; its port.
ready_port() {
  for _ in $(seq 150); do
    [ -s "$rootfs/tmp/ready" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$1" >&2; die "claimd exited at start"; }
    sleep 0.2
  done
  [ -s "$rootfs/tmp/ready" ] || { cat "$1" >&2; die "claimd not ready after 30 s"; }
  head -n 1 "$rootfs/tmp/ready"
}

# A firmware-exact self claim of chip $1 on port $2, the certificate checked.
claim() {
  local chip=$1 port=$2 efuse
  efuse=$(openssl rand -hex 16 | tr a-f A-F)
  printf 'mac,platform,efuse_key\n%s,esp32s3,%s\n' "$chip" "$efuse" >"$rootfs/tmp/devices.csv"
  # claimctl seals the eFuse key with the secrets key: it runs as the keys' owner.
  in_image -u 10002:10002 claimctl -c /etc/claimd/claimd.yaml devices import /tmp/devices.csv
  mkdir -p "$work/device"
  "$build/claimsim" self --url "http://127.0.0.1:$port" --mac "$chip" --platform esp32s3 \
    --efuse-key "$efuse" --out "$work/device" --root "$keys/ca/root.pem"
  openssl verify -CAfile "$keys/ca/root.pem" -untrusted "$keys/ca/intermediate.pem" \
    "$work/device/$chip.crt"
  subject=$(openssl x509 -in "$work/device/$chip.crt" -noout -subject -nameopt RFC2253)
  [ "$subject" = "subject=CN=$chip" ] || die "certificate subject is '$subject'"
  openssl x509 -in "$work/device/$chip.crt" -noout -ext extendedKeyUsage | grep -q 'TLS Web Client' ||
    die "certificate lacks extendedKeyUsage clientAuth"
}

# The health check passes, SIGTERM ends claimd with 0, and the health check fails.
health_and_stop() {
  local port=$1 log=$2 status=0
  in_image CLAIMD_HEALTH_PORT="$port" "${health[@]:1}" || die "health check failed while claimd runs"
  kill -TERM "$pid"
  wait "$pid" || status=$?
  pid=""
  [ "$status" = 0 ] || { cat "$log" >&2; die "claimd exited with $status after SIGTERM"; }
  if in_image CLAIMD_HEALTH_PORT="$port" "${health[@]:1}" 2>/dev/null; then
    die "health check passed with claimd stopped"
  fi
}

step "external signer from the image: ${entrypoint[*]} --signer, as 10002:10002"
env -i "${env[@]}" HOME=/ chroot --userspec=10002:10002 "$rootfs" \
  "${entrypoint[@]}" --signer -c /etc/claimd/claimd.yaml >"$work/signer.log" 2>&1 &
spid=$!
for _ in $(seq 100); do
  [ -S "$sock" ] && break
  kill -0 "$spid" 2>/dev/null || { cat "$work/signer.log" >&2; die "the signer exited at start"; }
  sleep 0.1
done
[ -S "$sock" ] || { cat "$work/signer.log" >&2; die "the signer does not listen on $sock"; }
in_image claimd -t --no-database -c /etc/claimd/claimd.yaml || die "claimd -t refused the compose config"

step "claimd from the image: ${entrypoint[*]} ${cmd[*]}, as $user"
# Not through in_image: a function in the background is a subshell, and $! must be the
# process that becomes claimd (env, chroot and the entrypoint each exec the next).
rm -f "$rootfs/tmp/ready"
env -i "${env[@]}" HOME=/ chroot --userspec="$user" "$rootfs" \
  "${entrypoint[@]}" "${cmd[@]}" --ready-file /tmp/ready >"$work/claimd.log" 2>&1 &
pid=$!
port=$(ready_port "$work/claimd.log")
[ "$(cat "/proc/$pid/comm")" = claimd ] || die "the entrypoint did not exec claimd (pid $pid is $(cat "/proc/$pid/comm"))"
grep -q 'migrat' "$work/claimd.log" || { cat "$work/claimd.log" >&2; die "the entrypoint did not migrate"; }
[ "$(uids "$pid")" = "10001 10001 10001 10001" ] && [ "$(uids "$spid")" = "10002 10002 10002 10002" ] ||
  die "external signer mode: claimd runs as $(uids "$pid"), the signer as $(uids "$spid")"

step "register a chip with the image's claimctl; firmware-exact self claim on port $port"
claim "$mac" "$port"
step "the image's HEALTHCHECK (${health[*]:1}) in the image, then SIGTERM"
health_and_stop "$port" "$work/claimd.log"
kill -TERM "$spid"
wait "$spid" || true
spid=""

step "claimd from the image started as root: its signer as 10002, itself as 10001"
# The same config without signer.socket: claimd starts its own signer.
sed 's|^  socket: .*|  user: claimd-signer|' "$rootfs/etc/claimd/claimd.yaml" >"$rootfs/etc/claimd/root.yaml"
rm -f "$rootfs/tmp/ready"
env -i "${env[@]}" HOME=/ CLAIMD_MIGRATE=no chroot --userspec=0:0 "$rootfs" \
  "${entrypoint[@]}" -c /etc/claimd/root.yaml --ready-file /tmp/ready >"$work/claimd-root.log" 2>&1 &
pid=$!
port=$(ready_port "$work/claimd-root.log")
spid=$(pgrep -P "$pid" -x claimd-signer || true)
[ -n "$spid" ] || die "claimd started as root has no claimd-signer child"
[ "$(uids "$pid")" = "10001 10001 10001 10001" ] && [ "$(uids "$spid")" = "10002 10002 10002 10002" ] ||
  die "root start: claimd runs as $(uids "$pid"), its signer as $(uids "$spid")"
spid=""
claim 7CDFA1F00002 "$port"
health_and_stop "$port" "$work/claimd-root.log"

ok=1
echo "image test: passed; image $((size / 1000000)) MB, build ${build_s} s, total $(($(date +%s) - start)) s"
