#!/usr/bin/env bash
# Debian packages that only the deployment tests need, on top of .ci/deps.sh (so the
# demo does not install them): systemd-analyze for the unit's test (tests/deploy/systemd.sh),
# docker-compose to validate docker/compose.yaml (tests/deploy/compose.sh; it runs
# nothing) and, with --image, podman and debootstrap for building and exporting the container
# image (tests/deploy/image.sh; as root, podman needs no rootless helpers).
#   .ci/deps-deploy.sh            what tests/run.sh needs
#   .ci/deps-deploy.sh --image    also what the image test needs (.ci/run)
# Idempotent: skips apt-get when everything is present.
set -euo pipefail

pkgs=(systemd docker-compose)
if [ "${1:-}" = --image ]; then
  pkgs+=(podman debootstrap)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps-deploy: missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "deps-deploy: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
