#!/usr/bin/env bash
# The sandbox escape suite. A scheduler and a worker (as the unprivileged test
# user) run builds whose RUN steps try to leave the sandbox with
# tests/escape/probe; every attempt must fail exactly the way the kernel or
# the seccomp filter makes it fail. Results are read from the plain progress
# log, where the probe prints "PROBE <attempt>: <result>".
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
need ip iproute2
need slirp4netns
farm_start_scheduler

# Limits for every step of this worker, set with the worker's own flags.
PIDS_LIMIT=128
MEMORY_LIMIT=$((256 << 20))
DISK_LIMIT=$((32 << 20))
farm_start_worker w1 --step-pids "$PIDS_LIMIT" --step-memory "$MEMORY_LIMIT" \
  --step-disk "$DISK_LIMIT"
WORKER_PID=$(pgrep -u "$FARM_USER" -f "longshore-worker.*--worker-id w1" | head -n1)
[[ -n "$WORKER_PID" ]] || fail "worker w1's pid not found"

ctx="$FARM_DIR/ctx"
make_context "$ctx"
install -m 0755 "$(runfile tests/escape/probe)" "$ctx/probe"

ASSERTED=0
# expect LOG ATTEMPT RESULT-REGEX: the attempt's line must match exactly.
expect() {
  local log=$1 name=$2 want=$3 got
  got=$(grep -oE "PROBE $name: .*" "$log" | head -n1 | sed "s/^PROBE $name: //")
  [[ -n "$got" ]] || fail "no result for attempt '$name' in $(basename "$log")"
  [[ "$got" =~ ^($want)$ ]] || fail "attempt '$name' gave '$got', want '$want'"
  ASSERTED=$((ASSERTED + 1))
}

build() {
  local name=$1
  shift
  "$LONGSHORE" build --progress=plain --output "type=oci,dest=$FARM_DIR/$name.tar" \
    "$@" 2>"$FARM_DIR/$name.log"
}

# ---- 1. Isolation, with RUN --network=none.
HOST_PATH="$FARM_DIR/work-w1"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
COPY probe /bin/probe
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ARG WORKER_PID
ARG HOST_PATH
ARG SCHED_PORT
RUN --network=none /bin/probe mount remount_rw umount_mask unshare_user unshare_mount \
      clone_newuser clone3 open_pid1_ns setns ptrace_pid1 \
      process_vm_writev_pid1 pid1_mem kill_outside=$WORKER_PID write_pid1_exe \
      write_self_exe pid1_root pid1_environ proc_sys_write sysrq_trigger \
      sys_write masked=/proc/timer_list keyctl add_key bpf perf_event_open \
      userfaultfd io_uring_setup open_by_handle_at af_vsock af_alg af_packet \
      personality x32_mount x32_unshare int80_mount mknod \
      chroot_escape=$HOST_PATH host_path=$HOST_PATH fd_leak environ dev_tty \
      tiocsti connect=1.1.1.1:80 connect=127.0.0.1:$SCHED_PORT \
      forkbomb memory=1024
RUN cp /bin/probe /bin/probe-suid && chmod 4755 /bin/probe-suid
RUN setsid sleep 4242 & (sleep 4243 &) ; echo daemons-started
USER 1000:1000
RUN /bin/probe-suid euid
DOCKERFILE
build isolation --build-arg "WORKER_PID=$WORKER_PID" --build-arg "HOST_PATH=$HOST_PATH" \
  --build-arg "SCHED_PORT=$SCHED_PORT" "$ctx" ||
  { cat "$FARM_DIR/isolation.log" >&2; fail "isolation build failed"; }
log="$FARM_DIR/isolation.log"
# Mount-related calls are refused by the seccomp filter before the kernel's
# own checks (which would refuse them too: the mounts are locked).
expect "$log" mount EPERM
expect "$log" remount_rw EPERM
expect "$log" umount_mask EPERM
expect "$log" unshare_user EPERM
expect "$log" unshare_mount EPERM
expect "$log" clone_newuser EPERM
expect "$log" clone3 ENOSYS
# pid 1 is not dumpable and belongs to a more privileged user namespace.
expect "$log" open_pid1_ns EACCES
expect "$log" setns EPERM
expect "$log" ptrace_pid1 EPERM
expect "$log" process_vm_writev_pid1 EPERM
expect "$log" pid1_mem EACCES
# The worker's pid does not exist in the step's pid namespace.
expect "$log" kill_outside ESRCH
expect "$log" write_pid1_exe EACCES
expect "$log" write_self_exe ETXTBSY
expect "$log" pid1_root EACCES
expect "$log" pid1_environ EACCES
expect "$log" proc_sys_write EACCES
if [[ -e /proc/sysrq-trigger ]]; then
  expect "$log" sysrq_trigger "EROFS|EACCES"
else
  expect "$log" sysrq_trigger ENOENT # this kernel has no magic SysRq
fi
expect "$log" sys_write EROFS
expect "$log" masked EMPTY
expect "$log" keyctl EPERM
expect "$log" add_key EPERM
expect "$log" bpf EPERM
expect "$log" perf_event_open EPERM
expect "$log" userfaultfd EPERM
expect "$log" io_uring_setup EPERM
expect "$log" open_by_handle_at EPERM
expect "$log" af_vsock EPERM
expect "$log" af_alg EPERM
expect "$log" af_packet EPERM
expect "$log" personality EPERM
expect "$log" x32_mount EPERM
expect "$log" x32_unshare EPERM
# Without IA32 emulation in the kernel int 0x80 faults (SIGSEGV); with it, the
# filter's i386 rules answer EPERM.
expect "$log" int80_mount "SIG11|EPERM"
expect "$log" mknod EPERM
expect "$log" chroot_escape ENOENT
expect "$log" host_path ENOENT
expect "$log" fd_leak 0
expect "$log" environ CLEAN
expect "$log" dev_tty ENXIO
expect "$log" tiocsti ENOTTY
expect "$log" "connect" ENETUNREACH
grep -q "PROBE connect: ECONNREFUSED" "$log" ||
  fail "connecting to 127.0.0.1:$SCHED_PORT (the scheduler, on the host) did not give ECONNREFUSED"
ASSERTED=$((ASSERTED + 1))
expect "$log" forkbomb EAGAIN
expect "$log" memory ENOMEM
# A setuid-root binary run by uid 1000 gains nothing (no_new_privs).
expect "$log" euid "uid=1000 euid=1000"
# Daemons left by a step are gone once it ends.
sleep 0.2
if pgrep -f "sleep 424[23]" >/dev/null; then
  fail "a daemon of a step survived it: $(pgrep -af 'sleep 424[23]')"
fi
ASSERTED=$((ASSERTED + 1))

# ---- 2. --network=default: outbound works, the host's loopback and the
# metadata address do not.
HOST_IP=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1)
[[ -n "$HOST_IP" ]] || fail "this machine has no global IPv4 address for the outbound check"
OUT_PORT=$(free_port)
busybox nc -l -p "$OUT_PORT" </dev/null >/dev/null 2>&1 &
FARM_PIDS+=($!)
wait_for_port "$OUT_PORT" "outbound listener"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
COPY probe /bin/probe
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ARG SCHED_PORT
ARG OUT
RUN --network=default /bin/probe connect=10.0.2.2:$SCHED_PORT
RUN --network=default /bin/probe connect=169.254.169.254:80 af_packet
RUN --network=default /bin/probe connect=$OUT
DOCKERFILE
build network --build-arg "SCHED_PORT=$SCHED_PORT" --build-arg "OUT=$HOST_IP:$OUT_PORT" "$ctx" ||
  { cat "$FARM_DIR/network.log" >&2; fail "network build failed"; }
log="$FARM_DIR/network.log"
mapfile -t results < <(grep -oE "PROBE (connect|af_packet): .*" "$log")
[[ "${results[*]}" == "PROBE connect: EACCES PROBE connect: EACCES PROBE af_packet: EPERM PROBE connect: OK" ]] ||
  fail "network=default results: ${results[*]} (want host loopback EACCES, metadata EACCES, AF_PACKET EPERM, outbound OK)"
ASSERTED=$((ASSERTED + 3))

# ---- 3. Filling the disk: the step is stopped, the worker carries on.
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "i=0; while /bin/busybox dd if=/dev/zero of=/fill$i bs=1M count=8 2>/dev/null; do i=$((i+1)); done; /bin/busybox sleep 30"]
DOCKERFILE
rc=0
build disk "$ctx" || rc=$?
[[ $rc -ne 0 ]] || fail "a step writing past the disk limit succeeded"
grep -q "disk limit: the step wrote more than $DISK_LIMIT bytes" "$FARM_DIR/disk.log" ||
  { cat "$FARM_DIR/disk.log" >&2; fail "the disk-limit stop did not say why"; }
ASSERTED=$((ASSERTED + 1))

# ---- 4. Symlinks in the base image that point outside the root: COPY and
# WORKDIR land inside it, nothing reaches the host directory.
hostdir="$FARM_DIR/hostdir"
mkdir -m 0777 "$hostdir"
echo payload >"$ctx/payload"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "ln", "-s", "$hostdir", "/abs"]
RUN ["/bin/busybox", "ln", "-s", "../../../../../../../..$hostdir", "/rel"]
FROM base
COPY payload /abs/payload
COPY payload /rel/payload2
WORKDIR /abs/wd
RUN ["/bin/busybox", "touch", "from-run"]
DOCKERFILE
build symlinks -t escape/symlinks:latest "$ctx" || { cat "$FARM_DIR/symlinks.log" >&2; fail "symlinks build failed"; }
leaked=$(ls -A "$hostdir")
[[ -z "$leaked" ]] || fail "writes through image symlinks reached the host: $leaked"
mkdir "$FARM_DIR/symlinks-oci"
tar -xf "$FARM_DIR/symlinks.tar" -C "$FARM_DIR/symlinks-oci"
ref=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$FARM_DIR/symlinks-oci/index.json")
umoci unpack --image "$FARM_DIR/symlinks-oci:$ref" "$FARM_DIR/symlinks-bundle" >"$FARM_DIR/umoci.log" 2>&1 ||
  { cat "$FARM_DIR/umoci.log" >&2; fail "umoci could not unpack the symlinks image"; }
rootfs="$FARM_DIR/symlinks-bundle/rootfs"
[[ -f "$rootfs$hostdir/payload" && -f "$rootfs$hostdir/payload2" && -f "$rootfs$hostdir/wd/from-run" ]] ||
  fail "COPY/WORKDIR through image symlinks did not land inside the image: $(cd "$rootfs" && find . | head -20)"
ASSERTED=$((ASSERTED + 2))

# ---- 5. WORKDIR /proc/self/fd/N: no descriptor of the worker or the
# sandbox is reachable as the step's working directory.
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
WORKDIR /proc/self/fd/3
RUN ["/bin/busybox", "sh", "-c", "echo CWD=$(/bin/busybox pwd -P); /bin/busybox ls -a"]
DOCKERFILE
rc=0
build workdir "$ctx" || rc=$?
echo "WORKDIR /proc/self/fd/3: build exit $rc; $(grep -E '^#[0-9]+ (ERROR|[0-9.]+ CWD=)' "$FARM_DIR/workdir.log" | head -n1)"
if [[ $rc -eq 0 ]]; then
  grep -q "CWD=/proc/self/fd/3$" "$FARM_DIR/workdir.log" ||
    fail "WORKDIR /proc/self/fd/3 resolved elsewhere: $(grep CWD= "$FARM_DIR/workdir.log")"
else
  grep -qE "Too many levels of symbolic links|ELOOP|symbolic link" "$FARM_DIR/workdir.log" ||
    { cat "$FARM_DIR/workdir.log" >&2; fail "WORKDIR /proc/self/fd/3 failed for another reason"; }
fi
ASSERTED=$((ASSERTED + 1))

# The worker survived everything above and still builds.
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "echo", "still-alive"]
DOCKERFILE
build alive "$ctx" || { cat "$FARM_DIR/alive.log" >&2; fail "the worker no longer builds"; }
grep -q "still-alive" "$FARM_DIR/alive.log" || fail "the last build's RUN output is missing"
if grep -q "$FARM_DIR" /proc/mounts; then
  fail "mounts left behind: $(grep "$FARM_DIR" /proc/mounts)"
fi
echo "PASS: $ASSERTED escape attempts failed as they must"
