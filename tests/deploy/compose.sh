#!/usr/bin/env bash
# docker/compose.yaml cannot run here (no container runtime), so this checks what can be
# checked without one: 'docker-compose config' accepts it; every file it names exists (the Dockerfile and the files that
# Dockerfile copies, the claimd config, the nginx site config, which must be the nginx
# kit's template filled in by docker/compose/nginx-conf.sh); every path it mounts
# that is not in the repository is a secret under docker/compose/secrets/, mounted
# read-only; the keys are mounted into the signer service and no other (a replica with a
# key fails the test); the signer and the replicas share the socket's volume as two
# users; there are two claimd replicas; the claimd config trusts exactly nginx's fixed
# address; and that config passes 'claimd -t' against 'claimd --signer' with keys made
# now at the paths it names (rewritten from the mount targets to a temporary directory,
# the only change).
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
docker-compose --project-directory "$dir" -f "$tmp/compose-v1.yaml" config >"$tmp/resolved.yaml" ||
  die "docker-compose config refused compose.yaml"

# Two users: the keys (./compose/secrets/signer) are mounted into the signer only, and
# the replicas, with every anchor and merge resolved by Compose itself, mount no key;
# the signer and the replicas share the socket's volume and run as different uids.
key_services=$(awk -v keys="$dir/compose/secrets/signer" '
  /^services:/ { in_services = 1; next }
  /^[a-z]/ { in_services = 0 }
  in_services && /^  [a-z0-9-]+:$/ { svc = substr($1, 1, length($1) - 1) }
  in_services && index($0, keys) { print svc }' "$tmp/resolved.yaml" | sort -u | tr '\n' ' ')
[ "$key_services" = "signer " ] ||
  die "the keys (./compose/secrets/signer) are mounted into: ${key_services:-no service}; only the signer may mount them"
service_block() { awk -v s="  $1:" '$0 == s { on = 1; next } on && /^  [a-z0-9-]+:$/ { on = 0 } on' "$tmp/resolved.yaml"; }
# Compose 1 (Debian 12) prints a volume as 'NAME:TARGET', Compose 2 (Debian 13) in the
# long form ('source: NAME' then 'target: TARGET'): both are read, quotes and blanks
# dropped.
flat_block() { service_block "$1" | tr -d " \"'" | tr '\n' ' '; }
socket_re='(signer-socket:/run/claimd-signer|source:signer-socket target:/run/claimd-signer)'
for svc in signer claimd-1 claimd-2; do
  [[ " $(flat_block "$svc")" =~ $socket_re ]] ||
    die "$svc does not mount the signer's socket volume at /run/claimd-signer"
done
uid_of() { flat_block "$1" | tr ' ' '\n' | sed -n 's/^user:\([0-9]*\):.*/\1/p'; }
signer_user=$(uid_of signer)
replica_user=$(uid_of claimd-1)
[ -n "$signer_user" ] && [ -n "$replica_user" ] && [ "$signer_user" != "$replica_user" ] ||
  die "the signer (uid '$signer_user') and the replicas (uid '$replica_user') must run as two users"
service_block signer | grep -q -- '- --signer' || die "the signer service does not run --signer"

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
keys_target=/etc/claimd/keys db_target=/etc/claimd/db run_target=/run/claimd-signer
[ "${secret_mount[$keys_target]:-}" = ./compose/secrets/signer ] ||
  die "./compose/secrets/signer is not mounted at $keys_target"
[ "${secret_mount[$db_target]:-}" = ./compose/secrets/claimd ] ||
  die "./compose/secrets/claimd is not mounted at $db_target"
keys=$tmp/keys db=$tmp/db run=$tmp/run
mkdir -p "$keys" "$db" "$run"
"$build/claimctl" dev-ca --out "$keys/ca" >/dev/null
(umask 077 && "$build/claimctl" keygen >"$keys/secrets.key")
(umask 077 && echo "postgres:5432:claimd:claimd:secret" >"$db/pgpass")
chmod -R go-rwx "$keys" "$db"
sed -e "s|$keys_target/|$keys/|g" -e "s|$db_target/|$db/|g" -e "s|$run_target/|$run/|g" \
  "$dir/$config_src" >"$tmp/claimd.yaml"
if sed -e '/^[[:space:]]*#/d' -e 's/[[:space:]]#.*$//' "$tmp/claimd.yaml" |
  grep -nE '(^|[ "=])/' | grep -vF -e "$keys/" -e "$db/" -e "$run/"; then
  die "$config_src names the paths above, outside the mounted secrets and the socket volume"
fi
grep -q "passfile=$db/pgpass" "$tmp/claimd.yaml" || die "database.url does not read $db_target/pgpass"
grep -q "^  socket: $run/signer.sock" "$tmp/claimd.yaml" || die "signer.socket is not in $run_target"
# The signer and a replica from the one config, as two users: run as root here, the
# signer drops to signer.user and claimd to server.user, which must exist on this machine.
if [ "$(id -u)" -eq 0 ]; then
  sed -i 's/^  user: claimd$/  user: daemon/' "$tmp/claimd.yaml"
  printf '  user: nobody\n' >"$tmp/signer-user"
  sed -i "/^signer:/r $tmp/signer-user" "$tmp/claimd.yaml"
  chmod 755 "$tmp" "$run" && chmod 644 "$tmp/claimd.yaml"
fi
"$build/claimd" --signer -c "$tmp/claimd.yaml" 2>"$tmp/signer.log" &
signer_pid=$!
trap 'kill "$signer_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
"$build/claimd" -t --no-database -c "$tmp/claimd.yaml" || {
  cat "$tmp/signer.log" >&2
  die "$config_src does not pass claimd -t with the signer it names"
}

# The nginx config compose mounts is the kit's template filled in, and still in step.
bash "$dir/compose/nginx-conf.sh" | cmp -s - "$dir/compose/nginx.conf" ||
  die "docker/compose/nginx.conf differs from config/nginx/claimd.conf filled in: run bash docker/compose/nginx-conf.sh > docker/compose/nginx.conf"
! grep -n '@[A-Z]*@' "$dir/compose/nginx.conf" || die "docker/compose/nginx.conf has placeholders left"
echo "compose test: passed ($checked references checked)"
