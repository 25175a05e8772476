#!/usr/bin/env bash
# The CRL's cost: a private durable PostgreSQL holding N revoked certificates (made
# with SQL, no claims), then the time and size of building, signing and storing a CRL
# (claimctl crl, first run), of fetching the stored one (second run), and GET /crl
# requests per second from wrk (installed if missing) against claimd. Run by hand.
#   tests/bench/crl.sh [N ...]       default: 1000 100000
# Environment: CA (ec | rsa2048, default ec), SECONDS_RUN (wrk, 10), CONNECTIONS (16).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${BENCH_DIR:-$root/build/bench-crl}
B=$root/build
secs=${SECONDS_RUN:-10}
conns=${CONNECTIONS:-16}
[ $# -gt 0 ] || set -- 1000 100000

. "$root/tests/bench/lib.sh"
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
bench_setup "${CA:-ec}" "$(bench_server_yaml 8)"
pid= cpid=
trap bench_cleanup EXIT
db="$pg dbname=claimd"
ms() { date +%s%3N; }
start_claimd
echo "CA key: ${CA:-ec}, $(nproc) cores; wrk: $conns connections, $secs s, kept alive"
have=0
for n in "$@"; do
  # Add revoked certificates up to n (serials are distinct hex; one node each).
  psql "$db" -qc "INSERT INTO nodes (node_id, mac)
      SELECT 'bench' || g, lpad(upper(to_hex(g)), 12, '0') FROM generate_series($have + 1, $n) g;
    INSERT INTO certificates (serial, node_id, key_sha256, not_before, not_after, pem,
                              revoked_at, revocation_reason, revoked_by)
      SELECT lpad(upper(to_hex(g)), 32, '0'), 'bench' || g, sha256(g::text::bytea),
             now() - interval '1 day', now() + interval '1 year', repeat('x', 100),
             now(), 1, 'bench'
      FROM generate_series($have + 1, $n) g"
  have=$n
  t0=$(ms); "$B/claimctl" -c "$work/claimd.yaml" crl --der >"$work/crl.der"; t1=$(ms)
  "$B/claimctl" -c "$work/claimd.yaml" crl --der >/dev/null; t2=$(ms)
  size=$(stat -c %s "$work/crl.der")
  entries=$(openssl crl -inform DER -in "$work/crl.der" -noout -text | grep -c 'Serial Number')
  sleep 2.1 # past the daemon's 2 s check, so its first request below loads the new CRL
  rps=$(wrk -t 2 -c "$conns" -d "${secs}s" "http://127.0.0.1:$port/crl" | awk '/Requests\/sec/ {print $2}')
  printf '%7d revoked: CRL of %d entries, %d bytes; build+sign+store %d ms, fetch stored %d ms; GET /crl %s req/s\n' \
    "$n" "$entries" "$size" $((t1 - t0)) $((t2 - t1)) "$rps"
done
