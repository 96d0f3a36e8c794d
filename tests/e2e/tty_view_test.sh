#!/usr/bin/env bash
# The live terminal view, in a real terminal (tmux): while a build with two
# parallel stages runs, snapshots of the pane show both running steps side by
# side, their timers ticking and the last lines of their output; after a
# resize the frame fits the new width with no stale frame left; a rebuild
# marks its steps CACHED; each build ends with a summary (steps run and
# cached, time, digest, names, where the outputs went).
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
need tmux
farm_start_scheduler
farm_start_worker w1

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM tools AS alpha
RUN for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do echo "alpha says $i"; sleep 0.5; done >&2; echo alpha > /alpha

FROM tools AS beta
RUN for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do echo "beta says $i"; sleep 0.5; done; echo beta > /beta

FROM tools
COPY --from=alpha /alpha /alpha
COPY --from=beta /beta /beta
DOCKERFILE

TMUX_SOCKET="$FARM_DIR/tmux.sock"
tm() { tmux -S "$TMUX_SOCKET" "$@"; }
snap() { tm capture-pane -p -t view >"$FARM_DIR/$1.txt"; }
cleanup_tmux() { tm kill-server 2>/dev/null || true; }
trap 'rc=$?; cleanup_tmux; (exit $rc); farm_cleanup' EXIT

run_in_tmux() {  # run_in_tmux NAME ARGS...: `longshore build ARGS` in a 150x40 pane
  local name=$1
  shift
  rm -f "$FARM_DIR/$name.rc"
  tm new-session -d -s view -x 150 -y 40 \
    "env TERM=xterm-256color LONGSHORE_SCHEDULER=$LONGSHORE_SCHEDULER $LONGSHORE build $* $ctx; echo \$? >$FARM_DIR/$name.rc; sleep 600"
}
wait_rc() {
  for _ in $(seq 600); do
    [[ -s "$FARM_DIR/$1.rc" ]] && return 0
    sleep 0.1
  done
  snap "$1-timeout"
  fail "build $1 did not end: $(cat "$FARM_DIR/$1-timeout.txt")"
}
timer_of() {  # timer_of FILE STAGE: the running timer shown for STAGE's step
  grep -o "\[$2 [0-9]*/[0-9]*\] RUN[^|]*[0-9][0-9]*\.[0-9]s" "$1" | grep -o '[0-9][0-9]*\.[0-9]s$' | head -n1 | tr -d s
}

# 1. While both stages run.
run_in_tmux first -t "tty:1" -o "type=local,dest=$FARM_DIR/out"
for _ in $(seq 300); do
  snap during1
  grep -q "alpha says 3" "$FARM_DIR/during1.txt" && grep -q "beta says 3" "$FARM_DIR/during1.txt" && break
  sleep 0.1
done
grep -q "alpha says 3" "$FARM_DIR/during1.txt" ||
  fail "no running-step tail for alpha: $(cat "$FARM_DIR/during1.txt")"
grep -q "beta says 3" "$FARM_DIR/during1.txt" || fail "no running-step tail for beta"
grep -qE '^\[\+\] Building [0-9]+\.[0-9]s \([0-9]+/[0-9]+\) on w1' "$FARM_DIR/during1.txt" ||
  fail "no header with the build's clock: $(cat "$FARM_DIR/during1.txt")"
# Side by side: both steps' headers on one line, and both tails on one line.
grep -E "\[alpha [0-9]+/[0-9]+\] RUN.*\|.*\[beta [0-9]+/[0-9]+\] RUN" "$FARM_DIR/during1.txt" >/dev/null ||
  fail "the parallel stages are not side by side: $(cat "$FARM_DIR/during1.txt")"
grep -E "alpha says [0-9]+.*\|.*beta says [0-9]+" "$FARM_DIR/during1.txt" >/dev/null ||
  fail "the tails are not side by side"
t1=$(timer_of "$FARM_DIR/during1.txt" alpha)
sleep 1.5
snap during2
t2=$(timer_of "$FARM_DIR/during2.txt" alpha)
[[ -n "$t1" && -n "$t2" ]] || fail "no timer on alpha's step: $(cat "$FARM_DIR/during1.txt")"
awk -v a="$t1" -v b="$t2" 'BEGIN { exit !(b - a >= 1.0 && b - a <= 3.0) }' ||
  fail "alpha's timer went from $t1 to $t2 in 1.5s"
# Only the last lines of a step's output.
[[ $(grep -c "alpha says" "$FARM_DIR/during2.txt") -le 6 ]] || fail "more than six tail lines shown"
# The finished steps scroll above as permanent lines.
grep -qE '=> \[tools [0-9]+/[0-9]+\] RUN.*[0-9]+\.[0-9]s$' "$FARM_DIR/during2.txt" ||
  fail "no DONE line for the tools step: $(cat "$FARM_DIR/during2.txt")"

# 2. A narrower terminal mid-build: every line fits, one frame on screen.
tm resize-window -t view -x 70 -y 40
sleep 1
snap resized
awk 'length($0) > 70 { bad = 1 } END { exit bad }' "$FARM_DIR/resized.txt" ||
  fail "lines wider than 70 after the resize: $(cat "$FARM_DIR/resized.txt")"
[[ $(grep -c '^\[+\] Building' "$FARM_DIR/resized.txt") -eq 1 ]] ||
  fail "not exactly one frame after the resize: $(cat "$FARM_DIR/resized.txt")"
tm resize-window -t view -x 150 -y 40

wait_rc first
[[ "$(cat "$FARM_DIR/first.rc")" == 0 ]] || { snap failed; fail "the build failed: $(cat "$FARM_DIR/failed.txt")"; }
snap done1
grep -qE '^\[\+\] Built in [0-9]+\.[0-9]s: [1-9][0-9]* steps run, 0 cached on w1' "$FARM_DIR/done1.txt" ||
  fail "no summary: $(cat "$FARM_DIR/done1.txt")"
grep -qE '=> image sha256:[0-9a-f]{64}' "$FARM_DIR/done1.txt" || fail "summary without the digest"
grep -q '=> naming tty:1' "$FARM_DIR/done1.txt" || fail "summary without the name"
grep -q "=> filesystem to $FARM_DIR/out" "$FARM_DIR/done1.txt" || fail "summary without the output"
grep -q '^\[+\] Building' "$FARM_DIR/done1.txt" && fail "the live frame was left on screen"
tm kill-session -t view

# 3. The same build again: every step CACHED, and the summary says so.
run_in_tmux second -t "tty:1"
wait_rc second
snap done2
[[ "$(cat "$FARM_DIR/second.rc")" == 0 ]] || fail "the rebuild failed: $(cat "$FARM_DIR/done2.txt")"
grep -qE '=> CACHED \[alpha [0-9]+/[0-9]+\] RUN' "$FARM_DIR/done2.txt" ||
  fail "no CACHED mark: $(cat "$FARM_DIR/done2.txt")"
grep -qE '^\[\+\] Built in [0-9]+\.[0-9]s: 0 steps run, [1-9][0-9]* cached' "$FARM_DIR/done2.txt" ||
  fail "the summary does not count the cache hits: $(cat "$FARM_DIR/done2.txt")"
echo "PASS: live tty view"
