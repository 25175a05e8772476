#!/usr/bin/env bash
# The release build's whole test suite on Debian 13, from a Debian 12 (or 13) host: a
# fresh Debian 13 root each run, unpacked from the cached debootstrap tarball
# (tests/deploy/debian_root.sh), with this tree's files copied in; inside it
# .ci/deps.sh --test installs what a new user's machine would get (downloaded .debs are
# cached), then tests/run.sh --quick builds and runs every CTest case but the image
# test, in a network namespace of its own (only loopback), so its ports and its
# PostgreSQL never meet the host's.
#   tests/deploy/debian13.sh          (CI: .ci/run)
# Environment: CLAIMD_CI_CACHE (default /var/cache/claimd-ci: the root tarball and the
# .deb cache), CLAIMD_CI_LOCK (a file: the test stage runs under flock on it, for
# machines whose CPU is shared by several runs), CLAIMD_DEBIAN13_KEEP=1 (keep the root
# after a passing run, to look at or measure in it). Needs root, debootstrap, unshare, ip.
# Work files go to build-debian13/ in the tree, removed after a passing run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${CLAIMD_CI_CACHE:-/var/cache/claimd-ci}
work=$root/build-debian13
rootfs=$work/rootfs

die() { echo "debian13: $*" >&2; exit 1; }
step() { echo "== debian13: $*"; }
[ "$(id -u)" -eq 0 ] || die "needs root (chroot, mounts, namespaces)"
for t in debootstrap unshare ip chroot; do
  command -v "$t" >/dev/null || die "$t not found: run .ci/deps.sh --image"
done

start=$(date +%s)
step "Debian 13 root (debootstrap, cached in $cache)"
tar=$(bash "$root/tests/deploy/debian_root.sh" trixie "$cache")
rm -rf --one-file-system "$work"
mkdir -p "$rootfs" "$cache/debs-trixie"
tar -C "$rootfs" --numeric-owner -xf "$tar"

# The root's apt sources: the release, its updates and its security updates.
bash "$root/tests/deploy/debian_root.sh" --sources trixie "$rootfs"
# Packages must not start their services (PostgreSQL's cluster, nginx on port 80, the
# broker) in a chroot that shares the host's network: the tests start their own.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"

step "this tree's files into /src"
mkdir "$rootfs/src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 -r stat --printf '%n\0' 2>/dev/null | tar --null -T - -cf -) |
    tar -C "$rootfs/src" -xf -
else
  tar -C "$root" --exclude='./build*' --exclude='./state' -cf - . | tar -C "$rootfs/src" -xf -
fi

# Runs "$@" as root inside the Debian 13 root, in a mount namespace of its own (so
# every mount below ends with it), with a clean environment.
in_root() {
  unshare --mount --propagation private -- bash -c '
    set -e
    r=$1; cache=$2; shift 2
    # The root a mount point of its own, as on a machine: the outage cases make network
    # namespaces (ip netns mounts under /run) and private mounts of "/".
    mount --bind "$r" "$r"
    mount -t proc proc "$r/proc"
    mount -t sysfs sys "$r/sys"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs tmpfs "$r/dev/shm"
    mount --bind "$cache/debs-trixie" "$r/var/cache/apt/archives"
    exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 TERM=dumb "$@"' in_root "$rootfs" "$cache" "$@"
}

step "packages: .ci/deps.sh --test, as on a new machine"
t0=$(date +%s)
in_root bash -c 'apt-get update -qq && cd /src && CLAIMD_DEPS_NO_HELM=1 bash .ci/deps.sh --test'
deps_s=$(($(date +%s) - t0))
in_root bash -c 'echo "Debian $(cat /etc/debian_version); $(dpkg-query -W -f="\${Package} \${Version}, " \
  libmicrohttpd12t64 postgresql nginx mosquitto gcc clang openssl)"'

step "release build"
t0=$(date +%s)
in_root bash -c 'cd /src && cmake -S . -B build -DCLAIMD_WERROR=ON >/dev/null && cmake --build build -j"$(nproc)" >/dev/null'
build_s=$(($(date +%s) - t0))

# The Helm chart checks (label helm) run no compiled code and fetch their tools with npm,
# which this root is not set up to reach: the host run covers them (CLAIMD_DEPS_NO_HELM).
step "tests/run.sh --quick, in a network namespace with only loopback"
t0=$(date +%s)
lock=()
[ -z "${CLAIMD_CI_LOCK:-}" ] || lock=(flock "$CLAIMD_CI_LOCK")
"${lock[@]}" unshare --net -- bash -c 'ip link set lo up && "$@"' run \
  bash -c "$(declare -f in_root); rootfs='$rootfs' cache='$cache' in_root bash -c 'cd /src && CLAIMD_DEPS_NO_HELM=1 EXCLUDE=\"image|helm\" bash tests/run.sh --quick'"
test_s=$(($(date +%s) - t0))
count=$(in_root bash -c 'ctest --test-dir /src/build -N -LE image | tail -n 1')

echo "debian13: passed: $count; packages ${deps_s} s, build ${build_s} s, tests ${test_s} s, total $(($(date +%s) - start)) s"
[ "${CLAIMD_DEBIAN13_KEEP:-}" = 1 ] || rm -rf --one-file-system "$work"
