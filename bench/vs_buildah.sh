#!/usr/bin/env bash
# Build plus push, Longshore against buildah, on the same machine and to the
# same registry (Debian's docker-registry on 127.0.0.1).
#
#   Longshore: `longshore build -t REG/... --push` through a scheduler and one
#   rootless worker (as the unprivileged user, like the end-to-end tests).
#   buildah:   `buildah bud --layers --isolation chroot -t IMG` then
#              `buildah push --tls-verify=false IMG docker://REG/...`, with
#              overlay storage (kernel overlayfs, as root): buildah's fastest
#              configuration here; vfs copies every layer's files for each
#              step (`--buildah-driver vfs` measures it).
#
# Cases (each run of a case alternates the two tools, so a change in the
# machine's load falls on both):
#   10 small RUN steps, cold and cached;
#   the tutorial's shape (a base from the registry, a dependency step writing
#   about 15 MB, `COPY . .` of 200 small files and a 5 MB file), cold, cached
#   and after a one-file edit;
#   a step writing 200 MB, cold;
#   a context of 20,000 files and 300 MB with one file edited, from a fresh
#   checkout (a new copy of the tree: every mtime is new), with the bytes the
#   scheduler received for it.
# "cold": the worker's work dir, the scheduler's state and buildah's storage
# are fresh (the base image is pulled again), and the push goes to a new
# repository. "cached": the same build again, to the same tag.
#
#   bench/vs_buildah.sh [--runs N] [--context-runs M] [--buildah-driver overlay|vfs]
#                       [--only small|tutorial|big|context]
#
# N defaults to 5, M (the 20,000-file case, 20-35 s a run per tool) to 3.
# Binaries come from `bazel info bazel-bin` (build //... first). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

RUNS=5
CONTEXT_RUNS=3
DRIVER=overlay
ONLY=""
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --context-runs) CONTEXT_RUNS=$2; shift 2 ;;
    --buildah-driver) DRIVER=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--context-runs M] [--buildah-driver overlay|vfs] [--only CASE]" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "$0: run as root (buildah's storage; the worker runs as longshore)" >&2; exit 1; }

source tests/lib/farm.sh
source tests/lib/registry.sh
for tool in buildah setpriv newuidmap curl python3; do need "$tool"; done
[[ -x /bin/busybox ]] || fail "/bin/busybox is missing: install busybox-static"
BAZEL_BIN=${LONGSHORE_BIN:-$(bazel info bazel-bin 2>/dev/null)}
for b in scheduler/longshore-scheduler worker/longshore-worker sandbox/longshore-sandbox client/longshore; do
  [[ -x "$BAZEL_BIN/$b" ]] || fail "$BAZEL_BIN/$b is missing: bazel build //..."
done

FARM_DIR=$(mktemp -d /tmp/longshore-vs-buildah.XXXXXX)
chmod 0755 "$FARM_DIR"
mkdir -p "$FARM_DIR/bin"
for b in scheduler/longshore-scheduler worker/longshore-worker sandbox/longshore-sandbox client/longshore; do
  install -m 0755 "$BAZEL_BIN/$b" "$FARM_DIR/bin/"
done
LONGSHORE="$FARM_DIR/bin/longshore"

# buildah: its own storage under the bench dir. chroot isolation runs steps
# without an OCI runtime, so crun's refusal of this machine's cgroup layout
# does not matter here (oci isolation would need `--runtime /usr/sbin/runc`);
# buildah needs no other flag on these machines.
BUILDAH=(buildah --root "$FARM_DIR/buildah/root" --runroot "$FARM_DIR/buildah/run"
  --storage-driver "$DRIVER")
buildah_reset() {
  "${BUILDAH[@]}" rm -a >/dev/null 2>&1 || true
  "${BUILDAH[@]}" rmi -a -f >/dev/null 2>&1 || true
}
bench_cleanup() {
  local rc=$?
  set +e
  buildah_reset
  grep -o "$FARM_DIR/buildah[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  (exit $rc)
  farm_cleanup
}
trap bench_cleanup EXIT

# Longshore's farm: one scheduler and one worker, restarted with fresh state
# for every cold run.
SCHED_PID="" WORKER_PID=""
farm_stop() {
  local pid
  for pid in $WORKER_PID $SCHED_PID; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # Stopped processes leave the farm's list, so cleanup never signals a reused pid.
  local keep=() p
  for p in "${FARM_PIDS[@]}"; do
    [[ " $WORKER_PID $SCHED_PID " == *" $p "* ]] || keep+=("$p")
  done
  FARM_PIDS=("${keep[@]}")
  SCHED_PID="" WORKER_PID=""
}
farm_fresh() {
  farm_stop
  rm -rf "$FARM_DIR/scheduler" "$FARM_DIR/work-w1"
  farm_start_scheduler
  SCHED_PID=${FARM_PIDS[-1]}
  farm_start_worker w1
  WORKER_PID=${FARM_PIDS[-1]}
}
context_bytes() {
  curl -s "http://127.0.0.1:$SCHED_METRICS_PORT/metrics" |
    awk '$1 == "longshore_scheduler_context_bytes_received_total" { printf "%d\n", $2; f = 1 }
         END { if (!f) print 0 }'
}

# timed NAME CMD...: runs CMD, appends its wall time in seconds to
# $FARM_DIR/times/NAME, keeps its output in $FARM_DIR/logs/NAME.N.
mkdir -p "$FARM_DIR/times" "$FARM_DIR/logs"
timed() {
  local name=$1 t0 t1 rc=0 n
  shift
  n=1
  [[ -f "$FARM_DIR/times/$name" ]] && n=$(($(wc -l <"$FARM_DIR/times/$name") + 1))
  t0=$EPOCHREALTIME
  "$@" >"$FARM_DIR/logs/$name.$n" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  if [[ $rc -ne 0 ]]; then
    tail -n 40 "$FARM_DIR/logs/$name.$n" >&2
    fail "$name (run $n) exited $rc"
  fi
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >>"$FARM_DIR/times/$name"
}

ls_build() { # ls_build CTX REF
  "$LONGSHORE" build --progress=plain -t "$2" --push "$1"
}
bh_build() { # bh_build CTX REF
  "${BUILDAH[@]}" bud --layers --isolation chroot --tls-verify=false -q -t "$2" "$1" &&
    "${BUILDAH[@]}" push --tls-verify=false -q "$2" "docker://$2"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
echo "buildah $(buildah --version | awk '{print $3}'), storage $DRIVER, isolation chroot; runs $RUNS (20,000-file case $CONTEXT_RUNS)"

registry_start
farm_fresh

# The base image every case builds FROM: busybox-static and its applets,
# built by Longshore and pushed once.
mkdir -p "$FARM_DIR/ctx/base"
cp /bin/busybox "$FARM_DIR/ctx/base/busybox"
cat >"$FARM_DIR/ctx/base/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]
EOF
"$LONGSHORE" build -q -t "$REGISTRY/bench/base:1" --push "$FARM_DIR/ctx/base" >/dev/null
BASE="$REGISTRY/bench/base:1"

# 10 small RUN steps.
mkdir -p "$FARM_DIR/ctx/small"
{
  echo "FROM $BASE"
  for i in $(seq 1 10); do echo "RUN echo step $i > /step$i"; done
} >"$FARM_DIR/ctx/small/Dockerfile"

# The tutorial's shape: requirements first, a dependency step writing about
# 15 MB of text (as a pip install writes sources), then the app: 200 small
# files and one 5 MB file.
tut="$FARM_DIR/ctx/tutorial"
mkdir -p "$tut/src"
cat >"$tut/Dockerfile" <<EOF
FROM $BASE
WORKDIR /app
COPY requirements.txt requirements.txt
RUN mkdir -p /deps && seq 1 1900000 > /deps/installed.txt
COPY . .
CMD ["cat", "/app/src/file1.py"]
EOF
echo "Flask==2.2.2" >"$tut/requirements.txt"
python3 - "$tut" <<'EOF'
import base64, random, sys
root = sys.argv[1]
rng = random.Random(1)
for i in range(1, 201):
    lines = ["def f%d_%d():\n    return %r\n" % (i, j, base64.b64encode(rng.randbytes(30)).decode())
             for j in range(rng.randint(10, 60))]
    open("%s/src/file%d.py" % (root, i), "w").write("".join(lines))
open(root + "/data.bin", "wb").write(base64.b64encode(rng.randbytes(3_750_000)))
EOF

# A step writing 200 MB: half random bytes, half text.
mkdir -p "$FARM_DIR/ctx/big"
cat >"$FARM_DIR/ctx/big/Dockerfile" <<EOF
FROM $BASE
RUN head -c 100000000 /dev/urandom > /random.bin && seq 1 13000000 | head -c 100000000 > /text.txt
EOF

# 20,000 files, 300 MB: 200 directories of 100 files of 15 KB (base64 text).
tree="$FARM_DIR/ctx/tree"
python3 - "$tree" <<'EOF'
import base64, os, random, sys
root = sys.argv[1]
rng = random.Random(2)
for d in range(200):
    os.makedirs("%s/pkg%03d" % (root, d))
    for f in range(100):
        open("%s/pkg%03d/f%03d.txt" % (root, d, f), "wb").write(base64.b64encode(rng.randbytes(11250)))
EOF
cat >"$tree/Dockerfile" <<EOF
FROM $BASE
COPY . /src
EOF

want() { [[ -z $ONLY || $ONLY == "$1" ]]; }
run=0
cold_pair() { # cold_pair CASE CTX: both tools from fresh state, to a new repository
  farm_fresh
  buildah_reset
  timed "$1.longshore" ls_build "$2" "$REGISTRY/ls/$1-$run:1"
  timed "$1.buildah" bh_build "$2" "$REGISTRY/bh/$1-$run:1"
}
warm_pair() { # warm_pair CASE NAME CTX: the same repositories as the cold run
  timed "$2.longshore" ls_build "$3" "$REGISTRY/ls/$1-$run:1"
  timed "$2.buildah" bh_build "$3" "$REGISTRY/bh/$1-$run:1"
}

for ((run = 1; run <= RUNS; run++)); do
  echo "run $run/$RUNS ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))" >&2
  if want small; then
    cold_pair small-cold "$FARM_DIR/ctx/small"
    warm_pair small-cold small-cached "$FARM_DIR/ctx/small"
  fi
  if want tutorial; then
    # Each run starts from the same app and edits one file after the cached build.
    rm -rf "$FARM_DIR/app" && cp -r "$tut" "$FARM_DIR/app"
    cold_pair tutorial-cold "$FARM_DIR/app"
    warm_pair tutorial-cold tutorial-cached "$FARM_DIR/app"
    echo "# edit $run" >>"$FARM_DIR/app/src/file7.py"
    warm_pair tutorial-cold tutorial-edit "$FARM_DIR/app"
  fi
  if want big; then
    cold_pair big-cold "$FARM_DIR/ctx/big"
  fi
done

if want context; then
  # A first build of the tree by both tools (not timed), then for each run a
  # fresh checkout of it (cp: every mtime new) with one file edited.
  farm_fresh
  buildah_reset
  run=0
  cp -r "$tree" "$FARM_DIR/checkout"
  ls_build "$FARM_DIR/checkout" "$REGISTRY/ls/context:1" >"$FARM_DIR/logs/context-first.longshore" 2>&1 ||
    fail "the first build of the 20,000-file context failed"
  bh_build "$FARM_DIR/checkout" "$REGISTRY/bh/context:1" >"$FARM_DIR/logs/context-first.buildah" 2>&1 ||
    fail "buildah's first build of the 20,000-file context failed"
  for ((run = 1; run <= CONTEXT_RUNS; run++)); do
    echo "context run $run/$CONTEXT_RUNS ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))" >&2
    rm -rf "$FARM_DIR/checkout"
    cp -r "$tree" "$FARM_DIR/checkout"
    echo "edit $run" >>"$FARM_DIR/checkout/pkg100/f050.txt"
    sync
    before=$(context_bytes)
    timed context-edit.longshore ls_build "$FARM_DIR/checkout" "$REGISTRY/ls/context:1"
    echo $(($(context_bytes) - before)) >>"$FARM_DIR/times/context-bytes"
    timed context-edit.buildah bh_build "$FARM_DIR/checkout" "$REGISTRY/bh/context:1"
  done
fi

stats() { # FILE -> "median min max"
  sort -n "$1" | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.2f %.2f %.2f\n", m, v[1], v[NR] }'
}
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-34s %-24s %-24s %7s  %s\n" case "longshore s (min-max)" "buildah s (min-max)" ratio target
report() { # report CASE LABEL TARGET
  [[ -f "$FARM_DIR/times/$1.longshore" ]] || return 0
  local lm lmin lmax bm bmin bmax ratio verdict
  read -r lm lmin lmax < <(stats "$FARM_DIR/times/$1.longshore")
  read -r bm bmin bmax < <(stats "$FARM_DIR/times/$1.buildah")
  ratio=$(awk -v a="$lm" -v b="$bm" 'BEGIN { printf "%.2f", a / b }')
  if [[ -n $3 ]]; then
    verdict="<= ${3}x $(awk -v r="$ratio" -v t="$3" 'BEGIN { print (r <= t) ? "met" : "missed" }')"
  else
    verdict="(target: bytes sent, below)"
  fi
  printf "%-34s %-24s %-24s %6sx  %s\n" "$2" "$lm ($lmin-$lmax)" "$bm ($bmin-$bmax)" \
    "$ratio" "$verdict"
}
report small-cold "10 RUN steps, cold" 0.25
report small-cached "10 RUN steps, cached" 0.1
report tutorial-cold "tutorial shape, cold" 0.25
report tutorial-cached "tutorial shape, cached" 0.1
report tutorial-edit "tutorial shape, one file edited" 0.2
report big-cold "step writing 200 MB, cold" 0.5
report context-edit "20,000 files/300 MB, one edited" ""
if [[ -f "$FARM_DIR/times/context-bytes" ]]; then
  read -r bm bmin bmax < <(stats "$FARM_DIR/times/context-bytes")
  awk -v m="$bm" -v a="$bmin" -v b="$bmax" 'BEGIN {
    printf "%-34s %.1f MB (%.1f-%.1f) sent to the scheduler; target under 1 MB: %s\n",
      "20,000 files/300 MB, context sent", m / 1e6, a / 1e6, b / 1e6, (m < 1e6) ? "met" : "missed" }'
fi
