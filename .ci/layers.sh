#!/usr/bin/env bash
# The layer check: every file under src/<folder>/ may include headers only from the
# folders its row below allows (itself and the layers under it). One folder per line:
# the folder, then the folders it may include from. An include that reaches up (the
# database including the domain, the daemon including the simulator, ...) fails CI.
#   .ci/layers.sh [SOURCE_DIR]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}

allowed='
lib
x509   lib
signer x509 lib
db     lib
core   signer db x509 lib
daemon core signer db x509 lib
sim    lib
ctl    core signer db x509 lib sim
'

declare -A may
while read -r folder deps; do
  [ -n "$folder" ] && may[$folder]="$folder $deps"
done <<<"$allowed"

bad=0
for dir in "$root"/src/*/; do
  folder=$(basename "$dir")
  if [ -z "${may[$folder]:-}" ]; then
    echo "layers: src/$folder is not in the table of .ci/layers.sh" >&2
    bad=1
    continue
  fi
  for f in "$dir"*.c "$dir"*.h; do
    [ -e "$f" ] || continue
    # Only "folder/name.h" includes name a layer; "name.h" is the file's own folder.
    while IFS=: read -r line target; do
      to=${target%%/*}
      case " ${may[$folder]} " in
      *" $to "*) ;;
      *)
        echo "layers: src/$folder/$(basename "$f"):$line includes $target" \
          "(src/$folder may include only: ${may[$folder]})" >&2
        bad=1
        ;;
      esac
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z0-9_]*/' "$f" |
      sed 's|^\([0-9]*\):[^"]*"\([^"]*\)".*|\1:\2|' || true)
  done
done
[ "$bad" -eq 0 ] && echo "layers: every include points down"
exit "$bad"
