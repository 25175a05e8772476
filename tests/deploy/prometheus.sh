#!/usr/bin/env bash
# The shipped alerting rules (config/prometheus/claimd-alerts.yml): promtool accepts
# them, and its rule tests (tests/deploy/prometheus-rules-test.yml) see each alert fire
# on the series that should fire it and stay quiet on healthy ones. Every metric name
# the rules use must be one claimd serves (checked against src/lib/metrics.c and the
# /metrics handler), so a renamed metric cannot leave a rule that never fires.
#   tests/deploy/prometheus.sh      (CTest: deploy.prometheus)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "prometheus test: $*" >&2; exit 1; }
command -v promtool >/dev/null || die "promtool not found: run .ci/deps.sh --test"
rules=$root/config/prometheus/claimd-alerts.yml
promtool check rules "$rules"
(cd "$root/tests/deploy" && promtool test rules prometheus-rules-test.yml)
for name in $(grep -oE 'claimd_[a-z_]+' "$rules" | sort -u); do
  base=${name%_bucket}
  grep -q "\"$base\|$base[ {]\|$base\\\\n\|# TYPE $base" "$root/src/lib/metrics.c" "$root/src/daemon/handler_health.c" ||
    die "$name is used by a rule but claimd serves no such metric"
done
echo "prometheus test: passed"
