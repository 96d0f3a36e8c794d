#!/usr/bin/env bash
# What one `RUN true` step costs end to end through the farm (client,
# scheduler, rootless worker, sandbox, layer commit), against
# `bwrap --unshare-all` running `true` on the same busybox root.
#
# The farm's figure is (a 41-step build - a 1-step build) / 40, both with
# --no-cache so every step runs; the builds alternate, N of each, medians.
# bwrap runs M times as the worker's unprivileged user; median.
#
#   bench/farm_step.sh [--runs N] [--bwrap-runs M]     (defaults 7 and 200)
#
# Binaries come from `bazel info bazel-bin` (build //... first). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=7
BWRAP_RUNS=200
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --bwrap-runs) BWRAP_RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--bwrap-runs M]" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "$0: run as root (the worker runs as longshore)" >&2; exit 1; }

source tests/lib/farm.sh
for tool in bwrap setpriv newuidmap; do need "$tool"; done
[[ -x /bin/busybox ]] || fail "/bin/busybox is missing: install busybox-static"
BAZEL_BIN=${LONGSHORE_BIN:-$(bazel info bazel-bin 2>/dev/null)}
FARM_DIR=$(mktemp -d /tmp/longshore-farm-step.XXXXXX)
chmod 0755 "$FARM_DIR"
trap farm_cleanup EXIT
mkdir -p "$FARM_DIR/bin"
for b in scheduler/longshore-scheduler worker/longshore-worker sandbox/longshore-sandbox client/longshore; do
  [[ -x "$BAZEL_BIN/$b" ]] || fail "$BAZEL_BIN/$b is missing: bazel build //..."
  install -m 0755 "$BAZEL_BIN/$b" "$FARM_DIR/bin/"
done
LONGSHORE="$FARM_DIR/bin/longshore"
farm_start_scheduler
farm_start_worker w1

# The busybox root: the image the steps run on, and bwrap's root.
for n in 1 41; do
  ctx="$FARM_DIR/ctx$n"
  make_context "$ctx"
  {
    echo "FROM scratch"
    echo "COPY busybox /bin/busybox"
    echo 'RUN ["/bin/busybox", "--install", "-s", "/bin"]'
    for _ in $(seq 1 "$n"); do echo "RUN true"; done
  } >"$ctx/Dockerfile"
done
root="$FARM_DIR/root"
mkdir -p "$root/bin" "$root/tmp" "$root/proc" "$root/dev"
cp /bin/busybox "$root/bin/busybox"
for a in sh true; do ln -s busybox "$root/bin/$a"; done

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
mkdir -p "$FARM_DIR/times"
# One warm-up build of each, then N of each, alternating.
for n in 1 41; do "$LONGSHORE" build -q --no-cache "$FARM_DIR/ctx$n" >/dev/null; done
for ((i = 1; i <= RUNS; i++)); do
  for n in 1 41; do
    t0=$EPOCHREALTIME
    "$LONGSHORE" build -q --no-cache "$FARM_DIR/ctx$n" >/dev/null 2>"$FARM_DIR/build.err" ||
      { cat "$FARM_DIR/build.err" >&2; fail "the $n-step build failed"; }
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }' >>"$FARM_DIR/times/build$n"
  done
done

# bwrap, as the worker's user, timed inside one shell.
setpriv --reuid "$FARM_USER" --regid "$FARM_USER" --init-groups env -i PATH=/usr/bin:/bin \
  bash -c '
    root=$1 runs=$2
    for ((i = 0; i < runs + 20; i++)); do
      t0=$EPOCHREALTIME
      bwrap --unshare-all --die-with-parent --ro-bind "$root" / --proc /proc --dev /dev \
        --tmpfs /tmp --clearenv --setenv PATH /bin -- /bin/true || exit 1
      t1=$EPOCHREALTIME
      ((i < 20)) || echo $(( ${t1/./} - ${t0/./} ))
    done' bash "$root" "$BWRAP_RUNS" >"$FARM_DIR/times/bwrap" ||
  fail "bwrap failed"

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { sort -n "$1" | awk 'NR == 1 { a = $1 } { b = $1 } END { printf "%.2f-%.2f", a, b }'; }
m1=$(median "$FARM_DIR/times/build1")
m41=$(median "$FARM_DIR/times/build41")
bw=$(median "$FARM_DIR/times/bwrap")
echo "builds: $RUNS of each, --no-cache, alternating; bwrap: $BWRAP_RUNS runs after 20 warm-up"
printf "1-step build   median %.3f s (%s)\n" "$m1" "$(range "$FARM_DIR/times/build1")"
printf "41-step build  median %.3f s (%s)\n" "$m41" "$(range "$FARM_DIR/times/build41")"
awk -v a="$m1" -v b="$m41" -v w="$bw" 'BEGIN {
  step = (b - a) / 40 * 1000
  printf "RUN true through the farm: %.1f ms per step\n", step
  printf "bwrap --unshare-all true:  %.1f ms\n", w / 1000
  r = step / (w / 1000)
  printf "ratio farm/bwrap: %.2fx (target <= 1.5x: %s)\n", r, (r <= 1.5) ? "met" : "missed" }'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
