#!/bin/bash
# The image's HEALTHCHECK: GET /healthz from claimd on 127.0.0.1 and succeed only on a
# 200. Written against bash's /dev/tcp because the slim image has no curl or wget, and
# adding one (with its TLS libraries) for a loopback GET would grow every image.
# CLAIMD_HEALTH_PORT names the port when the config does not listen on 8080.
set -euo pipefail
port=${CLAIMD_HEALTH_PORT:-8080}
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 5 status <&3
case $status in
"HTTP/1."[01]" 200"*) exit 0 ;;
*) echo "claimd-healthcheck: /healthz answered: ${status%$'\r'}" >&2; exit 1 ;;
esac
