#!/usr/bin/env bash
# 'cmake --install' into a temporary prefix puts the programs, the migrations, the example
# config, the install guide and the two systemd units (claimd.service and
# claimd-signer.service, two users) where they belong, with ExecStart= rewritten for that
# prefix; then 'systemd-analyze verify' must accept the installed units without a single
# warning (it exits 0 on many mistakes and only prints
# them, so any output fails), and each unit must keep the hardening docs/install.md
# promises and systemd's exposure score of at most 2.0. A deliberately broken copy must be refused, so the check can fail.
#   tests/deploy/systemd.sh            (CTest: deploy.systemd)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${CLAIMD_BUILD_DIR:-$root/build}
die() { echo "systemd test: $*" >&2; exit 1; }

command -v systemd-analyze >/dev/null || die "systemd-analyze not found: run .ci/deps.sh --test"
[ -x "$build/claimd" ] || die "$build/claimd not built"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/usr

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || {
  cat "$tmp/install.log" >&2
  die "cmake --install failed"
}
for f in bin/claimd bin/claimctl bin/claimsim share/claimd/sql/0001_schema.sql \
  share/claimd/claimd.example.yaml share/doc/claimd/install.md share/doc/claimd/operations.md \
  lib/systemd/system/claimd.service lib/systemd/system/claimd-signer.service; do
  [ -e "$prefix/$f" ] || die "cmake --install did not install <prefix>/$f"
done
unit=$prefix/lib/systemd/system/claimd.service
grep -qx "ExecStart=$prefix/bin/claimd -c /etc/claimd/claimd.yaml" "$unit" ||
  die "installed unit's ExecStart is not <prefix>/bin/claimd: $(grep '^ExecStart=' "$unit")"
! grep -q /usr/local/ "$unit" || die "installed unit still names /usr/local/"

for d in User=claimd ProtectSystem=strict PrivateTmp=yes NoNewPrivileges=yes \
  CapabilityBoundingSet= "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" \
  SystemCallFilter=@system-service 'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$d" "$unit" || die "unit lacks '$d'"
done

# Two users: the signer's unit runs claimd --signer as claimd-signer on the socket the
# network unit's claimd reaches; claimd.service wants it.
signer=$prefix/lib/systemd/system/claimd-signer.service
grep -qx "ExecStart=$prefix/bin/claimd --signer -c /etc/claimd/claimd.yaml" "$signer" ||
  die "installed signer unit's ExecStart: $(grep '^ExecStart=' "$signer")"
for d in User=claimd-signer RuntimeDirectory=claimd-signer RuntimeDirectoryMode=0755 \
  PrivateNetwork=yes RestrictAddressFamilies=AF_UNIX CapabilityBoundingSet= \
  NoNewPrivileges=yes ProtectSystem=strict SystemCallFilter=@system-service; do
  grep -qxF "$d" "$signer" || die "signer unit lacks '$d'"
done
# Wanted, not required: a signer restarted for a new key must not restart claimd
# (docs/install.md), and Requires= would.
grep -qx "Wants=network-online.target claimd-signer.service" "$unit" ||
  die "claimd.service does not want the signer"
! grep -q '^Requires=\|^BindsTo=' "$unit" || die "claimd.service requires or binds to a unit"
! grep -q '^User=root\|^AmbientCapabilities=.' "$unit" "$signer" ||
  die "a unit runs as root or with a capability"
grep -q "  socket: /run/claimd-signer/signer.sock" "$root/docs/install.md" ||
  die "docs/install.md does not give the signer.socket the units use"
# Every guide install.md links to is installed next to it.
for l in $(grep -o '](\([a-z0-9-]*\.md\)' "$root/docs/install.md" | cut -c3- | sort -u); do
  [ -e "$prefix/share/doc/claimd/$l" ] || die "install.md links to $l, which is not installed"
done
# install.md's build-dependency line is what .ci/deps.sh installs for the build (its
# list less git, ca-certificates, openssl, curl (the demo's) and the PostgreSQL server).
doc_pkgs=$(awk '/^apt-get install build-essential/ { on = 1 }
  on { print; if ($0 !~ /\\$/) exit }' "$root/docs/install.md" |
  tr -d '\\' | tr -s ' ' '\n' | grep -vx 'apt-get\|install\|' | sort)
ci_pkgs=$(sed -n '/^pkgs=(/,/^)/p' "$root/.ci/deps.sh" | sed '1d;$d' | tr -s ' ' '\n' |
  grep -vx 'git\|ca-certificates\|openssl\|curl\|postgresql\|' | sort)
[ -n "$doc_pkgs" ] && [ "$doc_pkgs" = "$ci_pkgs" ] ||
  die "docs/install.md's build dependencies differ from .ci/deps.sh's:
$(diff <(echo "$doc_pkgs") <(echo "$ci_pkgs"))"

# systemd's own exposure score (0 = everything locked down, 10 = nothing): claimd.service
# scores 1.5 and the signer's less; anything above 2.0 means hardening was lost.
for u in "$unit" "$signer"; do
  systemd-analyze security --offline=yes --threshold=20 "$u" >"$tmp/security.log" 2>&1 || {
    grep -E '^(✗|→)' "$tmp/security.log" >&2
    die "systemd-analyze security: $(basename "$u"): exposure above 2.0"
  }
  grep -E '^→ Overall exposure' "$tmp/security.log" | sed "s|^|$(basename "$u"): |"
done

verify() {
  systemd-analyze verify "$@" >"$tmp/verify.log" 2>&1 && [ ! -s "$tmp/verify.log" ]
}
verify "$unit" "$signer" || { cat "$tmp/verify.log" >&2; die "systemd-analyze verify complained"; }
sed 's/^ProtectSystem=strict$/ProtectSystem=stricter/' "$unit" >"$tmp/broken.service"
if verify "$tmp/broken.service"; then
  die "systemd-analyze verify accepted a broken unit; this test would not notice one"
fi
echo "systemd test: passed ($unit verified)"
