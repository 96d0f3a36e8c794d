#!/usr/bin/env bash
# RUN --mount through a real farm: a cache mount persists between builds (and is
# not in the image), a bind of the context is read-only unless rw and never lands
# in the layer, a bind from another stage sees that stage's files, a tmpfs
# leaves nothing behind; and a step sees the expected user, hostname and env.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1

ctx="$FARM_DIR/ctx"
make_context "$ctx"
echo "from-context" >"$ctx/input.txt"

build() {  # build NAME ARGS...
  local name=$1 rc=0
  shift
  "$LONGSHORE" build --progress=plain "$@" 2>"$FARM_DIR/$name.log" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$FARM_DIR/$name.log" >&2; fail "build $name exited $rc"; }
}

cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo "tool-v1" > /tool.txt

FROM tools
ARG RUN_ID
RUN --mount=type=cache,target=/cache,id=pkgs \
    echo "run $RUN_ID" >> /cache/runs.txt && cat /cache/runs.txt > /seen-runs.txt
RUN --mount=type=bind,target=/src \
    cat /src/input.txt > /from-bind.txt && \
    (touch /src/written 2>/dev/null && echo writable || echo read-only) > /bind-mode.txt
RUN --mount=type=bind,from=tools,source=/tool.txt,target=/mnt/tool.txt cat /mnt/tool.txt > /from-stage.txt
RUN --mount=type=tmpfs,target=/scratch echo temp > /scratch/t && ls /scratch > /tmpfs-list.txt
RUN --mount=type=secret,id=token,required=true \
    sha256sum /run/secrets/token | cut -d' ' -f1 > /secret-sum.txt && \
    stat -c %a /run/secrets/token > /secret-mode.txt
RUN echo "host=$(hostname) user=$(id -u):$(id -g) env=$(env | sort | tr '\n' ' ')" > /whoami.txt
RUN <<EOF
echo "heredoc shell line 1" > /heredoc.txt
echo "line 2 in $(pwd)" >> /heredoc.txt
EOF
RUN <<"SCRIPT"
#!/bin/sh
echo "script run as $0" > /script.txt
SCRIPT
DOCKERFILE

secret="s3cr3t-$RANDOM-$RANDOM"
printf '%s' "$secret" >"$FARM_DIR/token"
build one --secret "id=token,src=$FARM_DIR/token" --build-arg RUN_ID=1 --output "type=oci,dest=$FARM_DIR/one,tar=false" "$ctx"
build two -t mounts:two --secret "id=token,src=$FARM_DIR/token" --build-arg RUN_ID=2 --output "type=oci,dest=$FARM_DIR/two,tar=false" "$ctx"
umoci unpack --image "$FARM_DIR/two:two" "$FARM_DIR/b" >/dev/null || fail "umoci unpack failed"
root="$FARM_DIR/b/rootfs"

# The cache mount kept run 1's line for run 2, and is not part of the image.
[[ "$(cat "$root/seen-runs.txt")" == $'run 1\nrun 2' ]] ||
  fail "cache mount did not persist: $(cat "$root/seen-runs.txt")"
[[ ! -e "$root/cache/runs.txt" ]] || fail "the cache mount's files landed in the image"
# The context bind: readable, read-only, not in the layer.
[[ "$(cat "$root/from-bind.txt")" == from-context ]] || fail "bind of the context not readable"
[[ "$(cat "$root/bind-mode.txt")" == read-only ]] || fail "bind of the context was writable"
[[ ! -e "$root/src/input.txt" ]] || fail "the bind's files landed in the image"
[[ "$(cat "$root/from-stage.txt")" == tool-v1 ]] || fail "bind from another stage failed"
[[ "$(cat "$root/tmpfs-list.txt")" == t ]] || fail "tmpfs mount not usable"
[[ ! -e "$root/scratch/t" ]] || fail "the tmpfs's files landed in the image"
# The secret reached the step (read-only, 0400), is not in the image, and was
# never written to the scheduler's journal.
[[ "$(cat "$root/secret-sum.txt")" == "$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)" ]] ||
  fail "the step did not see the secret"
[[ "$(cat "$root/secret-mode.txt")" == 400 ]] || fail "secret mode $(cat "$root/secret-mode.txt")"
[[ ! -e "$root/run/secrets/token" ]] || fail "the secret landed in the image"
if grep -rqa -- "$secret" "$FARM_DIR/scheduler" "$FARM_DIR/work-w1" 2>/dev/null; then
  fail "the secret was written to disk by the scheduler or the worker"
fi
# A required secret that was not given is a clear error.
rc=0
"$LONGSHORE" build --build-arg RUN_ID=3 "$ctx" 2>"$FARM_DIR/nosecret.log" || rc=$?
[[ $rc -ne 0 ]] || fail "a build without its required secret succeeded"
grep -q 'secret token was not provided' "$FARM_DIR/nosecret.log" ||
  { cat "$FARM_DIR/nosecret.log" >&2; fail "missing secret error unclear"; }

# Heredocs: a shell body runs as a script; a "#!" body is an executable file.
[[ "$(cat "$root/heredoc.txt")" == $'heredoc shell line 1\nline 2 in /' ]] ||
  fail "RUN <<EOF: $(cat "$root/heredoc.txt")"
[[ "$(cat "$root/script.txt")" == "script run as /dev/pipes/SCRIPT" ]] ||
  fail "RUN <<SCRIPT with #!: $(cat "$root/script.txt" 2>&1)"
[[ ! -e "$root/dev/pipes/SCRIPT" ]] || fail "the heredoc script landed in the image"

# The step's identity: root in the image, a container-like hostname, and an
# environment that holds the image's variables and nothing of the worker's.
who=$(cat "$root/whoami.txt")
[[ "$who" =~ host=[0-9a-f]{12}\  ]] || fail "hostname is not a 12-hex id: $who"
[[ "$who" == *"user=0:0"* ]] || fail "step did not run as image root: $who"
[[ "$who" == *"PATH="* ]] || fail "step env lacks PATH: $who"
for leak in LONGSHORE_ HOME=/tmp TEST_SRCDIR; do
  [[ "$who" != *"$leak"* ]] || fail "the worker's environment leaked into the step: $who"
done

# A bad mount is a clear error naming it.
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN --mount=type=bind,source=nope,target=/x ["/bin/busybox","true"]\n' >"$ctx/Dockerfile"
rc=0
"$LONGSHORE" build "$ctx" 2>"$FARM_DIR/bad.log" || rc=$?
[[ $rc -ne 0 ]] || fail "a bind of a missing source succeeded"
grep -q 'RUN --mount=type=bind,target=/x: source nope' "$FARM_DIR/bad.log" ||
  { cat "$FARM_DIR/bad.log" >&2; fail "bad mount error does not name the mount"; }
echo "PASS: run mounts"
