#!/usr/bin/env bash
# Registries through a real farm and a real registry (Debian's docker-registry on
# 127.0.0.1): push with several tags, checked by skopeo and umoci; a build FROM the
# pushed image (pull) with COPY --from an image; two workers with separate work
# dirs sharing one cache repository (the second reports every step cached and
# produces the same digest); SOURCE_DATE_EPOCH builds on different workers that
# give byte-identical layers and the same manifest digest.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/registry.sh"

farm_init
need skopeo
registry_start
farm_start_scheduler
farm_start_worker w1 --cache-repo "$REGISTRY/cache/layers"

ctx="$FARM_DIR/ctx"
make_context "$ctx"
echo "flask==3.0.0" >"$ctx/requirements.txt"
echo "print('v1')" >"$ctx/app.py"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
WORKDIR /app
COPY requirements.txt .
RUN echo "installed $(cat requirements.txt)" > deps.txt
COPY app.py .
CMD ["cat", "/app/app.py"]
DOCKERFILE

build() {  # build NAME ARGS... : a build whose log is $FARM_DIR/NAME.log
  local name=$1 rc=0
  shift
  "$LONGSHORE" build --progress=plain "$@" 2>"$FARM_DIR/$name.log" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$FARM_DIR/$name.log" >&2; fail "build $name exited $rc"; }
}

# 1. Push under two tags of two repositories.
build push -t "$REGISTRY/team/app:1" -t "$REGISTRY/other/app:latest" --push \
  --iidfile "$FARM_DIR/push.iid" "$ctx"
digest=$(cat "$FARM_DIR/push.iid")
for ref in team/app:1 other/app:latest; do
  got=$(skopeo inspect --tls-verify=false "docker://$REGISTRY/$ref" | jq -r .Digest) ||
    fail "skopeo cannot inspect $ref"
  [[ "$got" == "$digest" ]] || fail "$ref has digest $got, the build said $digest"
done
skopeo copy -q --src-tls-verify=false "docker://$REGISTRY/team/app:1" "oci:$FARM_DIR/pulled:1" ||
  fail "skopeo copy from the registry failed"
umoci unpack --image "$FARM_DIR/pulled:1" "$FARM_DIR/bundle" >/dev/null || fail "umoci unpack failed"
[[ $(cat "$FARM_DIR/bundle/rootfs/app/deps.txt") == "installed flask==3.0.0" ]] ||
  fail "pushed image lacks /app/deps.txt"

# 2. A build FROM the pushed image and COPY --from an image.
ctx2="$FARM_DIR/ctx2"
mkdir -p "$ctx2"
cat >"$ctx2/Dockerfile" <<DOCKERFILE
FROM $REGISTRY/team/app:1
RUN echo "derived from \$(cat /app/app.py)" > /app/derived.txt
COPY --from=$REGISTRY/other/app:latest /app/deps.txt /copied-deps.txt
DOCKERFILE
build derived -t "$REGISTRY/team/derived:1" --push "$ctx2"
grep -q "FROM $REGISTRY/team/app:1" "$FARM_DIR/derived.log" || fail "no FROM step shown"
skopeo copy -q --src-tls-verify=false "docker://$REGISTRY/team/derived:1" "oci:$FARM_DIR/derived:1"
umoci unpack --image "$FARM_DIR/derived:1" "$FARM_DIR/bundle2" >/dev/null
[[ $(cat "$FARM_DIR/bundle2/rootfs/app/derived.txt") == "derived from print('v1')" ]] ||
  fail "derived.txt: $(cat "$FARM_DIR/bundle2/rootfs/app/derived.txt")"
cmp -s "$FARM_DIR/bundle2/rootfs/copied-deps.txt" "$FARM_DIR/bundle/rootfs/app/deps.txt" ||
  fail "COPY --from an image copied the wrong file"
base_layers=$(skopeo inspect --tls-verify=false "docker://$REGISTRY/team/app:1" | jq '.Layers | length')
derived_layers=$(skopeo inspect --tls-verify=false "docker://$REGISTRY/team/derived:1" | jq '.Layers | length')
[[ $derived_layers -eq $((base_layers + 2)) ]] ||
  fail "derived image has $derived_layers layers, want the base's $base_layers plus 2"

# 3. A second worker with its own work dir finds every step in the shared cache.
"$LONGSHORE" drain w1 >/dev/null
farm_start_worker w2 --cache-repo "$REGISTRY/cache/layers"
build shared -t "$REGISTRY/team/app:again" --push --iidfile "$FARM_DIR/shared.iid" "$ctx"
grep -q 'building on worker w2' "$FARM_DIR/shared.log" || fail "the build did not go to w2"
cached=$(grep -c ' CACHED$' "$FARM_DIR/shared.log" || true)
[[ "$cached" == 6 ]] || { cat "$FARM_DIR/shared.log" >&2; fail "w2 reported $cached of 6 steps cached"; }
[[ $(cat "$FARM_DIR/shared.iid") == "$digest" ]] ||
  fail "w2's image $(cat "$FARM_DIR/shared.iid") differs from w1's $digest"

# Changing app.py rebuilds only from its COPY on: the dependency steps stay cached.
echo "print('v2')" >"$ctx/app.py"
build edit --output "type=oci,dest=$FARM_DIR/edit.tar" "$ctx"
[[ $(grep -c ' CACHED$' "$FARM_DIR/edit.log") == 5 ]] ||
  { cat "$FARM_DIR/edit.log" >&2; fail "editing app.py should leave 5 steps cached"; }

# 4. Reproducible: --no-cache builds with SOURCE_DATE_EPOCH on two workers.
"$LONGSHORE" undrain w1 >/dev/null
"$LONGSHORE" drain w2 >/dev/null
build sde1 --no-cache --build-arg SOURCE_DATE_EPOCH=1700000000 \
  --iidfile "$FARM_DIR/sde1.iid" --output "type=oci,dest=$FARM_DIR/sde1,tar=false" "$ctx"
"$LONGSHORE" drain w1 >/dev/null
"$LONGSHORE" undrain w2 >/dev/null
build sde2 --no-cache --build-arg SOURCE_DATE_EPOCH=1700000000 \
  --iidfile "$FARM_DIR/sde2.iid" --output "type=oci,dest=$FARM_DIR/sde2,tar=false" "$ctx"
grep -q 'building on worker w1' "$FARM_DIR/sde1.log" || fail "sde1 not on w1"
grep -q 'building on worker w2' "$FARM_DIR/sde2.log" || fail "sde2 not on w2"
grep -q ' CACHED$' "$FARM_DIR/sde2.log" && fail "--no-cache build reported cached steps"
[[ $(cat "$FARM_DIR/sde1.iid") == $(cat "$FARM_DIR/sde2.iid") ]] ||
  fail "SOURCE_DATE_EPOCH builds differ: $(cat "$FARM_DIR/sde1.iid") vs $(cat "$FARM_DIR/sde2.iid")"
diff -r "$FARM_DIR/sde1/blobs" "$FARM_DIR/sde2/blobs" >/dev/null || fail "layer blobs differ"
config=$(jq -r .config.digest "$FARM_DIR/sde1/blobs/sha256/$(jq -r '.manifests[0].digest' "$FARM_DIR/sde1/index.json" | cut -d: -f2)")
jq -e '.created == "2023-11-14T22:13:20Z"' "$FARM_DIR/sde1/blobs/sha256/${config#sha256:}" >/dev/null ||
  fail "config created is not SOURCE_DATE_EPOCH"

# 5. A build's own --cache-to / --cache-from, on workers without --cache-repo.
"$LONGSHORE" drain w1 >/dev/null
"$LONGSHORE" drain w2 >/dev/null
farm_start_worker w3
echo "print('v3')" >"$ctx/app.py"
build cacheto --cache-to "type=registry,ref=$REGISTRY/cache/per-build,mode=max" \
  --iidfile "$FARM_DIR/cacheto.iid" "$ctx"
grep -q 'building on worker w3' "$FARM_DIR/cacheto.log" || fail "cache-to build not on w3"
"$LONGSHORE" drain w3 >/dev/null
farm_start_worker w4
build cachefrom --cache-from "$REGISTRY/cache/per-build" --iidfile "$FARM_DIR/cachefrom.iid" "$ctx"
grep -q 'building on worker w4' "$FARM_DIR/cachefrom.log" || fail "cache-from build not on w4"
[[ $(grep -c ' CACHED$' "$FARM_DIR/cachefrom.log") == 6 ]] ||
  { cat "$FARM_DIR/cachefrom.log" >&2; fail "--cache-from did not serve all 6 steps"; }
[[ $(cat "$FARM_DIR/cacheto.iid") == $(cat "$FARM_DIR/cachefrom.iid") ]] ||
  fail "--cache-from build differs from the --cache-to build"
rc=0
"$LONGSHORE" build --cache-from type=local,src=/tmp/x "$ctx" 2>"$FARM_DIR/badcache.log" || rc=$?
[[ $rc -eq 2 ]] && grep -q 'cache type "local" is not supported' "$FARM_DIR/badcache.log" ||
  { cat "$FARM_DIR/badcache.log" >&2; fail "an unsupported cache type was not refused clearly"; }

# 6. Pushing to a registry that refuses us fails the build clearly.
printf 'FROM scratch\nCOPY busybox /b\n' >"$ctx/Dockerfile"
rc=0
"$LONGSHORE" build -t "127.0.0.1:1/nowhere/app:1" --push "$ctx" 2>"$FARM_DIR/refused.log" || rc=$?
[[ $rc -ne 0 ]] || fail "push to a closed port succeeded"
grep -q '127.0.0.1:1' "$FARM_DIR/refused.log" || { cat "$FARM_DIR/refused.log" >&2; fail "push error does not name the registry"; }
echo "PASS: registry"
