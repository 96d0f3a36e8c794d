#!/usr/bin/env bash
# `docker buildx build` flags a CI job relies on, through a real farm and a
# real registry: -f - (the Dockerfile on stdin) and CONTEXT - (a tar, plain or
# gzipped, or a lone Dockerfile on stdin); --metadata-file with buildx's keys,
# checked against the registry; --pull picking up a moved base tag; --network
# none and host; --allow network.host and security.insecure, granted only by
# a worker whose policy permits them; -o type=local owned by the (unprivileged)
# caller, type=tar, and dest=- on stdout; --detach.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/registry.sh"

farm_init
need skopeo
need tar
registry_start
farm_start_scheduler
# w1: the default policy. w2: grants host network and insecure steps.
farm_start_worker w1 --labels policy=strict
farm_start_worker w2 --labels policy=open --allow-host-network --allow-insecure

build() {  # build NAME ARGS...: a build whose log is $FARM_DIR/NAME.log
  local name=$1 rc=0
  shift
  "$LONGSHORE" build --progress=plain "$@" 2>"$FARM_DIR/$name.log" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$FARM_DIR/$name.log" >&2; fail "build $name exited $rc"; }
}
build_fails() {  # build_fails NAME WANT ARGS...: exit 1 and WANT in the log
  local name=$1 want=$2 rc=0
  shift 2
  "$LONGSHORE" build --progress=plain "$@" >"$FARM_DIR/$name.log" 2>&1 || rc=$?
  [[ $rc -ne 0 ]] || { cat "$FARM_DIR/$name.log" >&2; fail "build $name succeeded"; }
  grep -qF -- "$want" "$FARM_DIR/$name.log" ||
    { cat "$FARM_DIR/$name.log" >&2; fail "build $name: no \"$want\" in its output"; }
}

ctx="$FARM_DIR/ctx"
make_context "$ctx"
echo "from the context" >"$ctx/data.txt"
# The context's own Dockerfile would fail: -f - must not read it.
printf 'FROM scratch\nRUN false\n' >"$ctx/Dockerfile"
mkdir -p "$ctx/sub"
cat >"$ctx/sub/Dockerfile.alt" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
COPY data.txt /alt.txt
DOCKERFILE

# 1. -f -: the Dockerfile from stdin, the context from the directory.
build stdin-df -o "type=local,dest=$FARM_DIR/out1" -f - "$ctx" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
COPY data.txt /from-stdin.txt
DOCKERFILE
[[ "$(cat "$FARM_DIR/out1/from-stdin.txt")" == "from the context" ]] ||
  fail "-f -: /from-stdin.txt missing or wrong"

# 2. CONTEXT -: a tar on stdin, its Dockerfile inside; -f names a path in it.
tar -C "$ctx" -cf "$FARM_DIR/ctx.tar" busybox data.txt sub
build stdin-tar -o "type=local,dest=$FARM_DIR/out2" -f sub/Dockerfile.alt - \
  <"$FARM_DIR/ctx.tar"
[[ "$(cat "$FARM_DIR/out2/alt.txt")" == "from the context" ]] ||
  fail "context -: /alt.txt missing or wrong"
# ...gzipped, with the Dockerfile at the root.
cp "$ctx/sub/Dockerfile.alt" "$FARM_DIR/Dockerfile"
tar -C "$ctx" -czf "$FARM_DIR/ctx.tgz" busybox data.txt -C "$FARM_DIR" Dockerfile
build stdin-tgz -o "type=local,dest=$FARM_DIR/out3" - <"$FARM_DIR/ctx.tgz"
[[ -f "$FARM_DIR/out3/alt.txt" ]] || fail "gzipped context -: /alt.txt missing"
# ...a tar without the Dockerfile it names is an error saying so.
build_fails stdin-nodf "has no Dockerfile.missing" -f Dockerfile.missing - \
  <"$FARM_DIR/ctx.tar"

# 3. Base images in the registry: v1, then --metadata-file on a push.
base="$FARM_DIR/base"
make_context "$base"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nRUN echo v1 > /version\n' \
  >"$base/Dockerfile"
build base1 -t "$REGISTRY/base:1" --push "$base"
build md -t "$REGISTRY/app:1" -t "$REGISTRY/app:latest" --push \
  --metadata-file "$FARM_DIR/md.json" - <<DOCKERFILE
FROM $REGISTRY/base:1
RUN cat /version > /seen
DOCKERFILE
md="$FARM_DIR/md.json"
jq -e . "$md" >/dev/null || fail "--metadata-file is not JSON: $(cat "$md")"
reg_digest=$(skopeo inspect --tls-verify=false "docker://$REGISTRY/app:1" | jq -r .Digest)
[[ "$(jq -r '."containerimage.digest"' "$md")" == "$reg_digest" ]] ||
  fail "containerimage.digest $(jq -r '."containerimage.digest"' "$md"), registry has $reg_digest"
reg_config=$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY/app:1" | jq -r .config.digest)
[[ "$(jq -r '."containerimage.config.digest"' "$md")" == "$reg_config" ]] ||
  fail "containerimage.config.digest differs from the pushed manifest's ($reg_config)"
[[ "$(jq -r '."image.name"' "$md")" == "$REGISTRY/app:1,$REGISTRY/app:latest" ]] ||
  fail "image.name: $(jq -r '."image.name"' "$md")"
id=$(jq -r '."longshore.build.id"' "$md")
"$LONGSHORE" builds | grep -q "^$id .*succeeded" || fail "longshore.build.id $id is not a succeeded build"

# 4. --pull: after the base tag moves, the next build uses what it now names.
sed -i 's/echo v1/echo v2/' "$base/Dockerfile"
build base2 -t "$REGISTRY/base:1" --push "$base"
pull_df="FROM $REGISTRY/base:1
RUN cat /version > /seen"
build pull --pull -o "type=local,dest=$FARM_DIR/pulled" - <<<"$pull_df"
[[ "$(cat "$FARM_DIR/pulled/seen")" == "v2" ]] ||
  fail "--pull built on $(cat "$FARM_DIR/pulled/seen"), not the moved tag's v2"

# 5. --network: none leaves only loopback; default (slirp4netns) adds an
# interface; host needs a worker that grants it.
net_df="FROM $REGISTRY/base:1
ARG CASE
RUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ' > /ifaces"
build net-none --network none --worker-label policy=strict --build-arg CASE=none \
  -o "type=local,dest=$FARM_DIR/net-none" - <<<"$net_df"
[[ "$(cat "$FARM_DIR/net-none/ifaces")" == "lo " ]] ||
  fail "--network none: interfaces $(cat "$FARM_DIR/net-none/ifaces")"
build net-default --network default --worker-label policy=strict --build-arg CASE=default \
  -o "type=local,dest=$FARM_DIR/net-default" - <<<"$net_df"
[[ "$(cat "$FARM_DIR/net-default/ifaces")" != "lo " ]] ||
  fail "--network default: only loopback"
build_fails net-host-denied "--allow-host-network" --network host \
  --worker-label policy=strict - <<<"$net_df"
build net-host --network host --worker-label policy=open --build-arg CASE=host \
  -o "type=local,dest=$FARM_DIR/net-host" - <<<"$net_df"
host_ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ')
[[ "$(cat "$FARM_DIR/net-host/ifaces")" == "$host_ifaces" ]] ||
  fail "--network host: step saw '$(cat "$FARM_DIR/net-host/ifaces")', host has '$host_ifaces'"

# 6. --allow: RUN --network=host and --security=insecure need the build's
# entitlement and the worker's grant.
host_df="FROM $REGISTRY/base:1
RUN --network=host tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ' > /ifaces"
build_fails allow-missing "--allow network.host" --worker-label policy=open - <<<"$host_df"
build_fails allow-denied "--allow-host-network" --allow network.host \
  --worker-label policy=strict - <<<"$host_df"
build allow-host --allow network.host --worker-label policy=open \
  -o "type=local,dest=$FARM_DIR/allow-host" - <<<"$host_df"
[[ "$(cat "$FARM_DIR/allow-host/ifaces")" == "$host_ifaces" ]] ||
  fail "--allow network.host: step saw '$(cat "$FARM_DIR/allow-host/ifaces")'"
caps_df="FROM $REGISTRY/base:1
RUN grep CapEff /proc/self/status > /default-caps
RUN --security=insecure grep CapEff /proc/self/status > /insecure-caps"
build_fails insecure-missing "--allow security.insecure" --worker-label policy=open - <<<"$caps_df"
build_fails insecure-denied "--allow-insecure" --allow security.insecure \
  --worker-label policy=strict - <<<"$caps_df"
build insecure --allow security.insecure --worker-label policy=open \
  -o "type=local,dest=$FARM_DIR/caps" - <<<"$caps_df"
default_caps=$(awk '{print $2}' "$FARM_DIR/caps/default-caps")
insecure_caps=$(awk '{print $2}' "$FARM_DIR/caps/insecure-caps")
[[ "$default_caps" == "00000000a80425fb" ]] || fail "default step capabilities $default_caps"
(( 16#$insecure_caps > 16#$default_caps )) && (( (16#$insecure_caps & 16#$default_caps) == 16#$default_caps )) ||
  fail "insecure step capabilities $insecure_caps are not a superset of $default_caps"

# 7. -o type=local run by an unprivileged user: every file is the caller's,
# whatever the image says; type=tar and dest=- give the same files.
own="$FARM_DIR/own"
make_context "$own"
cat >"$own/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /data && echo owned > /data/f && /bin/busybox chown -R 1234:1234 /data"]
DOCKERFILE
chmod -R a+rX "$own"
mkdir -p "$FARM_DIR/as-user"
chown "$FARM_USER:" "$FARM_DIR/as-user"
rc=0
setpriv --reuid "$FARM_USER" --regid "$FARM_USER" --init-groups \
  env HOME="$FARM_DIR/as-user" LONGSHORE_SCHEDULER="$LONGSHORE_SCHEDULER" \
  "$LONGSHORE" build --progress=plain -o "type=local,dest=$FARM_DIR/as-user/rootfs" \
  "$own" 2>"$FARM_DIR/local-user.log" || rc=$?
[[ $rc -eq 0 ]] || { cat "$FARM_DIR/local-user.log" >&2; fail "type=local as $FARM_USER exited $rc"; }
[[ "$(cat "$FARM_DIR/as-user/rootfs/data/f")" == "owned" ]] || fail "type=local: /data/f missing"
uid=$(id -u "$FARM_USER")
others=$(find "$FARM_DIR/as-user/rootfs" ! -uid "$uid" | head -n 3)
[[ -z "$others" ]] || fail "type=local: not owned by the caller ($uid): $others"
grep -q "wrote filesystem to $FARM_DIR/as-user/rootfs" "$FARM_DIR/local-user.log" ||
  fail "type=local: no line saying where the output went"
build tar-file -o "type=tar,dest=$FARM_DIR/fs.tar" "$own"
tar -tf "$FARM_DIR/fs.tar" | grep -qx "data/f" || fail "type=tar: no data/f in $(tar -tf "$FARM_DIR/fs.tar")"
"$LONGSHORE" build --progress=plain -o - "$own" 2>"$FARM_DIR/stdout.log" >"$FARM_DIR/stdout.tar" ||
  { cat "$FARM_DIR/stdout.log" >&2; fail "-o - exited non-zero"; }
cmp -s "$FARM_DIR/fs.tar" "$FARM_DIR/stdout.tar" || fail "-o - differs from type=tar's file"
[[ "$(tar -xOf "$FARM_DIR/stdout.tar" data/f)" == "owned" ]] || fail "-o -: data/f wrong"

# 8. --detach: the id at once, the build goes on without the client.
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "2"]\n' >"$own/Dockerfile.slow"
id=$("$LONGSHORE" build --detach -f "$own/Dockerfile.slow" "$own" 2>"$FARM_DIR/detach.log") ||
  { cat "$FARM_DIR/detach.log" >&2; fail "--detach exited non-zero"; }
[[ "$id" =~ ^[A-Za-z0-9-]+$ ]] || fail "--detach printed '$id', not a build id"
"$LONGSHORE" builds | grep -qE "^$id +(queued|running)" || fail "the detached build is not queued or running"
for _ in $(seq 100); do
  "$LONGSHORE" builds | grep -qE "^$id +succeeded" && break
  sleep 0.2
done
"$LONGSHORE" builds | grep -qE "^$id +succeeded" || fail "the detached build did not succeed: $("$LONGSHORE" builds)"
build_fails detach-local "--detach" --detach -o "type=local,dest=$FARM_DIR/x" "$own"

echo "PASS: buildx flags"
