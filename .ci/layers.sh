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
  # Every source and header of the folder, subfolders included.
  while IFS= read -r -d '' f; do
    rel=${f#"$root"/}
    # Every "..." include, and every <...> one that names a layer: "name.h" is the
    # file's own folder, "folder/name.h" names a layer, and a path with ".." could
    # reach any folder, so it is refused outright.
    while IFS=: read -r line kind target; do
      case "/$target/" in
      */../*)
        echo "layers: $rel:$line includes $target (no '..' in an include path)" >&2
        bad=1
        continue
        ;;
      esac
      case "$target" in
      */*) ;;
      *) continue ;;
      esac
      to=${target%%/*}
      # <...> is a system header unless it names one of our folders.
      [ "$kind" = a ] && [ -z "${may[$to]:-}" ] && continue
      case " ${may[$folder]} " in
      *" $to "*) ;;
      *)
        echo "layers: $rel:$line includes $target" \
          "(src/$folder may include only: ${may[$folder]})" >&2
        bad=1
        ;;
      esac
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]' "$f" |
      sed -n 's|^\([0-9]*\):[^"<]*"\([^"]*\)".*|\1:q:\2|p
              s|^\([0-9]*\):[^"<]*<\([^>]*\)>.*|\1:a:\2|p' || true)
  done < <(find "$dir" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
done
[ "$bad" -eq 0 ] && echo "layers: every include points down"
exit "$bad"
