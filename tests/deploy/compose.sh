#!/usr/bin/env bash
# docker/compose.yaml cannot run here (no container runtime), so this checks what can be
# checked without one: 'docker-compose config' accepts it; every file it names exists (the Dockerfile and the files that
# Dockerfile copies, the claimd config, the nginx site config, which must be the nginx
# kit's template filled in by docker/compose/nginx-conf.sh); every path it mounts
# that is not in the repository is a secret under docker/compose/secrets/, mounted
# read-only; there are two claimd replicas; the claimd config trusts exactly nginx's
# fixed address; and that config passes 'claimd -t' with keys made now at the paths it
# names (rewritten from the mount target to a temporary directory, the only change).
# A path-like word this script does not recognise fails the test, so a new reference
# cannot slip by unchecked.
#   tests/deploy/compose.sh            (CTest: deploy.compose)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${CLAIMD_BUILD_DIR:-$root/build}
dir=$root/docker
compose=$dir/compose.yaml
die() { echo "compose test: $*" >&2; exit 1; }

[ -x "$build/claimd" ] && [ -x "$build/claimctl" ] || die "claimd and claimctl not built in $build"
command -v docker-compose >/dev/null || die "docker-compose not found: run .ci/deps.sh --test"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The schema, the anchors and the references between services, as Compose reads them.
# Debian 12's docker-compose (1.29) validates everything here but the top-level 'name:'
# (Compose v2), so it reads a copy without that line; it needs no container runtime.
grep -q '^name: ' "$compose" || die "compose.yaml has no top-level name:"
sed '/^name: /d' "$compose" >"$tmp/compose-v1.yaml"
docker-compose --project-directory "$dir" -f "$tmp/compose-v1.yaml" config -q ||
  die "docker-compose config refused compose.yaml"

# compose.yaml without comments.
sed -e '/^[[:space:]]*#/d' -e 's/[[:space:]]#.*$//' "$compose" >"$tmp/compose.yaml"

declare -A secret_mount=() mounts=()
checked=0
while IFS= read -r line; do
  if [[ $line =~ ^[[:space:]]*-[[:space:]]+(\.\.?/[^:]*):([^:]+)(:(ro|rw))?[[:space:]]*$ ]]; then
    src=${BASH_REMATCH[1]} target=${BASH_REMATCH[2]} mode=${BASH_REMATCH[4]}
    mounts[$target]=$src
    if [[ $src == ./compose/secrets/* ]]; then
      [ "$mode" = ro ] || die "secret $src is not mounted read-only (:ro)"
      secret_mount[$target]=$src
    elif [ ! -e "$dir/$src" ]; then
      die "$src (mounted at $target) does not exist"
    fi
  elif [[ $line =~ ^[[:space:]]*context:[[:space:]]*(.+)$ ]]; then
    context=$dir/${BASH_REMATCH[1]}
    [ -d "$context" ] || die "build context ${BASH_REMATCH[1]} does not exist"
  elif [[ $line =~ ^[[:space:]]*dockerfile:[[:space:]]*(.+)$ ]]; then
    dockerfile=${BASH_REMATCH[1]}
    [ -f "$context/$dockerfile" ] || die "dockerfile $dockerfile does not exist in the context"
    # The files the Dockerfile copies from the context.
    while read -r _ src _; do
      [ -e "$context/$src" ] || die "$dockerfile copies $src, which does not exist"
      checked=$((checked + 1))
    done < <(grep -E '^COPY [^-]' "$context/$dockerfile")
  elif [[ $line =~ (^|[[:space:]\"\'])\.\.?/ ]]; then
    die "unrecognised path reference in compose.yaml, not checked: $line"
  else
    continue
  fi
  checked=$((checked + 1))
done <"$tmp/compose.yaml"
[ "$checked" -ge 8 ] || die "only $checked references found; the parser no longer reads compose.yaml"

replicas=$(grep -cE '^  claimd-[0-9]+:' "$tmp/compose.yaml")
[ "$replicas" = 2 ] || die "expected two claimd replicas, found $replicas"

# nginx's fixed address must be claimd's only trusted proxy.
nginx_ip=$(sed -n 's/^[[:space:]]*ipv4_address:[[:space:]]*//p' "$tmp/compose.yaml")
config_src=${mounts[/etc/claimd/claimd.yaml]:-}
[ -n "$config_src" ] || die "no file is mounted at /etc/claimd/claimd.yaml"
grep -qE "^  trusted_proxies: \[\"$nginx_ip/32\"\]$" "$dir/$config_src" ||
  die "$config_src: server.trusted_proxies is not [\"$nginx_ip/32\"], nginx's address"

# Make the secrets the config names, where the mounts put them, and check the config.
keys_target=/etc/claimd/keys
[ "${secret_mount[$keys_target]:-}" = ./compose/secrets/claimd ] ||
  die "./compose/secrets/claimd is not mounted at $keys_target"
keys=$tmp/keys
mkdir -p "$keys"
"$build/claimctl" dev-ca --out "$keys/ca" >/dev/null
(umask 077 && "$build/claimctl" keygen >"$keys/secrets.key")
(umask 077 && echo "postgres:5432:claimd:claimd:secret" >"$keys/pgpass")
chmod -R go-rwx "$keys"
sed "s|$keys_target/|$keys/|g" "$dir/$config_src" >"$tmp/claimd.yaml"
if sed -e '/^[[:space:]]*#/d' -e 's/[[:space:]]#.*$//' "$tmp/claimd.yaml" |
  grep -nE '(^|[ "=])/' | grep -vF "$keys/"; then
  die "$config_src names the paths above, outside the mounted secrets"
fi
grep -q "passfile=$keys/pgpass" "$tmp/claimd.yaml" || die "database.url does not read $keys_target/pgpass"
# The image runs claimd as uid 10001, so its signer keeps that user; run as root here,
# the signer drops to signer.user, which must exist on this machine.
[ "$(id -u)" -ne 0 ] || printf 'signer:\n  user: nobody\n' >>"$tmp/claimd.yaml"
"$build/claimd" -t --no-database -c "$tmp/claimd.yaml" || die "$config_src does not pass claimd -t"

# The nginx config compose mounts is the kit's template filled in, and still in step.
bash "$dir/compose/nginx-conf.sh" | cmp -s - "$dir/compose/nginx.conf" ||
  die "docker/compose/nginx.conf differs from config/nginx/claimd.conf filled in: run bash docker/compose/nginx-conf.sh > docker/compose/nginx.conf"
! grep -n '@[A-Z]*@' "$dir/compose/nginx.conf" || die "docker/compose/nginx.conf has placeholders left"
echo "compose test: passed ($checked references checked)"
