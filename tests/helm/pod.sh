#!/usr/bin/env bash
# The chart's pod, run without a cluster: renders the chart (default values, the image
# built here from docker/Dockerfile), takes the migration Job's container and the
# Deployment's two containers (command, args, env, volume mounts, uid, gid, the pod's
# fsGroup) from the rendered objects and runs each as kubelet would, from the image's
# root filesystem: in a mount namespace of its own (so a volume mounted into one
# container is not seen by the other), the root filesystem read-only, chrooted, under
# the rendered uid and gid with the fsGroup as supplementary group. Volumes are laid out
# as kubelet does: ConfigMaps and Secrets (the chart's ConfigMap, and the Secrets and the
# public ConfigMap an operator makes, here made with a test CA) as files behind a
# ..data symlink, root:fsGroup with the volume's mode; emptyDirs shared by the containers
# that mount them. PostgreSQL (the test's private server) is reached through its socket
# directory at /run/postgresql.
# Then: the Job migrates; the signer starts and its startup probe passes; claimd gets
# ready (its readiness probe's path and port); a chip is registered through the
# management API as NOTES.txt says; a firmware-exact self claim succeeds through
# claimd's port and the certificate verifies; claimd's uid (with the pod's groups) cannot
# read the signer's key copies, claimd's container sees no key file at all (neither
# path nor content); SIGTERM ends claimd with 0 within the grace period.
#   tests/helm/pod.sh          (CTest: helm.pod, labels helm and image; needs root)
# Environment: CLAIMD_BUILD_DIR (its claimsim is used; work files in BUILD/helm-pod.*,
# kept after a failure), CLAIMD_CI_CACHE (image base and tools caches).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${CLAIMD_BUILD_DIR:-$root/build}
chart=$root/deploy/helm/claimd
mac=7CDFA1F00002

die() { echo "helm pod test: $*" >&2; exit 1; }
step() { echo "== helm pod test: $*"; }

[ "$(id -u)" -eq 0 ] || die "needs root (podman build, mount namespaces, chroot)"
for t in podman unshare nsenter chroot setpriv jq curl openssl psql sha256sum; do
  command -v "$t" >/dev/null || die "$t not found: run .ci/deps.sh --image"
done
[ -x "$build/claimsim" ] || die "$build/claimsim not built"
tools=$(bash "$root/tests/helm/tools.sh") || die "tests/helm/tools.sh failed"

for old in "$build"/helm-pod.*; do
  [ -d "$old" ] || continue
  "$root/tests/pg.sh" stop "$old/pg" || true
  rm -rf --one-file-system "$old"
done
work=$(mktemp -d "$build/helm-pod.XXXXXX")
rootfs=$work/rootfs
pids=()
ok=0
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$root/tests/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true
  if [ "$ok" = 1 ]; then rm -rf --one-file-system "$work"; else echo "helm pod test: FAILED; work files kept in $work" >&2; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# A free TCP port on the loopback (nothing answers a connect to it).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
port=$(free_port)
aport=$(free_port)
[ "$port" != "$aport" ] || aport=$((port + 1))

step "render the chart (default values; ports $port and $aport)"
"$tools/bin/helm" template claimd "$chart" -n claimd --kube-version 1.33.0 \
  --set image.repository=localhost/claimd --set image.tag=helm-pod-test \
  --set ports.claim="$port" --set ports.admin="$aport" \
  --set-json 'config.server.trusted_proxies=["127.0.0.1/32"]' \
  >"$work/rendered.yaml" 2> >(grep -v 'found symbolic link' >&2 || true)
node -e 'const Y = require(process.argv[1]); const fs = require("fs");
  const docs = Y.parseAllDocuments(fs.readFileSync(process.argv[2], "utf8")).map((d) => d.toJS()).filter(Boolean);
  process.stdout.write(JSON.stringify(docs));' "$tools/node_modules/yaml" "$work/rendered.yaml" >"$work/rendered.json"
obj() { jq -e --arg k "$1" --arg n "$2" '.[] | select(.kind == $k and .metadata.name == $n)' "$work/cluster.json"; }
cp "$work/rendered.json" "$work/cluster.json"
dep=$(jq -c '.[] | select(.kind == "Deployment")' "$work/rendered.json")
job=$(jq -c '.[] | select(.kind == "Job")' "$work/rendered.json")
[ -n "$dep" ] && [ -n "$job" ] || die "no Deployment or Job rendered"

step "the image's root filesystem (podman build, log: $work/rootfs.build.log)"
bash "$root/tests/deploy/image_rootfs.sh" "$rootfs"

step "what the operator makes: the keys, database and admin token Secrets, the public ConfigMap"
ca=$work/ca
"$build/claimctl" dev-ca --out "$ca" >/dev/null
(umask 077 && "$build/claimctl" keygen >"$work/secrets.key")
token=$(openssl rand -hex 24)
secret_of() { # NAME KEY=FILE... -> a Secret object (base64 data), as kubectl create secret does
  local name=$1 kv data='{}'
  shift
  for kv in "$@"; do
    data=$(jq -c --arg k "${kv%%=*}" --arg v "$(base64 -w0 "${kv#*=}")" '. + {($k): $v}' <<<"$data")
  done
  jq -c -n --arg n "$name" --argjson d "$data" '{apiVersion: "v1", kind: "Secret", metadata: {name: $n}, data: $d}'
}
echo "host=/run/postgresql dbname=claimd user=claimd" >"$work/db.url"
printf '%s helm-pod-test\n' "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" >"$work/tokens"
keys=$(jq -r '.spec.template.spec.volumes[] | select(.name == "keys") | .secret.secretName' <<<"$dep")
dbsec=$(jq -r '.spec.template.spec.volumes[] | select(.name == "database") | .secret.secretName' <<<"$dep")
adminsec=$(jq -r '.spec.template.spec.volumes[] | select(.name == "admin-tokens") | .secret.secretName' <<<"$dep")
public=$(jq -r '.spec.template.spec.volumes[] | select(.name == "public") | .configMap.name' <<<"$dep")
{
  secret_of "$keys" ca.key="$ca/intermediate.key" secrets.key="$work/secrets.key"
  secret_of "$dbsec" url="$work/db.url"
  secret_of "$adminsec" tokens="$work/tokens"
  jq -c -n --arg n "$public" --rawfile c "$ca/intermediate.pem" \
    '{apiVersion: "v1", kind: "ConfigMap", metadata: {name: $n}, data: {"intermediate.pem": $c}}'
} | jq -s --slurpfile r "$work/rendered.json" '$r[0] + .' >"$work/cluster.json"

# Lays out one pod's volumes under DIR as kubelet does with the pod's fsGroup: each
# ConfigMap or Secret key a file in a timestamped folder behind the ..data symlink, the
# file a symlink through it; root-owned, group fsGroup, the volume's mode with group
# read added (kubelet adds it for fsGroup); emptyDirs group fsGroup, setgid, 0777.
lay_out_volumes() {
  local pod=$1 dir=$2 fsgroup n kind name mode data f
  fsgroup=$(jq -r '.spec.template.spec.securityContext.fsGroup' <<<"$pod")
  mkdir -p "$dir"
  while IFS=$'\t' read -r n kind name mode; do
    mkdir -p "$dir/$n"
    case $kind in
    emptyDir) chgrp "$fsgroup" "$dir/$n"; chmod 2777 "$dir/$n"; continue ;;
    secret) data=$(obj Secret "$name" | jq -c '.data | map_values(@base64d)') || die "no Secret $name" ;;
    configMap) data=$(obj ConfigMap "$name" | jq -c '.data') || die "no ConfigMap $name" ;;
    *) die "volume $n: kind $kind not laid out by this test" ;;
    esac
    mkdir "$dir/$n/..2026_01_01_00_00_00.0"
    ln -s ..2026_01_01_00_00_00.0 "$dir/$n/..data"
    for f in $(jq -r 'keys[]' <<<"$data"); do
      jq -j --arg k "$f" '.[$k]' <<<"$data" >"$dir/$n/..data/$f"
      chmod "$(printf '%o' $((mode | 0440)))" "$dir/$n/..data/$f"
      ln -s "..data/$f" "$dir/$n/$f"
    done
    chgrp -R "$fsgroup" "$dir/$n"
    chmod 2755 "$dir/$n" "$dir/$n/..data/"
  done < <(jq -r '.spec.template.spec.volumes[] |
      if .emptyDir then [.name, "emptyDir", "", 0]
      elif .secret then [.name, "secret", .secret.secretName, (.secret.defaultMode // 420)]
      elif .configMap then [.name, "configMap", .configMap.name, (.configMap.defaultMode // 420)]
      else [.name, "other", "", 0] end | @tsv' <<<"$pod")
}

# Starts one container of POD in the background as kubelet would (see the top), with
# VOLS the pod's laid-out volumes; extra "HOSTDIR:PATH" words bind more folders (the
# PostgreSQL socket). Sets $started to its pid (the pid becomes the container's program).
run_container() {
  local pod=$1 c=$2 vols=$3 log=$4
  shift 4
  local uid gid fsgroup script m name path ro
  uid=$(jq -r '.securityContext.runAsUser // empty' <<<"$c")
  gid=$(jq -r '.securityContext.runAsGroup // empty' <<<"$c")
  fsgroup=$(jq -r '.spec.template.spec.securityContext.fsGroup' <<<"$pod")
  [ -n "$uid" ] && [ -n "$gid" ] || die "container $(jq -r .name <<<"$c") has no runAsUser/runAsGroup"
  script="set -e; mount --bind '$rootfs' '$rootfs'; mount -t proc proc '$rootfs/proc';"
  while IFS=$'\t' read -r name path ro; do
    mkdir -p "$rootfs$path"
    script+=" mount --bind '$vols/$name' '$rootfs$path';"
    [ "$ro" != true ] || script+=" mount -o remount,bind,ro '$rootfs$path';"
  done < <(jq -r '.volumeMounts[] | [.name, .mountPath, (.readOnly // false)] | @tsv' <<<"$c")
  for m in "$@"; do
    mkdir -p "$rootfs${m#*:}"
    script+=" mount --bind '${m%%:*}' '$rootfs${m#*:}';"
  done
  # readOnlyRootFilesystem: the root bind mount read-only, the volumes on it writable.
  [ "$(jq -r '.securityContext.readOnlyRootFilesystem' <<<"$c")" != true ] ||
    script+=" mount -o remount,bind,ro '$rootfs';"
  script+=' exec "$@"'
  # NUL-separated: an argument may be a script of many lines.
  mapfile -d '' -t argv < <(jq -j '(.command // []) + (.args // []) | .[] | . + "\u0000"' <<<"$c")
  mapfile -d '' -t envv < <(jq -j '(.env // [])[] | if .value != null then "\(.name)=\(.value)\u0000" else error("env from \(.name) not supported") end' <<<"$c")
  unshare --mount --propagation private -- bash -c "$script" mount-ns \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/ \
    HOSTNAME=claimd-test "${envv[@]}" \
    chroot --userspec="$uid:$gid" --groups="$gid,$fsgroup" "$rootfs" "${argv[@]}" >"$log" 2>&1 &
  started=$!
  pids+=("$started")
}

# Waits up to SECONDS for COMMAND to succeed while the container NAME (PID, its log in
# WORK/NAME.log) runs; dies with its log if it exits first or the time runs out.
wait_until() {
  local pid=$1 name=$2 seconds=$3
  shift 3
  for _ in $(seq $((seconds * 5))); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.log" >&2; die "$name exited at start"; }
    sleep 0.2
  done
  cat "$work/$name.log" >&2
  die "$name: '$*' did not succeed within $seconds s"
}

container() { jq -c --arg n "$2" '.spec.template.spec | (.initContainers // []) + .containers | .[] | select(.name == $n)' <<<"$1"; }

step "private PostgreSQL; role and database as docs/kubernetes.md creates them"
pg=$("$root/tests/pg.sh" start "$work/pg" fast)
psql "$pg" -v ON_ERROR_STOP=1 -qc "CREATE ROLE claimd LOGIN" -c "CREATE DATABASE claimd OWNER claimd"

step "the migration hook: $(jq -r '.metadata.annotations["helm.sh/hook"]' <<<"$job")"
lay_out_volumes "$job" "$work/job-volumes"
run_container "$job" "$(container "$job" migrate)" "$work/job-volumes" "$work/migrate.log" "$work/pg:/run/postgresql"
status=0
wait "$started" || status=$?
cat "$work/migrate.log"
[ "$status" = 0 ] || die "the migration Job's container exited with $status"

lay_out_volumes "$dep" "$work/volumes"
signer=$(container "$dep" signer)
claimd=$(container "$dep" claimd)
[ "$(jq -r .restartPolicy <<<"$signer")" = Always ] || die "the signer is not a native sidecar"

# The host path of PATH as CONTAINER sees it (through its volume mounts).
host_path() {
  jq -r --arg p "$2" --arg v "$work/volumes" '[.volumeMounts[] | select(.mountPath as $m | $p | startswith($m + "/"))
      | "\($v)/\(.name)\($p[(.mountPath | length):])"] | first // error("\($p) is on no volume")' <<<"$1"
}

step "the signer (native sidecar) as uid $(jq .securityContext.runAsUser <<<"$signer"); its startup probe"
run_container "$dep" "$signer" "$work/volumes" "$work/signer.log"
signer_pid=$started
mapfile -t probe < <(jq -r '.startupProbe.exec.command[]' <<<"$signer")
[ "${probe[0]}" = test ] && [ "${probe[1]}" = -S ] || die "the signer's startup probe is not 'test -S SOCKET'"
sock=$(host_path "$signer" "${probe[2]}")
wait_until "$signer_pid" signer 10 test -S "$sock"

step "claimd as uid $(jq .securityContext.runAsUser <<<"$claimd"); its readiness probe"
run_container "$dep" "$claimd" "$work/volumes" "$work/claimd.log" "$work/pg:/run/postgresql"
claimd_pid=$started
ready=$(jq -r '.readinessProbe.httpGet.path' <<<"$claimd")
wait_until "$claimd_pid" claimd 30 curl -sf -o /dev/null "http://127.0.0.1:$port$ready"

step "register a chip through the management API (as NOTES.txt says); firmware-exact self claim"
efuse=$(openssl rand -hex 16 | tr a-f A-F)
curl -sSf -H "Authorization: Bearer $token" \
  -d "[{\"mac\":\"$mac\",\"platform\":\"esp32s3\",\"efuse_key\":\"$efuse\"}]" \
  "http://127.0.0.1:$aport/admin/v1/devices" || die "device registration refused"
echo
mkdir "$work/device"
"$build/claimsim" self --url "http://127.0.0.1:$port" --mac "$mac" --platform esp32s3 \
  --efuse-key "$efuse" --out "$work/device" --root "$ca/root.pem" || die "the self claim failed"
openssl verify -CAfile "$ca/root.pem" -untrusted "$ca/intermediate.pem" "$work/device/$mac.crt"

step "the keys are out of claimd's reach"
cuid=$(jq -r .securityContext.runAsUser <<<"$claimd")
cgid=$(jq -r .securityContext.runAsGroup <<<"$claimd")
fsgroup=$(jq -r '.spec.template.spec.securityContext.fsGroup' <<<"$dep")
copies=$(find "$work/volumes" -path '*/signer-run/*' -type f)
[ -n "$copies" ] || die "the signer made no key copies"
for f in $copies; do
  if setpriv --reuid="$cuid" --regid="$cgid" --groups="$cgid,$fsgroup" cat "$f" >/dev/null 2>"$work/read.err"; then
    die "uid $cuid (groups $cgid,$fsgroup) can read the signer's $f"
  fi
  grep -q 'Permission denied' "$work/read.err" || die "reading $f as uid $cuid: $(cat "$work/read.err")"
  echo "uid $cuid cannot read ${f#"$work"/volumes/}: $(cat "$work/read.err")"
done
# In claimd's own mount namespace, as its uid: nothing at the signer's key paths (the
# test's one root filesystem has the empty mount points), and no file it can see holds
# a line of the CA key.
for p in $(jq -r '.volumeMounts[] | select(.name == "keys" or .name == "signer-run") | .mountPath' <<<"$signer"); do
  seen=$(nsenter --target "$claimd_pid" --mount chroot --userspec="$cuid:$cgid" --groups="$cgid,$fsgroup" \
    "$rootfs" /bin/ls -A "$p" 2>/dev/null || true)
  [ -z "$seen" ] || die "claimd's container sees $p: $seen"
done
keyline=$(sed -n 2p "$ca/intermediate.key")
seen=$(jq -r '.volumeMounts[].mountPath' <<<"$claimd" | tr '\n' ' ')
# grep's status is 2 when it met an unreadable file, match or not: judge by what it lists.
# shellcheck disable=SC2086
found=$(nsenter --target "$claimd_pid" --mount chroot --userspec="$cuid:$cgid" --groups="$cgid,$fsgroup" \
  "$rootfs" /bin/grep -rlF -- "$keyline" $seen /etc /tmp 2>/dev/null || true)
[ -z "$found" ] || die "files claimd's container can read hold the CA key: $found"
echo "claimd's container: no key path (${seen% }), no CA key content"

step "SIGTERM to claimd: drains and exits 0 within terminationGracePeriodSeconds"
grace=$(jq -r '.spec.template.spec.terminationGracePeriodSeconds' <<<"$dep")
kill -TERM "$claimd_pid"
status=0
timeout "$grace" tail --pid="$claimd_pid" -f /dev/null || die "claimd still runs $grace s after SIGTERM"
wait "$claimd_pid" || status=$?
[ "$status" = 0 ] || { cat "$work/claimd.log" >&2; die "claimd exited with $status after SIGTERM"; }
kill -TERM "$signer_pid"
timeout "$grace" tail --pid="$signer_pid" -f /dev/null || die "the signer still runs $grace s after SIGTERM"
wait "$signer_pid" || true
ok=1
echo "helm pod test: passed"
