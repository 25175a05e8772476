#!/usr/bin/env bash
# A minimal Debian root filesystem made with debootstrap (variant minbase), cached as a
# tarball so that it is made once per suite and cache: the image test's base images
# (tests/deploy/image_base.sh) and the Debian 13 test run (tests/deploy/debian13.sh)
# start from it. Prints the tarball's path on stdout.
#   tests/deploy/debian_root.sh SUITE CACHE_DIR      (SUITE: bookworm | trixie)
# The mirror is the one this machine's apt uses (the Debian archive's URI in
# /etc/apt/sources.list or /etc/apt/sources.list.d/), read at run time, so the root
# gets its packages where the host gets its own; CLAIMD_DEBIAN_MIRROR overrides it, and
# with neither debootstrap picks its default. Delete CACHE_DIR to start over. Needs root.
#   tests/deploy/debian_root.sh --sources SUITE ROOTFS
# writes an unpacked root's /etc/apt/sources.list: the release from the root's own
# mirror (as debootstrap wrote it), its -updates, and its -security from wherever this
# host gets its own security updates, as a fresh installation has them.
set -euo pipefail


# The URI of the main Debian archive in apt's sources (one-line and deb822 formats): the
# entry whose suite is a release codename (not -security, -updates or a third party's).
host_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++;
           if ($2 ~ /^\[/) i++;
           if ($(i + 1) ~ /^(bookworm|trixie|forky|stable|testing|sid)$/) { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
         { uri = ""; ok = 0
           for (i = 1; i <= NF; i++) {
             if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
             if ($i ~ /^Suites:/ && $i ~ /[ \t](bookworm|trixie|forky|stable|testing|sid)([ \t]|$)/) ok = 1
           }
           if (ok && uri != "") { print uri; exit } }' "$f"
  done
}

# The URI of the host's security archive (the entry whose suite ends in -security).
host_security() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" && $3 ~ /-security$/ { print $2; exit }' || true
  cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk 'BEGIN { RS = ""; FS = "\n" }
         { uri = ""; ok = 0
           for (i = 1; i <= NF; i++) {
             if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
             if ($i ~ /^Suites:/ && $i ~ /-security/) ok = 1 }
           if (ok && uri != "") { print uri; exit } }' || true
}

if [ "${1:-}" = --sources ]; then
  suite=${2:?usage: debian_root.sh --sources SUITE ROOTFS}
  rootfs=${3:?usage: debian_root.sh --sources SUITE ROOTFS}
  mirror=$(awk '$1 == "deb" { print $2; exit }' "$rootfs/etc/apt/sources.list")
  security=$(host_security | head -n 1)
  {
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    [ -z "$security" ] || echo "deb $security $suite-security main"
  } >"$rootfs/etc/apt/sources.list"
  exit 0
fi
suite=${1:?usage: debian_root.sh SUITE CACHE_DIR}
cache=${2:?usage: debian_root.sh SUITE CACHE_DIR}
# Bump when the way the root is made changes, so old caches are not reused.
key=$suite-minbase-v3
tar=$cache/debian-$key.tar
mkdir -p "$cache"
exec 9>"$cache/debian-$suite.lock"
flock 9
if [ -s "$tar" ]; then
  echo "$tar"
  exit 0
fi
mirror=${CLAIMD_DEBIAN_MIRROR:-$(host_mirror | head -n 1)}
tmp=$(mktemp -d "$cache/debootstrap.XXXXXX")
echo "debootstrap $suite into $tmp (once per cache; a minute or more)" >&2
# shellcheck disable=SC2086
if ! debootstrap --variant=minbase "$suite" "$tmp/rootfs" $mirror >"$tmp/debootstrap.log" 2>&1; then
  tail -n 30 "$tmp/debootstrap.log" >&2
  echo "debian_root: debootstrap $suite failed (log above)" >&2
  rm -rf --one-file-system "$tmp"
  exit 1
fi
rm -rf "$tmp/rootfs/var/cache/apt/"*.bin "$tmp/rootfs/var/cache/apt/archives/"*.deb \
  "$tmp/rootfs/var/log/"{bootstrap.log,dpkg.log,apt/*}
tar -C "$tmp/rootfs" --numeric-owner -cf "$tmp/root.tar" .
mv "$tmp/root.tar" "$tar"
rm -rf --one-file-system "$tmp"
echo "$tar"
