#!/usr/bin/env bash
# Makes the Debian base images that docker/Dockerfile starts FROM, without a registry:
# the cached debootstrap root of the release (tests/deploy/debian_root.sh) is imported
# into the given podman storage as localhost/debian:N and (with the official slim
# image's apt settings and documentation filters applied) localhost/debian:N-slim,
# which podman finds for the Dockerfile's 'FROM debian:N' when building with
# --pull=never. The Dockerfile is not changed: with access to a registry it builds from
# the real images.
#   tests/deploy/image_base.sh CACHE_DIR RELEASE PODMAN_ARGS...     (RELEASE: 12 | 13)
# CACHE_DIR keeps the tarballs (default in CI: /var/cache/claimd-ci); delete it to start
# over. Needs root.
set -euo pipefail
cache=${1:?usage: image_base.sh CACHE_DIR RELEASE PODMAN_ARGS...}
release=${2:?usage: image_base.sh CACHE_DIR RELEASE PODMAN_ARGS...}
shift 2
podman=(podman "$@")
case $release in
12) suite=bookworm ;;
13) suite=trixie ;;
*) echo "image_base: Debian $release is not one this script knows" >&2; exit 1 ;;
esac

# Bump when the way the base is made changes, so old caches are not reused.
key=$suite-minbase-v3
full=$cache/debian-$key-image.tar
slim=$cache/debian-$key-slim.tar

make_tarballs() {
  local tmp root
  root=$(bash "$(dirname "$0")/debian_root.sh" "$suite" "$cache")
  tmp=$(mktemp -d "$cache/image-base.XXXXXX")
  mkdir "$tmp/rootfs"
  tar -C "$tmp/rootfs" --numeric-owner -xf "$root"
  bash "$(dirname "$0")/debian_root.sh" --sources "$suite" "$tmp/rootfs"
  # The apt settings of the official images: no package cache or downloaded .debs left
  # in layers, no translations.
  cat >"$tmp/rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  echo 'Acquire::Languages "none";' >"$tmp/rootfs/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$tmp/rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
  rm -rf "$tmp/rootfs/var/cache/apt/"*.bin "$tmp/rootfs/var/cache/apt/archives/"*.deb \
    "$tmp/rootfs/var/lib/apt/lists/"* "$tmp/rootfs/var/log/"{bootstrap.log,dpkg.log,apt/*}
  tar -C "$tmp/rootfs" --numeric-owner -cf "$tmp/full.tar" .
  # debian:N-slim is debian:N with documentation, manuals and translations
  # left out by dpkg, now and for every package installed later.
  cat >"$tmp/rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
  find "$tmp/rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$tmp/rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$tmp/rootfs/usr/share/"{man,groff,info,lintian,linda}/*
  find "$tmp/rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias \
    -exec rm -rf {} +
  tar -C "$tmp/rootfs" --numeric-owner -cf "$tmp/slim.tar" .
  mv "$tmp/full.tar" "$full"
  mv "$tmp/slim.tar" "$slim"
  rm -rf --one-file-system "$tmp"
}

mkdir -p "$cache"
exec 9>"$cache/base.lock"
flock 9
if [ ! -s "$full" ] || [ ! -s "$slim" ]; then
  make_tarballs
else
  echo "image: reusing the cached base in $cache ($key)"
fi

# Import each tarball unless this storage already holds an image made from it.
import() {
  local tar=$1 name=$2 sum have
  sum=$(stat -c '%s-%Y' "$tar")
  have=$("${podman[@]}" image inspect --format '{{index .Labels "claimd.ci.base"}}' "$name" \
    2>/dev/null || true)
  if [ "$have" != "$key-$sum" ]; then
    "${podman[@]}" import --quiet --change "LABEL claimd.ci.base=$key-$sum" \
      --change 'CMD ["bash"]' "$tar" "$name" >/dev/null
  fi
}
import "$full" "localhost/debian:$release"
import "$slim" "localhost/debian:$release-slim"
