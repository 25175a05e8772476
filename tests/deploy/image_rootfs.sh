#!/usr/bin/env bash
# Builds docker/Dockerfile with podman (base images from tests/deploy/image_base.sh, no
# registry) and unpacks the image's root filesystem into a folder, for tests that run
# the image's own files in a chroot (tests/helm/pod.sh). The image and its temporary
# container are removed again; the build cache stays in the podman storage.
#   tests/deploy/image_rootfs.sh OUT_DIR      (OUT_DIR must not exist yet)
# Environment: CLAIMD_CI_CACHE (default /var/cache/claimd-ci), as tests/deploy/image.sh.
# Needs root and the packages of .ci/deps.sh --image. The build log is OUT_DIR.build.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: image_rootfs.sh OUT_DIR}
cache=${CLAIMD_CI_CACHE:-/var/cache/claimd-ci}
tag=localhost/claimd:rootfs-$$
podman=(podman --root "$cache/storage" --runroot "$cache/runroot" --storage-driver overlay)

die() { echo "image rootfs: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (podman build)"
[ ! -e "$out" ] || die "$out exists"
mkdir -p "$cache"
# The Debian release the Dockerfile starts FROM, as the image test reads it.
release=$(sed -n 's/^FROM debian:\([0-9]*\)-slim.*/\1/p' "$root/docker/Dockerfile")
bash "$root/tests/deploy/image_base.sh" "$cache" "$release" "${podman[@]:1}"

cid=""
cleanup() {
  [ -z "$cid" ] || "${podman[@]}" rm -f "$cid" >/dev/null 2>&1 || true
  "${podman[@]}" rmi "$tag" >/dev/null 2>&1 || true
}
trap cleanup EXIT
if ! "${podman[@]}" build --isolation=chroot --pull=never --format docker \
  -f "$root/docker/Dockerfile" -t "$tag" "$root" >"$out.build.log" 2>&1; then
  tail -n 40 "$out.build.log" >&2
  die "podman build failed (log: $out.build.log)"
fi
cid=$("${podman[@]}" create --no-healthcheck "$tag")
mkdir -p "$out"
"${podman[@]}" export "$cid" | tar -C "$out" --numeric-owner -xf -
