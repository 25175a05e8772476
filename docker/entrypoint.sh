#!/bin/sh
# Container entrypoint: bring the schema up to date (safe with several replicas: the
# migration takes an advisory lock), then replace this shell with claimd so it gets
# the container's signals directly.
set -eu
config=/etc/claimd/claimd.yaml
[ "${1:-}" = "-c" ] && config=$2
claimctl -c "$config" migrate
exec claimd "$@"
