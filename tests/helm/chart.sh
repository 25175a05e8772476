#!/usr/bin/env bash
# The Helm chart (deploy/helm/claimd/), checked without a cluster: 'helm lint --strict'
# and 'helm template' (Kubernetes 1.33) with the chart's default values and with each
# example values file, NOTES.txt rendered for each, then tests/helm/check.cjs validates
# every rendered object against the Kubernetes 1.33 API schema and asserts what the
# chart promises (key Secrets in the signer container only, non-root distinct uids,
# probes, the migration hook, PDB, NetworkPolicy, no latest tag).
#   tests/helm/chart.sh            (CTest: helm.chart, label helm)
# Environment: CLAIMD_BUILD_DIR (work files go to BUILD/helm-chart), CLAIMD_CI_CACHE
# (tests/helm/tools.sh's cache).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${CLAIMD_BUILD_DIR:-$root/build}
kube=1.33.0
die() { echo "helm chart test: $*" >&2; exit 1; }

tools=$(bash "$root/tests/helm/tools.sh") || die "tests/helm/tools.sh failed"
helm=$tools/bin/helm
chart=$root/deploy/helm/claimd
work=$build/helm-chart
rm -rf "$work"
mkdir -p "$work"
export HELM_CACHE_HOME=$work/helm-cache HELM_CONFIG_HOME=$work/helm-config HELM_DATA_HOME=$work/helm-data
"$helm" version --short

# Helm logs each symlinked file (files/ links to config/) at INFO on stderr.
quiet() { grep -v 'found symbolic link in path' || true; }
pairs=()
for values in "$chart/values.yaml" "$chart"/examples/values-*.yaml; do
  name=$(basename "$values" .yaml)
  echo "== $name"
  "$helm" lint --strict --kube-version "$kube" "$chart" -f "$values" 2>&1 | quiet >"$work/$name.lint"
  grep -q '^1 chart(s) linted, 0 chart(s) failed' "$work/$name.lint" || { cat "$work/$name.lint"; die "helm lint --strict failed for $name"; }
  "$helm" template claimd "$chart" -n claimd --kube-version "$kube" -f "$values" \
    >"$work/$name.yaml" 2> >(quiet >&2) || die "helm template failed for $name"
  "$helm" install claimd "$chart" -n claimd --dry-run=client -f "$values" \
    2> >(quiet >&2) | sed -n '/^NOTES:/,$p' >"$work/$name.notes" || die "NOTES.txt did not render for $name"
  grep -q 'claimsim self' "$work/$name.notes" || { cat "$work/$name.notes"; die "NOTES.txt for $name does not say how to claim a device"; }
  pairs+=("$values" "$work/$name.yaml")
done
node "$root/tests/helm/check.cjs" "$tools" "$work" "$chart/values.yaml" "${pairs[@]}"
