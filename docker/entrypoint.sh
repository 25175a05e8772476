#!/bin/sh
# Container entrypoint: bring the schema up to date (safe with several replicas: the
# migration takes an advisory lock), then replace this shell with claimd so it gets
# the container's signals directly. CLAIMD_MIGRATE=no skips the migration, for
# deployments that run 'claimctl migrate' as a separate step (docker/compose.yaml).
set -eu
config=/etc/claimd/claimd.yaml
[ "${1:-}" = "-c" ] && config=$2
if [ "${CLAIMD_MIGRATE:-yes}" != "no" ]; then
  claimctl -c "$config" migrate
fi
exec claimd "$@"
