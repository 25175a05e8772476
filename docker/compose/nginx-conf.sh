#!/usr/bin/env bash
# Prints the nginx site config the compose file mounts: the nginx kit's template
# (config/nginx/claimd.conf) filled in for compose's two replicas and its mounted
# certificate, as docs/operations.md fills it in for a host. Regenerate after editing
# the template:  bash docker/compose/nginx-conf.sh > docker/compose/nginx.conf
# (tests/deploy/compose.sh fails while the two differ).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sed -e 's|@LISTEN@|443|' \
    -e 's|@CERT@|/etc/nginx/tls/server.crt|' \
    -e 's|@KEY@|/etc/nginx/tls/server.key|' \
    -e 's|@UPSTREAMS@|server claimd-1:8080; server claimd-2:8080;|' \
    -e 's|@TIMEOUT@|10s|' \
    "$root/config/nginx/claimd.conf"
