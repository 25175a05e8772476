#!/usr/bin/env bash
# 'cmake --install' into a temporary prefix puts the programs, the migrations, the example
# config, the install guide and the systemd unit where they belong, with the unit's
# ExecStart= rewritten for that prefix; then 'systemd-analyze verify' must accept the
# installed unit without a single warning (it exits 0 on many mistakes and only prints
# them, so any output fails), and the unit must keep the hardening docs/install.md
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
  share/claimd/claimd.example.yaml share/doc/claimd/install.md lib/systemd/system/claimd.service; do
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

# systemd's own exposure score (0 = everything locked down, 10 = nothing): the unit scores
# 1.5; anything above 2.0 means hardening was lost.
systemd-analyze security --offline=yes --threshold=20 "$unit" >"$tmp/security.log" 2>&1 || {
  grep -E '^(✗|→)' "$tmp/security.log" >&2
  die "systemd-analyze security: exposure above 2.0"
}

verify() {
  systemd-analyze verify "$1" >"$tmp/verify.log" 2>&1 && [ ! -s "$tmp/verify.log" ]
}
verify "$unit" || { cat "$tmp/verify.log" >&2; die "systemd-analyze verify complained"; }
sed 's/^ProtectSystem=strict$/ProtectSystem=stricter/' "$unit" >"$tmp/broken.service"
if verify "$tmp/broken.service"; then
  die "systemd-analyze verify accepted a broken unit; this test would not notice one"
fi
echo "systemd test: passed ($unit verified)"
