#!/usr/bin/env bash
# A production figure: compare.sh's two benchmarks through the shipped nginx kit
# (config/nginx/claimd.conf, filled in as docs/operations.md says) with TLS. Each device
# opens a TLS connection (a full handshake, P-256 server key) per request, as the
# firmware does; nginx keeps its upstream connections alive (the kit's keepalive). First
# claimd's complete self claims, then cfssl's bare signing of the same CSRs behind the
# same kit (its /claim/ location pointed at cfssl's /api/v1/cfssl/ instead). Prints both
# rates and the ratio. Run by hand (installs golang-cfssl and nginx if missing, as root).
#   tests/bench/tls.sh
# Environment: CONCURRENCY (64), SECONDS_RUN (20), DEVICES (5000), THREADS (claimd
# workers, 8), NGINX_WORKERS (auto).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
conc=${CONCURRENCY:-64}
secs=${SECONDS_RUN:-20}
devices=${DEVICES:-5000}
threads=${THREADS:-8}
work=${BENCH_DIR:-$root/build/bench-tls}
B=$root/build
nginx_bin=/usr/sbin/nginx

for p in golang-cfssl:cfssl nginx-light:"$nginx_bin"; do
  command -v "${p#*:}" >/dev/null && continue
  if [ "$(id -u)" -ne 0 ]; then echo "tls: install ${p%%:*} (as root)" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${p%%:*}" >/dev/null
done
. "$root/tests/bench/lib.sh"
bench_setup ec "$(bench_server_yaml "$threads")"
pid= cpid= npid=
cleanup() {
  if [ -n "$npid" ]; then kill "$npid" 2>/dev/null; wait "$npid" 2>/dev/null || true; fi
  bench_cleanup
}
trap cleanup EXIT
gen_devices "$devices" 11 "$work/devices.csv"
"$B/claimctl" -c "$work/claimd.yaml" devices import "$work/devices.csv" >/dev/null

# A TLS root and a server certificate for localhost, as the proxy tests make them.
n=$work/nginx
mkdir -p "$n/tmp"
(cd "$n" && printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext &&
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj '/CN=bench TLS root' -keyout tls-root.key -out tls-root.pem 2>/dev/null &&
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=localhost' \
    -keyout server.key -out server.csr 2>/dev/null &&
  openssl x509 -req -in server.csr -CA tls-root.pem -CAkey tls-root.key -CAcreateserial \
    -days 2 -extfile server.ext -out server.pem 2>/dev/null)
[ "$(id -u)" -ne 0 ] || chown -R nobody "$n/tmp"

# start_nginx UPSTREAM [SED]: the kit in front of UPSTREAM (host:port), SED applied to the
# filled-in site file; sets npid and nport.
start_nginx() {
  # Below the kernel's ephemeral range (ip_local_port_range, 32768 up by default): a
  # port there may be held by one of the benchmark's own many short connections, and
  # nginx's bind then fails.
  nport=$(( 20000 + RANDOM % 12000 ))
  while [ "$nport" = "${cport:-}" ]; do nport=$(( 20000 + RANDOM % 12000 )); done
  sed -e "s|@LISTEN@|127.0.0.1:$nport|" -e "s|@CERT@|$n/server.pem|" -e "s|@KEY@|$n/server.key|" \
    -e "s|@UPSTREAMS@|server $1;|" -e "s|@TIMEOUT@|10s|" ${2:+-e "$2"} \
    "$root/config/nginx/claimd.conf" >"$n/claimd.conf"
  cat >"$n/nginx.conf" <<CONF
daemon off;
worker_processes ${NGINX_WORKERS:-auto};
pid $n/nginx.pid;
error_log $n/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $n/tmp/body;
  proxy_temp_path $n/tmp/proxy;
  fastcgi_temp_path $n/tmp/fastcgi;
  uwsgi_temp_path $n/tmp/uwsgi;
  scgi_temp_path $n/tmp/scgi;
  include $n/claimd.conf;
}
CONF
  "$nginx_bin" -t -p "$n" -c "$n/nginx.conf" -e "$n/error.log" 2>/dev/null
  "$nginx_bin" -p "$n" -c "$n/nginx.conf" -e "$n/error.log" &
  npid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null && break; sleep 0.1; done
  kill -0 "$npid" 2>/dev/null || { echo "tls.sh: nginx did not start (see $n/error.log)" >&2; exit 1; }
}
stop_nginx() { kill "$npid" 2>/dev/null; wait "$npid" 2>/dev/null || true; npid=; }

echo "== claimd behind nginx, TLS per request (P-256 CA and device keys, $conc clients, $secs s)"
start_claimd
start_nginx "127.0.0.1:$port"
"$B/claimsim" bench --url "https://localhost:$nport" --cacert "$n/tls-root.pem" \
  --devices "$work/devices.csv" --concurrency "$conc" --duration "$secs" --pid "$pid" |
  tee "$work/claimd.out"
stop_nginx
stop_claimd

echo "== cfssl behind the same nginx kit, TLS per request (bare signing, same CSRs)"
printf '{"signing": {"default": {"expiry": "87600h", "usages": ["digital signature", "client auth"]}}}\n' \
  >"$work/cfssl.json"
cport=$(( 10000 + RANDOM % 10000 ))
cfssl serve -address 127.0.0.1 -port "$cport" -ca "$work/ca/intermediate.pem" \
  -ca-key "$work/ca/intermediate.key" -config "$work/cfssl.json" -loglevel 4 \
  >"$work/cfssl.log" 2>&1 &
cpid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$cport") 2>/dev/null && break; sleep 0.1; done
start_nginx "127.0.0.1:$cport" 's|location /claim/ {|location /api/v1/cfssl/ {|'
"$B/claimsim" bench --cfssl --url "https://localhost:$nport" --cacert "$n/tls-root.pem" \
  --devices "$work/devices.csv" --concurrency "$conc" --duration "$secs" | tee "$work/cfssl.out"
stop_nginx

c=$(awk '/complete claims:/ {print $(NF-3)}' "$work/claimd.out")
s=$(awk '/certificates signed:/ {print $(NF-1)}' "$work/cfssl.out")
awk -v c="$c" -v s="$s" 'BEGIN {
  printf "== through nginx with TLS: claimd %.1f complete claims/s, cfssl %.1f signs/s: ratio %.2f\n", c, s, (s > 0 ? c / s : 0) }'
