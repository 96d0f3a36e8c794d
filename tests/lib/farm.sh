# Shared by the end-to-end tests: stage Longshore's binaries where an
# unprivileged user can run them, start a scheduler and workers on 127.0.0.1, make
# build contexts from busybox-static, and clean every process and file up.
#
# Usage: source tests/lib/farm.sh; farm_init; farm_start_scheduler;
#        farm_start_worker w1; ... ; (cleanup runs on EXIT)

set -euo pipefail

FARM_USER="${LONGSHORE_TEST_USER:-longshore}"
FARM_PIDS=()

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 ||
    fail "$1 is missing: run ops/bootstrap.sh (package: ${2:-$1})"
}

# Runfiles of the binaries this test depends on (sh_test data).
runfile() {
  local p="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-longshore}/$1"
  [[ -x "$p" ]] || p="$1"
  [[ -x "$p" ]] || fail "missing binary $1 (is it in the test's data?)"
  echo "$p"
}

farm_cleanup() {
  local rc=$?
  set +e
  for pid in "${FARM_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${FARM_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  if [[ $rc -ne 0 && -n "${FARM_DIR:-}" ]]; then
    for log in "$FARM_DIR"/*.log; do
      [[ -f "$log" ]] || continue
      echo "---- $(basename "$log") (last 40 lines)" >&2
      tail -n 40 "$log" >&2
    done
  fi
  # Worker state belongs to the test user's subordinate ids; remove as root.
  [[ -n "${FARM_DIR:-}" ]] && rm -rf "$FARM_DIR"
  farm_remove_cgroup
  exit $rc
}

# farm_delegate_cgroup: a cgroup v2 directory delegated to the test user, as
# systemd's Delegate=yes makes one (the directory and its cgroup.procs,
# cgroup.threads and cgroup.subtree_control); workers started afterwards run
# in it. Sets FARM_CGROUP; removed on exit.
farm_delegate_cgroup() {
  local mount
  mount=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
    /proc/self/mountinfo | head -n1)
  [[ -n "$mount" ]] || fail "no cgroup2 mount: this test needs the unified hierarchy (cgroup v2)"
  FARM_CGROUP="$mount/longshore-test-$$"
  mkdir "$FARM_CGROUP"
  chown "$FARM_USER:" "$FARM_CGROUP" "$FARM_CGROUP/cgroup.procs" \
    "$FARM_CGROUP/cgroup.threads" "$FARM_CGROUP/cgroup.subtree_control"
}

farm_remove_cgroup() {
  [[ -n "${FARM_CGROUP:-}" && -d "$FARM_CGROUP" ]] || return 0
  local d
  for _ in $(seq 50); do
    for d in "$FARM_CGROUP"/*/; do [[ -d "$d" ]] && rmdir "$d" 2>/dev/null; done
    rmdir "$FARM_CGROUP" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "warning: could not remove $FARM_CGROUP" >&2
}

farm_init() {
  need setpriv util-linux
  need newuidmap uidmap
  need umoci
  need jq
  [[ -x /bin/busybox ]] || fail "/bin/busybox is missing: install busybox-static"
  id -u "$FARM_USER" >/dev/null 2>&1 ||
    fail "user $FARM_USER is missing: run ops/bootstrap.sh"
  grep -q "^$FARM_USER:" /etc/subuid ||
    fail "$FARM_USER has no /etc/subuid range: run ops/bootstrap.sh"
  # /root is 0700: the unprivileged worker cannot reach Bazel's output tree.
  FARM_DIR=$(mktemp -d /tmp/longshore-test.XXXXXX)
  chmod 0755 "$FARM_DIR"
  trap farm_cleanup EXIT
  mkdir -p "$FARM_DIR/bin"
  for b in scheduler/longshore-scheduler worker/longshore-worker \
    sandbox/longshore-sandbox client/longshore; do
    install -m 0755 "$(runfile "$b")" "$FARM_DIR/bin/"
  done
  LONGSHORE="$FARM_DIR/bin/longshore"
}

# A free TCP port on 127.0.0.1 (checked against the kernel's listening sockets).
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    if ! grep -qi ":$(printf '%04X' "$port") " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  fail "no free port found"
}

wait_for_port() {
  local port=$1 what=$2
  for _ in $(seq 100); do
    # gRPC may listen on a v4-mapped IPv6 socket: look in both tables.
    if grep -qiE ":$(printf '%04X' "$port") [0-9A-F]+:0000 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  fail "$what did not listen on 127.0.0.1:$port"
}

# farm_start_scheduler [extra flags...]
farm_start_scheduler() {
  SCHED_PORT=$(free_port)
  SCHED_METRICS_PORT=$(free_port)
  mkdir -p "$FARM_DIR/scheduler"
  "$FARM_DIR/bin/longshore-scheduler" --listen "127.0.0.1:$SCHED_PORT" \
    --metrics-listen "127.0.0.1:$SCHED_METRICS_PORT" \
    --state-dir "$FARM_DIR/scheduler" "$@" >"$FARM_DIR/scheduler.log" 2>&1 &
  FARM_PIDS+=($!)
  wait_for_port "$SCHED_PORT" scheduler
  export LONGSHORE_SCHEDULER="127.0.0.1:$SCHED_PORT"
}

# farm_start_worker NAME [extra flags...]: a worker running as the unprivileged
# test user, with its own work dir.
farm_start_worker() {
  local name=$1
  shift
  local work="$FARM_DIR/work-$name"
  mkdir -p "$work"
  chown "$FARM_USER:" "$work"
  local port
  port=$(free_port)
  # In the delegated cgroup when there is one: the shell moves itself there,
  # then becomes the worker.
  local procs=/dev/null
  [[ -n "${FARM_CGROUP:-}" ]] && procs="$FARM_CGROUP/cgroup.procs"
  sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$procs" \
    setpriv --reuid "$FARM_USER" --regid "$FARM_USER" --init-groups \
    env HOME="$work" "$FARM_DIR/bin/longshore-worker" \
    --scheduler "127.0.0.1:$SCHED_PORT" --work-dir "$work" --slots 1 \
    --worker-id "$name" --metrics-listen "127.0.0.1:$port" "$@" \
    >"$FARM_DIR/worker-$name.log" 2>&1 &
  FARM_PIDS+=($!)
  eval "WORKER_METRICS_PORT_${name//-/_}=$port"
  # Registered when the scheduler answered its Register (the worker says so;
  # listing workers is for operators, which the test's caller may not be).
  for _ in $(seq 100); do
    if grep -q "registered with .* as $name " "$FARM_DIR/worker-$name.log"; then
      return 0
    fi
    sleep 0.1
  done
  fail "worker $name did not register"
}

# farm_tls_init: $tls, a directory holding two CAs, farm-ca and rogue-ca
# (CA.pem/CA.key), and the scheduler's certificate from farm-ca for
# 127.0.0.1 (scheduler.pem/.key). make_cert adds more.
farm_tls_init() {
  need openssl openssl
  tls="$FARM_DIR/tls"
  mkdir -p "$tls"
  local ca
  for ca in farm-ca rogue-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=$ca" \
      -keyout "$tls/$ca.key" -out "$tls/$ca.pem" 2>/dev/null || fail "openssl could not make $ca"
  done
  make_cert scheduler farm-ca "/CN=scheduler" "IP:127.0.0.1"
}

# make_cert NAME CA SUBJECT [SAN]: $tls/NAME.pem and NAME.key, signed by
# $tls/CA.pem and CA.key.
make_cert() {
  local name=$1 ca=$2 subject=$3 san=${4:-}
  openssl req -new -newkey rsa:2048 -nodes -subj "$subject" \
    -keyout "$tls/$name.key" -out "$tls/$name.csr" 2>/dev/null
  local ext="$tls/$name.ext"
  echo "basicConstraints=CA:FALSE" >"$ext"
  [[ -n "$san" ]] && echo "subjectAltName=$san" >>"$ext"
  openssl x509 -req -in "$tls/$name.csr" -CA "$tls/$ca.pem" -CAkey "$tls/$ca.key" \
    -CAcreateserial -days 1 -extfile "$ext" -out "$tls/$name.pem" 2>/dev/null ||
    fail "openssl could not sign $name"
}

# make_context DIR: a build context holding Debian's static busybox.
make_context() {
  mkdir -p "$1"
  cp /bin/busybox "$1/busybox"
}

# make_true_context DIR: make_context, with a Dockerfile of one RUN that does
# nothing.
make_true_context() {
  make_context "$1"
  printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' 'RUN ["/bin/busybox", "true"]' \
    >"$1/Dockerfile"
}

# make_marker_context DIR: make_context, with a Dockerfile whose long step
# (it prints "long step", then sleeps NAP seconds, default 6) appends a line
# "ran $CASE" to a cache mount, and a last step that writes to /runs.txt how
# many such lines there are: how many times the long step ran for CASE, across
# every execution on that worker.
make_marker_context() {
  make_context "$1"
  cat >"$1/Dockerfile" <<'DOCKERFILE'
FROM scratch AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM tools
ARG CASE
ARG NAP=6
RUN --mount=type=cache,target=/cache,id=marks \
    echo "ran $CASE" >> /cache/runs.txt && echo "long step" && sleep $NAP
RUN --mount=type=cache,target=/cache,id=marks grep -cx "ran $CASE" /cache/runs.txt > /runs.txt
DOCKERFILE
}
