#!/usr/bin/env bash
# The shipped Grafana dashboard (config/grafana/claimd-dashboard.json): it is JSON
# Grafana can import (a title, a uid, panels with unique ids and grid positions, the
# datasource, job and instance variables), every panel query is PromQL that promtool
# parses (each becomes a recording rule for 'promtool check rules', with Grafana's
# variables filled in), and every metric a query names is one claimd serves, so a
# renamed metric cannot leave an empty panel.
#   tests/deploy/grafana.sh      (CTest: deploy.grafana)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "grafana test: $*" >&2; exit 1; }
command -v promtool >/dev/null || die "promtool not found: run .ci/deps.sh --test"
command -v jq >/dev/null || die "jq not found: run .ci/deps.sh --test"
dash=$root/config/grafana/claimd-dashboard.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

jq -e '.title == "claimd" and (.uid | length > 0) and (.panels | length > 10)' "$dash" >/dev/null ||
  die "no title, uid or panels"
jq -e '[.panels[].id] | length == (unique | length)' "$dash" >/dev/null || die "panel ids repeat"
jq -e 'all(.panels[]; .gridPos.w > 0 and .gridPos.h > 0 and .gridPos.x + .gridPos.w <= 24)' \
  "$dash" >/dev/null || die "a panel has no place on the 24-column grid"
for v in datasource job instance; do
  jq -e --arg v "$v" 'any(.templating.list[]; .name == $v)' "$dash" >/dev/null ||
    die "no \$$v variable"
done
n=$(jq '[.panels[].targets[]?.expr] | length' "$dash")
[ "$n" -ge 15 ] || die "only $n queries"

# Each query as a recording rule; Grafana's variables replaced by what they expand to.
{
  echo "groups:"
  echo "  - name: dashboard"
  echo "    rules:"
  jq -r '.panels[].targets[]?.expr' "$dash" | sed -e 's/\$__rate_interval/5m/g' \
    -e 's/\$job/.*/g' -e 's/\$instance/.*/g' | awk '{
      gsub(/\\/, "\\\\"); gsub(/"/, "\\\"");
      printf "      - record: dashboard:query_%d\n        expr: \"%s\"\n", NR, $0 }'
} >"$work/rules.yml"
promtool check rules "$work/rules.yml" >"$work/out" 2>&1 || { cat "$work/out"; die "promtool refused a query"; }
grep -q "SUCCESS: $n rules found" "$work/out" || { cat "$work/out"; die "promtool saw not $n rules"; }

for name in $(jq -r '.panels[].targets[]?.expr' "$dash" | grep -oE '(claimd|process)_[a-z_]+' | sort -u); do
  base=${name%_bucket}
  grep -q "\"$base\|$base[ {]\|$base\\\\n\|# TYPE $base" "$root/src/lib/metrics.c" "$root/src/daemon/handler_health.c" ||
    die "$name is queried by a panel but claimd serves no such metric"
done
echo "grafana test: $n queries parsed, every metric served; passed"
