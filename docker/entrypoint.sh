#!/bin/sh
# Container entrypoint. "--signer -c FILE": the external signer (it holds the keys; no
# migration, no database). Anything else is claimd: bring the schema up to date (safe
# with several replicas: the migration takes an advisory lock), then replace this shell
# with claimd so it gets the container's signals directly. CLAIMD_MIGRATE=no skips the
# migration, for deployments that run 'claimctl migrate' as a separate step
# (docker/compose.yaml). Started as root, claimd runs its signer as signer.user and
# itself as server.user; as another user, it needs an external signer (signer.socket).
set -eu
if [ "${1:-}" = "--signer" ]; then
  exec claimd "$@"
fi
config=/etc/claimd/claimd.yaml
[ "${1:-}" = "-c" ] && config=$2
if [ "${CLAIMD_MIGRATE:-yes}" != "no" ]; then
  claimctl -c "$config" migrate
fi
exec claimd "$@"
