#!/usr/bin/env bash
# A worker started in a delegated cgroup v2 subtree moves itself to a leaf,
# says in its log how memory and pids limits are enforced, and runs each RUN
# step in a cgroup of its own: the step sees that cgroup as "/", mounted
# read-only at /sys/fs/cgroup with the step's processes in it, and the cgroup
# is gone after the step.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_delegate_cgroup
farm_start_scheduler
farm_start_worker w1 --step-pids 64

log="$FARM_DIR/worker-w1.log"
grep -q "steps run in cgroups under $FARM_CGROUP; limits: memory by \(memory.max\|RLIMIT_AS (no memory controller delegated)\), pids by \(pids.max\|RLIMIT_NPROC (no pids controller delegated)\)" "$log" ||
  { cat "$log" >&2; fail "the worker did not report its step cgroups"; }
# Its processes moved to the leaf; the delegated directory holds none.
# (cgroup files report size 0: read them.)
grep -q . "$FARM_CGROUP/worker/cgroup.procs" || fail "no process in $FARM_CGROUP/worker"
! grep -q . "$FARM_CGROUP/cgroup.procs" ||
  fail "processes left in $FARM_CGROUP: $(cat "$FARM_CGROUP/cgroup.procs")"

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN cat /proc/self/cgroup > /cgroup.txt && \
    wc -l < /sys/fs/cgroup/cgroup.procs > /procs.txt && \
    (echo 1 > /sys/fs/cgroup/pids.max) 2> /write.txt || true
RUN (mkdir /sys/fs/cgroup/escape; echo $$ > /sys/fs/cgroup/cgroup.procs; \
     umount /sys/fs/cgroup; mount -o remount,rw /sys/fs/cgroup) > /attempts.txt 2>&1; true
DOCKERFILE
rc=0
"$LONGSHORE" build --progress=plain -t cg:1 --output "type=oci,dest=$FARM_DIR/out,tar=false" \
  "$ctx" 2>"$FARM_DIR/build.log" || rc=$?
[[ $rc -eq 0 ]] || { cat "$FARM_DIR/build.log" >&2; fail "build exited $rc"; }
umoci unpack --image "$FARM_DIR/out:1" "$FARM_DIR/b" >/dev/null || fail "umoci unpack failed"
root="$FARM_DIR/b/rootfs"

# (A hybrid host lists its v1 hierarchies too; the unified one is "0::".)
grep -qx "0::/" "$root/cgroup.txt" ||
  fail "the step's /proc/self/cgroup: $(cat "$root/cgroup.txt") (want 0::/)"
procs=$(tr -d ' ' <"$root/procs.txt")
[[ "$procs" -ge 2 ]] || fail "the step's cgroup lists $procs processes (want its own, at least 2)"
grep -q "Read-only file system" "$root/write.txt" ||
  fail "writing the step's pids.max: '$(cat "$root/write.txt")' (want Read-only file system)"
# The step can neither grow its cgroup tree, move itself, nor unmount or
# remount the read-only view.
cat "$root/attempts.txt"
[[ $(grep -c "Read-only file system" "$root/attempts.txt") -eq 2 ]] ||
  fail "mkdir/write in the step's cgroup: $(cat "$root/attempts.txt")"
grep -q "umount.*Operation not permitted" "$root/attempts.txt" ||
  fail "umount /sys/fs/cgroup was not refused: $(cat "$root/attempts.txt")"
grep -Eq "mount: .*(Operation not permitted|permission denied)" "$root/attempts.txt" ||
  fail "remount of /sys/fs/cgroup was not refused: $(cat "$root/attempts.txt")"
# No step cgroup outlives its step.
leftover=$(find "$FARM_CGROUP" -mindepth 1 -maxdepth 1 -type d -name 'step-*')
[[ -z "$leftover" ]] || fail "step cgroups left behind: $leftover"
echo "PASS: steps ran in their own cgroups under $FARM_CGROUP"
