#!/usr/bin/env bash
# Installs the Debian packages that building and running claimd need (and curl, for the
# README's requests to the demo's claimd); with --test also
# those only the test suite needs (a sanitizer-capable clang, clang-format, nginx, the
# MQTT broker and its clients, promtool (prometheus) for the metrics test, jq for the
# dashboard test, SoftHSM2 for the PKCS#11 tests, iproute2 and iptables for the outage
# tests that cut PostgreSQL off the network, systemd-analyze for the unit's test, docker-compose to
# validate docker/compose.yaml, Node.js, npm and unzip for the Helm chart's tools, which
# tests/helm/tools.sh then fetches with npm into a cache); with --image also podman and debootstrap for the image
# test and the Debian 13 run. docker/demo.sh calls it plain, tests/run.sh with --test,
# .ci/run with --image. So a fresh Debian 12 or 13 machine needs nothing installed by
# hand. Every name is a real package on both releases (libclang-rt-dev, not a versioned
# one; the PostgreSQL server package carries the contrib modules, which claimd does not
# use). Idempotent: no apt-get at all, not even an update, when everything is present.
# Prints one line before a (slow, first-run) install.
#   .ci/deps.sh [--test | --image]
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git ca-certificates openssl curl
  libmicrohttpd-dev libssl-dev libpq-dev libjansson-dev libsodium-dev libyaml-dev
  libcsv-dev libjwt-dev libseccomp-dev libp11-dev
  postgresql
)
case "${1:-}" in
--test | --image)
  pkgs+=(nginx clang libclang-rt-dev clang-format mosquitto mosquitto-clients)
  pkgs+=(systemd docker-compose prometheus jq softhsm2 iproute2 iptables unzip)
  # The Helm chart's tests fetch Helm and the Kubernetes schema validators with npm
  # (tests/helm/tools.sh). A Node.js from elsewhere that brings its own npm is kept.
  # CLAIMD_DEPS_NO_HELM=1 leaves them out, for a run that excludes the label helm
  # (the Debian 13 root: those checks compile nothing and the host run has them).
  [ "${CLAIMD_DEPS_NO_HELM:-}" = 1 ] || command -v npm >/dev/null || pkgs+=(nodejs npm)
  ;;&
--image) pkgs+=(podman debootstrap) ;;
esac

# One dpkg-query for all: the names installed, then those not among them.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${pkgs[@]}" 2>/dev/null |
  awk '$2 == "ii" { print $1 }' || true)
missing=()
for p in "${pkgs[@]}"; do
  grep -qx "$p" <<<"$installed" || missing+=("$p")
done
helm_tools() {
  [ "$(id -u)" -eq 0 ] || return 0 # the tests fetch them themselves, into their cache
  [ "${CLAIMD_DEPS_NO_HELM:-}" != 1 ] || return 0
  case "${1:-}" in
  --test | --image) bash "$(dirname "$0")/../tests/helm/tools.sh" >/dev/null ;;
  esac
}
if [ ${#missing[@]} -eq 0 ]; then
  helm_tools "$@"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "== installing ${#missing[@]} Debian package(s) (a few minutes on a fresh machine): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# One line per package as it is set up, so minutes of installing are not silent ones. A
# shell loop, not awk: Debian's awk (mawk) reads a pipe in blocks and would hold every
# line back until apt-get ends.
apt-get install -y -q --no-install-recommends "${missing[@]}" |
  while IFS= read -r line; do
    case "$line" in "Setting up "*) echo "   $line" ;; esac
  done
# The Debian package starts a cluster of its own; claimd's scripts start private ones
# and never use it, so leave it as the package left it.
# The same goes for nginx: the package may start the distribution's own server on port
# 80; the proxy tests run theirs from the build tree (tests/proxy/test_proxy.c).
helm_tools "$@"
