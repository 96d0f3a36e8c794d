#!/usr/bin/env bash
# Per-step cost of the sandbox: a step running `true` on a busybox image, from
# spawning the sandbox to its exit status, N times, against bwrap
# --unshare-all and `unshare -Urmpf` with comparable mounts, all run as the
# unprivileged user the worker runs as, interleaved round by round so a busy
# machine slows every tool alike. Prints median and p99 per tool and the
# ratios to bwrap; `--network default` (slirp4netns) is reported separately.
#
#   bench/sandbox_step.sh [--runs N] [--sandbox PATH]
# PATH defaults to Bazel's output for //sandbox:longshore-sandbox (build it
# first). Run as root (it stages files and switches to the test user).
set -euo pipefail

RUNS=300
SANDBOX=""
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --sandbox) SANDBOX=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--sandbox PATH]" >&2; exit 2 ;;
  esac
done
USER_NAME="${LONGSHORE_TEST_USER:-longshore}"
[[ $(id -u) -eq 0 ]] || { echo "$0: run as root (it switches to $USER_NAME)" >&2; exit 1; }
for tool in bwrap unshare setpriv newuidmap busybox; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing (ops/bootstrap.sh)" >&2; exit 1; }
done
if [[ -z "$SANDBOX" ]]; then
  SANDBOX=$(cd "$(dirname "$0")/.." && bazel --output_base=/root/.cache/bazel-ob-sandbox \
    info --experimental_convenience_symlinks=ignore bazel-bin 2>/dev/null)/sandbox/longshore-sandbox
fi
[[ -x "$SANDBOX" ]] || { echo "$0: $SANDBOX not found: build //sandbox:longshore-sandbox" >&2; exit 1; }
start=$(awk -F: -v u="$USER_NAME" '$1==u {print $2}' /etc/subuid)
[[ -n "$start" ]] || { echo "$0: $USER_NAME has no /etc/subuid range" >&2; exit 1; }

DIR=$(mktemp -d /tmp/longshore-bench.XXXXXX)
chmod 0755 "$DIR"
trap 'rm -rf "$DIR"' EXIT
install -m 0755 "$SANDBOX" "$DIR/longshore-sandbox"
# The image: busybox-static and its applets, owned by the subordinate range
# like an extracted layer.
mkdir -p "$DIR/lower/bin" "$DIR/lower/etc" "$DIR/lower/tmp" "$DIR/lower/proc" "$DIR/lower/dev" "$DIR/lower/sys"
cp /bin/busybox "$DIR/lower/bin/busybox"
for a in sh true; do ln -s busybox "$DIR/lower/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" >"$DIR/lower/etc/passwd"
echo "root:x:0:" >"$DIR/lower/etc/group"
chown -R "$start:$start" "$DIR/lower"
mkdir "$DIR/steps"
chown "$start:$start" "$DIR/steps"
"$DIR/longshore-sandbox" --write-seccomp-bpf "$DIR/policy.bpf"
chown "$start:$start" "$DIR"

# The timing loop runs inside a user namespace mapping the subordinate range,
# as the worker does (the sandbox's worker mode); bwrap and unshare run in it
# too, as nested namespaces, so every tool pays the same.
cat >"$DIR/loop.sh" <<'LOOP'
#!/bin/bash
# loop.sh TOOLS RUNS OUTDIR: RUNS rounds, each timing one step of every tool
# in TOOLS (comma-separated) in turn, so a change in the machine's load
# affects every tool alike; OUTDIR/TOOL.txt gets one line of microseconds
# per step.
set -u
tools=$1 runs=$2 outdir=$3 dir=$(dirname "$0")
IFS=, read -r -a tool_list <<<"$tools"
for tool in "${tool_list[@]}"; do : >"$outdir/$tool.txt"; done
for ((i = 0; i < runs; i++)); do
for tool in "${tool_list[@]}"; do
  out="$outdir/$tool.txt"
  s="$dir/steps/$tool-$i"
  mkdir -p "$s/upper" "$s/work"
  case $tool in
    longshore|longshore-net)
      net=none; [[ $tool == longshore-net ]] && net=default
      t0=$EPOCHREALTIME
      "$dir/longshore-sandbox" --lower "$dir/lower" --upper "$s/upper" --work "$s/work" \
        --seccomp-bpf "$dir/policy.bpf" --network $net --env PATH=/bin -- /bin/true
      rc=$?
      t1=$EPOCHREALTIME ;;
    bwrap)
      t0=$EPOCHREALTIME
      bwrap --unshare-all --die-with-parent --ro-bind "$dir/lower" / --proc /proc \
        --dev /dev --tmpfs /tmp --clearenv --setenv PATH /bin -- /bin/true
      rc=$?
      t1=$EPOCHREALTIME ;;
    unshare)
      t0=$EPOCHREALTIME
      unshare -Urmpf --mount-proc --root="$dir/lower" /bin/true
      rc=$?
      t1=$EPOCHREALTIME ;;
  esac
  rm -rf "$s"
  [[ $rc -eq 0 ]] || { echo "$tool: run $i exited $rc" >&2; exit 1; }
  echo $(( (${t1/./} - ${t0/./}) )) >>"$out"
done
done
LOOP
chmod 0755 "$DIR/loop.sh"

as_user_in_ns() {
  setpriv --reuid "$USER_NAME" --regid "$USER_NAME" --init-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$DIR" \
    unshare --user --map-users="$start,0,65536" --map-groups="$start,0,65536" \
    --setuid 0 --setgid 0 "$@"
}

stats() { # FILE -> "median p99" in ms
  sort -n "$1" | awk '{v[NR]=$1} END {
    m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    p = v[int(NR*0.99 + 0.999)]
    printf "%.2f %.2f\n", m/1000, p/1000 }'
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
echo "runs per tool: $RUNS, tools interleaved (after 20 warm-up rounds)"
printf "%-28s %10s %10s %12s\n" tool median_ms p99_ms vs_bwrap
declare -A MED
mkdir "$DIR/warm" "$DIR/times"
chown "$start:$start" "$DIR/warm" "$DIR/times"
as_user_in_ns "$DIR/loop.sh" bwrap,unshare,longshore 20 "$DIR/warm" >/dev/null
as_user_in_ns "$DIR/loop.sh" bwrap,unshare,longshore "$RUNS" "$DIR/times"
for tool in bwrap unshare longshore; do
  read -r med p99 < <(stats "$DIR/times/$tool.txt")
  MED[$tool]=$med
  ratio=$(awk -v a="$med" -v b="${MED[bwrap]}" 'BEGIN {printf "%.2fx", a/b}')
  case $tool in
    bwrap) label="bwrap --unshare-all" ;;
    unshare) label="unshare -Urmpf" ;;
    longshore) label="longshore-sandbox (overlay+seccomp)" ;;
  esac
  printf "%-28s %10s %10s %12s\n" "$label" "$med" "$p99" "$ratio"
done
NET_RUNS=$(( RUNS < 100 ? RUNS : 100 ))
as_user_in_ns "$DIR/loop.sh" longshore-net "$NET_RUNS" "$DIR/times"
read -r med p99 < <(stats "$DIR/times/longshore-net.txt")
printf "%-28s %10s %10s %12s\n" "longshore --network default" "$med" "$p99" \
  "$(awk -v a="$med" -v b="${MED[bwrap]}" 'BEGIN {printf "%.2fx", a/b}')"
