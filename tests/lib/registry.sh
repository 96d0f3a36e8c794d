# shellcheck shell=bash
# A real OCI registry for tests: Debian's docker-registry (distribution 2.8) on
# 127.0.0.1, with filesystem storage in a temp dir and optional htpasswd
# (Basic) auth.
#
# Usage:
#   source tests/lib/farm.sh; source tests/lib/registry.sh
#   registry_start                 # anonymous
#   registry_start ci s3cret       # Basic auth: user ci, password s3cret
#   skopeo inspect --tls-verify=false "docker://$REGISTRY/team/app:1"
#   registry_stop                  # also runs on EXIT
#
# After registry_start: REGISTRY (127.0.0.1:PORT), REGISTRY_PORT,
# REGISTRY_DIR (config.yml, data/, registry.log), REGISTRY_LOG, REGISTRY_PID.
# Source it after tests/lib/farm.sh: the registry lives in $FARM_DIR and
# farm_cleanup stops it with the farm.

REGISTRY_BIN="${REGISTRY_BIN:-/usr/bin/docker-registry}"

_registry_fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# A free TCP port on 127.0.0.1: farm.sh's free_port (source farm.sh first).
_registry_free_port() {
  declare -F free_port >/dev/null || _registry_fail "source tests/lib/farm.sh before registry.sh"
  free_port
}

# registry_htpasswd USER PASSWORD: one bcrypt htpasswd line. htpasswd -B
# (apache2-utils) when installed, else perl's crypt(), which on Debian is
# libxcrypt and makes $2b$ bcrypt hashes that distribution accepts.
registry_htpasswd() {
  local user=$1 password=$2
  if command -v htpasswd >/dev/null 2>&1; then
    htpasswd -Bbn "$user" "$password" | head -n 1
    return
  fi
  command -v perl >/dev/null 2>&1 ||
    _registry_fail "need htpasswd (apache2-utils) or perl to make a bcrypt hash"
  # A random 22-character bcrypt salt; its last character carries 2 bits, so it
  # is one of the four that libxcrypt accepts there.
  local hash
  hash=$(perl -e '
    my @c = (".", "/", "A" .. "Z", "a" .. "z", "0" .. "9");
    my @last = (".", "O", "e", "u");
    my $salt = join("", map { $c[int(rand(@c))] } 1 .. 21) . $last[int(rand(4))];
    print crypt($ARGV[0], "\$2b\$10\$" . $salt);' "$password")
  [[ $hash == "\$2b\$"* ]] || _registry_fail "perl's crypt() made no bcrypt hash (is libcrypt1 xcrypt?)"
  echo "$user:$hash"
}

# registry_start [USER PASSWORD]
registry_start() {
  [[ -x $REGISTRY_BIN ]] ||
    _registry_fail "$REGISTRY_BIN is missing: install docker-registry (ops/bootstrap.sh)"
  command -v curl >/dev/null 2>&1 || _registry_fail "curl is missing"
  [[ -z ${REGISTRY_PID:-} ]] || _registry_fail "registry_start: one is already running ($REGISTRY)"
  if [[ -n ${FARM_DIR:-} ]]; then
    REGISTRY_DIR=$(mktemp -d "$FARM_DIR/registry.XXXXXX")
  else
    REGISTRY_DIR=$(mktemp -d /tmp/longshore-registry.XXXXXX)
  fi
  # Clean up on exit from here on (farm_cleanup does it when the farm is
  # loaded: the dir is inside $FARM_DIR and the pid joins FARM_PIDS).
  if ! declare -p FARM_PIDS >/dev/null 2>&1 && [[ -z $(trap -p EXIT) ]]; then
    trap registry_stop EXIT
  fi
  REGISTRY_PORT=$(_registry_free_port)
  REGISTRY="127.0.0.1:$REGISTRY_PORT"
  REGISTRY_LOG="$REGISTRY_DIR/registry.log"
  mkdir -p "$REGISTRY_DIR/data"
  cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
  secret: longshore-test-secret
EOF
  if [[ $# -ge 2 ]]; then
    registry_htpasswd "$1" "$2" >"$REGISTRY_DIR/htpasswd"
    cat >>"$REGISTRY_DIR/config.yml" <<EOF
auth:
  htpasswd:
    realm: longshore-test
    path: $REGISTRY_DIR/htpasswd
EOF
  fi
  "$REGISTRY_BIN" serve "$REGISTRY_DIR/config.yml" >"$REGISTRY_LOG" 2>&1 &
  REGISTRY_PID=$!
  if declare -p FARM_PIDS >/dev/null 2>&1; then
    FARM_PIDS+=("$REGISTRY_PID")
  fi
  local code
  for _ in $(seq 150); do
    # 200 when anonymous, 401 with auth: either way it serves the API.
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/" || true)
    if [[ $code == 200 || $code == 401 ]]; then
      return 0
    fi
    kill -0 "$REGISTRY_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "---- registry.log" >&2
  tail -n 40 "$REGISTRY_LOG" >&2 || true
  _registry_fail "docker-registry did not answer on http://$REGISTRY/v2/"
}

registry_stop() {
  local rc=$?
  if [[ -n ${REGISTRY_PID:-} ]]; then
    kill -TERM "$REGISTRY_PID" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$REGISTRY_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
    REGISTRY_PID=
  fi
  if [[ -n ${REGISTRY_DIR:-} && -z ${REGISTRY_KEEP:-} ]]; then
    rm -rf "$REGISTRY_DIR"
    REGISTRY_DIR=
  fi
  return $rc
}
