#!/usr/bin/env bash
# make images: builds the longshore-scheduler and longshore-worker images with
# Longshore itself (`longshore build`, its embedded scheduler and worker, or a
# farm when LONGSHORE_SCHEDULER is set), from ops/images/*/Dockerfile on the
# Debian base ops/images/make-base.sh makes. Writes OCI archives:
#   OUT/longshore-scheduler.oci.tar, OUT/longshore-worker.oci.tar
# tagged with common/VERSION. Push them with skopeo (docs/operating.md,
# "Images"), or give PUSH=registry.example/longshore to push while building.
#
#   ops/images/build-images.sh [OUT]   (default out/images; run as root the
#   first time: the base is made with debootstrap and cached)
#
# BIN_DIR holds the four binaries (default bazel-bin's); BASE_TAR the base
# (default /var/cache/longshore/runtime-base.tar).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
OUT=${1:-$repo/out/images}
BASE_TAR=${BASE_TAR:-/var/cache/longshore/runtime-base.tar}
version=$(tr -d ' \n' <"$repo/common/VERSION")

bin() {
  local p
  if [[ -n "${BIN_DIR:-}" ]]; then p="$BIN_DIR/$1"; else p="$repo/bazel-bin/$2/$1"; fi
  [[ -x "$p" ]] || { echo "build-images.sh: $p is missing (bazel build //... first)" >&2; exit 1; }
  echo "$p"
}
scheduler=$(bin longshore-scheduler scheduler)
worker=$(bin longshore-worker worker)
sandbox=$(bin longshore-sandbox sandbox)
client=$(bin longshore client)

"$here/make-base.sh" "$BASE_TAR" "$scheduler" "$worker" "$sandbox" "$client"

mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/longshore-images.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
for name in scheduler worker; do
  ctx="$work/$name"
  mkdir "$ctx"
  cp "$here/$name/Dockerfile" "$ctx/"
  ln "$BASE_TAR" "$ctx/base.tar" 2>/dev/null || cp "$BASE_TAR" "$ctx/base.tar"
  case $name in
    scheduler) cp "$scheduler" "$client" "$ctx/" ;;
    worker) cp "$worker" "$sandbox" "$ctx/" ;;
  esac
  chmod -R a+rX "$ctx"
  args=(build --progress=plain -t "longshore-$name:$version"
    --output "type=oci,dest=$OUT/longshore-$name.oci.tar")
  if [[ -n "${PUSH:-}" ]]; then args+=(-t "$PUSH/longshore-$name:$version" --push); fi
  echo "build-images.sh: longshore-$name:$version"
  "$client" "${args[@]}" "$ctx"
done
echo "build-images.sh: wrote $OUT/longshore-scheduler.oci.tar and $OUT/longshore-worker.oci.tar"
