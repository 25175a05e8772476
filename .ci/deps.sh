#!/usr/bin/env bash
# Installs every Debian package that building, testing and running claimd needs.
# Used by .ci/run, tests/run.sh and docker/demo.sh, so a fresh Debian 12 machine needs
# nothing installed by hand. Idempotent: skips apt-get when everything is present.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git ca-certificates openssl
  libmicrohttpd-dev libssl-dev libpq-dev libjansson-dev libsodium-dev libyaml-dev
  libcsv-dev libjwt-dev
  postgresql postgresql-contrib
  clang libclang-rt-14-dev clang-format
  mosquitto mosquitto-clients curl
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts a cluster of its own; claimd's scripts start private ones
# and never use it, so leave it as the package left it.
