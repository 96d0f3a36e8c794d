#!/usr/bin/env bash
# Layer commit speed: Longshore's CommitLayer (tar + sha256 of the tar +
# compression + sha256 of the blob, one pass) against `tar -c | pigz` and
# `tar -c | zstd -T0` (which compute no digests) on the same ~200 MB tree of
# many small files and a few big ones. Three runs each, taken in turns, the
# median reported with the load average before and after, then the ratios
# (Longshore / pipeline; below 1.00 means Longshore is faster), gzip's
# throughput ratio and size ratio against `tar | pigz -6` with the targets
# (at least 2x the throughput, at most 5% larger).
#
# Usage: bazel run //bench:layer_commit
#    or: bench/layer_commit.sh [path/to/commit_layer]
# Environment: BENCH_DIR (scratch space, default a temp dir under /tmp),
# BENCH_MB (tree size, default 200), BENCH_RUNS (default 3).
set -euo pipefail

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

for tool in tar pigz zstd perl; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing (ops/bootstrap.sh installs pigz and zstd)"
done

COMMIT_LAYER=${1:-}
if [[ -z $COMMIT_LAYER ]]; then
  for c in "${RUNFILES_DIR:-$0.runfiles}/longshore/bench/commit_layer" \
    "$(dirname "$0")/commit_layer"; do
    if [[ -x $c ]]; then
      COMMIT_LAYER=$c
      break
    fi
  done
fi
[[ -n $COMMIT_LAYER && -x $COMMIT_LAYER ]] ||
  fail "commit_layer not found: run with 'bazel run //bench:layer_commit' or pass its path"

MB=${BENCH_MB:-200}
RUNS=${BENCH_RUNS:-3}
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/longshore-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TREE="$WORK/tree"
OUT="$WORK/out"
mkdir -p "$TREE" "$OUT"

# --- The tree: ~40% many small files, ~10% medium text files, ~50% a few big
# files; a mix of incompressible (urandom), half-compressible (base64 of
# urandom) and repetitive text, so compression has real work on every kind.
mb() { echo $((MB * $1 / 100)); }
# A text stream that compresses about 4-6x: numbered lines with varying words.
text_stream() {
  perl -e '
    my @w = qw(layer build cache worker registry manifest digest config step
               overlay snapshot commit image sandbox scheduler lease);
    my $bytes = $ARGV[0] * 1048576; my $n = 0; my $i = 0;
    srand(42);
    while ($n < $bytes) {
      my $l = sprintf("%08d %s %s %s %d\n", $i++, $w[rand @w], $w[rand @w],
                      $w[rand @w], int(rand(100000)));
      print $l; $n += length($l);
    }' "$1"
}
random_stream() { head -c "$(($1 * 1048576))" /dev/urandom; }
base64_stream() { head -c "$(($1 * 786432))" /dev/urandom | base64 -w 76; }

echo "making a ${MB} MB tree in $TREE ..."
for part in a b c d; do
  mkdir -p "$TREE/small/$part" "$TREE/src/$part"
done
# Small files: 2-8 KiB pieces of mixed streams, ~10000 files.
(
  cd "$TREE/small/a" && text_stream "$(mb 10)" | split -a 4 -b 2048 - f
  cd "$TREE/small/b" && base64_stream "$(mb 10)" | split -a 4 -b 4096 - f
  cd "$TREE/small/c" && random_stream "$(mb 10)" | split -a 4 -b 8192 - f
  cd "$TREE/small/d" && text_stream "$(mb 10)" | split -a 4 -b 3000 - f
)
# Medium text files (64 KiB), as a source tree.
(
  cd "$TREE/src/a" && text_stream "$(mb 5)" | split -a 3 -b 65536 - mod
  cd "$TREE/src/b" && base64_stream "$(mb 5)" | split -a 3 -b 65536 - mod
)
# A few big ones.
mkdir -p "$TREE/big"
random_stream "$(mb 20)" >"$TREE/big/random.bin"
text_stream "$(mb 15)" >"$TREE/big/app.log"
base64_stream "$(mb 15)" >"$TREE/big/assets.b64"

files=$(find "$TREE" -type f | wc -l)
bytes=$(du -sb "$TREE" | cut -f1)
echo "tree: $files files, $((bytes / 1048576)) MB; $(nproc) CPUs"

# Warm the page cache so every contender reads from memory.
tar -C "$TREE" -cf - . | cat >/dev/null

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

longshore_gzip() { "$COMMIT_LAYER" --dir "$TREE" --out "$OUT/layer.tar.gz" --compression gzip >/dev/null; }
longshore_zstd() { "$COMMIT_LAYER" --dir "$TREE" --out "$OUT/layer.tar.zst" --compression zstd >/dev/null; }
tar_pigz() { tar -C "$TREE" -cf - . | pigz -6 >"$OUT/tree.tar.gz"; }
tar_zstd() { tar -C "$TREE" -cf - . | zstd -T0 -q >"$OUT/tree.tar.zst"; }

NAMES=("longshore gzip" "tar -c | pigz -6" "longshore zstd" "tar -c | zstd -T0")
FUNCS=(longshore_gzip tar_pigz longshore_zstd tar_zstd)
declare -A WALL CPU SIZE

# The contenders take turns within each run (A B C D, A B C D, ...), so a
# change in the machine's load during the benchmark falls on all of them
# alike. Wall time is what the ratios use; CPU seconds (user + sys, children
# included) are printed beside it because on a shared machine they vary less.
TIMEFORMAT='%R %U %S'
echo "load average before: $(load)"
for _ in $(seq "$RUNS"); do
  for i in "${!FUNCS[@]}"; do
    rm -f "$OUT"/*
    { time "${FUNCS[$i]}" 2>"$WORK/stderr"; } 2>"$WORK/time" ||
      fail "${NAMES[$i]} failed: $(cat "$WORK/stderr")"
    read -r wall user sys <"$WORK/time"
    WALL[$i]+="$wall "
    CPU[$i]+="$(perl -e 'printf("%.2f", $ARGV[0] + $ARGV[1])' "$user" "$sys") "
    SIZE[$i]=$(du -cb "$OUT"/* | tail -n 1 | cut -f1)
  done
done
echo "load average after:  $(load)"

declare -a MED
for i in "${!FUNCS[@]}"; do
  # shellcheck disable=SC2086
  MED[i]=$(median ${WALL[$i]})
  # shellcheck disable=SC2086
  printf '%-24s %8ss  cpu %6ss  (runs: %s)  output %d MB\n' "${NAMES[$i]}" \
    "${MED[$i]}" "$(median ${CPU[$i]})" "${WALL[$i]% }" $((SIZE[$i] / 1048576))
done

ratio() { perl -e 'printf("%.2f", $ARGV[0] / $ARGV[1])' "$1" "$2"; }
ratio3() { perl -e 'printf("%.3f", $ARGV[0] / $ARGV[1])' "$1" "$2"; }
verdict() { perl -e 'print(($ARGV[0] <= $ARGV[1]) ? "met" : "MISSED")' "$1" "$2"; }
echo
echo "ratio longshore gzip / tar|pigz -6:  $(ratio "${MED[0]}" "${MED[1]}")"
echo "ratio longshore zstd / tar|zstd -T0: $(ratio "${MED[2]}" "${MED[3]}")"
# Throughput is bytes of tree per second: the inverse of the time ratio.
gz_speed=$(ratio "${MED[1]}" "${MED[0]}")
gz_size=$(ratio3 "${SIZE[0]}" "${SIZE[1]}")
echo "gzip throughput longshore / tar|pigz -6: ${gz_speed}x (target >= 2x: $(verdict 2 "$gz_speed"))"
echo "gzip size longshore / tar|pigz -6: ${SIZE[0]} / ${SIZE[1]} bytes = ${gz_size} (target <= 1.05: $(verdict "$gz_size" 1.05))"
