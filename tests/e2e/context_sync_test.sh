#!/usr/bin/env bash
# Content-addressed context sync: the scheduler receives only the contents it
# lacks (its byte counter says how many), also from a fresh checkout where
# every mtime and inode is new; an edit that keeps the size and puts the old
# mtime back is still sent; the scheduler refuses bytes that do not hash to
# their name; concurrent builds sharing new files both build; workers fetch
# only what they lack; the whole-tar upload still works.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"
need curl

farm_init
PROBE=$(runfile tests/tools/rpc_probe)
farm_start_scheduler
farm_start_worker w1 --slots 2
export XDG_CACHE_HOME="$FARM_DIR/cache"

received() {
  curl -sf "http://127.0.0.1:$SCHED_METRICS_PORT/metrics" |
    awk '$1 == "longshore_scheduler_context_bytes_received_total" {printf "%d\n", $2}'
}
worker_fetched() {  # bytes the worker fetched for its last manifest build
  grep -o 'context files fetched: [0-9]*' "$FARM_DIR/worker-w1.log" | tail -1 | awk '{print $4}'
}
# build NAME DIR [args...]: builds, prints the step output to $FARM_DIR/NAME.out.
build() {
  local name=$1 dir=$2
  shift 2
  "$LONGSHORE" build --progress=plain "$@" "$dir" >"$FARM_DIR/$name.out" 2>&1 ||
    fail "build $name failed: $(tail -5 "$FARM_DIR/$name.out")"
}

ctx="$FARM_DIR/ctx"
make_context "$ctx"
mkdir -p "$ctx/app/lib" "$ctx/ignored"
for i in $(seq 1 200); do head -c 8192 /dev/urandom >"$ctx/app/lib/f$i"; done
head -c 3000000 /dev/urandom >"$ctx/app/big"
head -c 2000000 /dev/urandom >"$ctx/ignored/huge"
echo ignored >"$ctx/.dockerignore"
printf 'v1\n' >"$ctx/app/marker"
ln -s lib/f1 "$ctx/app/link"
printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' 'COPY app /app' \
  'RUN ["/bin/busybox", "sh", "-c", "echo marker=$(cat /app/marker) link=$(/bin/busybox readlink /app/link) files=$(ls /app/lib | /bin/busybox wc -l)"]' \
  >"$ctx/Dockerfile"
total=$(du -sb --exclude=ignored "$ctx" | cut -f1)

before=$(received)
build first "$ctx"
first=$(($(received) - before))
grep -q "marker=v1 link=lib/f1 files=200" "$FARM_DIR/first.out" ||
  fail "the first build did not see the context: $(grep marker= "$FARM_DIR/first.out")"
[[ $first -ge 4000000 && $first -lt $((total + 200000)) ]] ||
  fail "the first build sent $first bytes for a context of $total (.dockerignore'd 2 MB left out)"
echo "first build: $first bytes received for $total bytes of context"

# One file edited: only it (and the manifest chunk naming it) goes.
sleep 1.1  # so the index trusts what it hashed
printf 'v2\n' >"$ctx/app/marker"
before=$(received)
build edit "$ctx"
edit=$(($(received) - before))
grep -q "marker=v2" "$FARM_DIR/edit.out" || fail "the edit was not built: $(grep marker= "$FARM_DIR/edit.out")"
[[ $edit -lt 65536 ]] || fail "one edited file sent $edit bytes"
fetched=$(worker_fetched)
[[ -n $fetched && $fetched -lt 65536 ]] || fail "the worker fetched $fetched bytes for one edited file"
echo "one file edited: $edit bytes received, the worker fetched $fetched"

# A fresh checkout: a copy (new inodes, new mtimes), then every mtime touched.
fresh="$FARM_DIR/fresh"
cp -r "$ctx" "$fresh"
find "$fresh" -exec touch -h -d "2030-01-02 03:04:05" {} +
before=$(received)
build fresh "$fresh"
fresh_bytes=$(($(received) - before))
# Cache keys come from the files' contents: the same tree, newly checked out,
# hits every step (COPY busybox, COPY app, RUN).
[[ $(grep -c ' CACHED$' "$FARM_DIR/fresh.out" || true) -eq 3 ]] ||
  fail "the fresh checkout of an unchanged tree missed the cache: $(grep '^#' "$FARM_DIR/fresh.out")"
[[ $fresh_bytes -lt 65536 ]] || fail "a fresh checkout of an unchanged tree sent $fresh_bytes bytes"
echo "fresh checkout: $fresh_bytes bytes received"

# Changed behind the index's back: the same size, the old mtime put back.
sleep 1.1
cp -p "$ctx/app/marker" "$FARM_DIR/marker.ref"
printf 'v3\n' >"$ctx/app/marker"
touch -r "$FARM_DIR/marker.ref" "$ctx/app/marker"
build behind "$ctx"
grep -q "marker=v3" "$FARM_DIR/behind.out" ||
  fail "an edit keeping size and mtime was missed: $(grep marker= "$FARM_DIR/behind.out")"
echo "an edit keeping size and mtime: built"

# The scheduler checks every upload against its digest.
bad=$("$PROBE" "$LONGSHORE_SCHEDULER" upload-content "sha256:$(printf 'good' | sha256sum | cut -d' ' -f1)" "bad!" || true)
grep -q "INVALID_ARGUMENT: .*arrived with digest" <<<"$bad" || fail "mismatched bytes were accepted: $bad"
echo "bytes under the wrong digest: $bad"

# Concurrent builds sharing 300 new files.
shared="$FARM_DIR/shared-src"
mkdir -p "$shared"
for i in $(seq 1 300); do head -c 4096 /dev/urandom >"$shared/s$i"; done
for side in a b; do
  make_context "$FARM_DIR/c-$side"
  cp -r "$shared" "$FARM_DIR/c-$side/shared"
  printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' 'COPY shared /shared' \
    "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo side=$side n=\$(ls /shared | /bin/busybox wc -l) sum=\$(cat /shared/* | /bin/busybox md5sum)\"]" \
    >"$FARM_DIR/c-$side/Dockerfile"
done
want_sum=$(cat $(ls "$shared"/* | sort) | md5sum | cut -d' ' -f1)
before=$(received)
"$LONGSHORE" build --progress=plain "$FARM_DIR/c-a" >"$FARM_DIR/ca.out" 2>&1 &
pa=$!
"$LONGSHORE" build --progress=plain "$FARM_DIR/c-b" >"$FARM_DIR/cb.out" 2>&1 &
pb=$!
wait $pa || fail "concurrent build a failed: $(tail -5 "$FARM_DIR/ca.out")"
wait $pb || fail "concurrent build b failed: $(tail -5 "$FARM_DIR/cb.out")"
both=$(($(received) - before))
for side in a b; do
  grep -q "side=$side n=300" "$FARM_DIR/c$side.out" || fail "build $side did not see the shared files"
done
# /shared/* sorts like ls; the sum is over the same bytes in both.
grep -q "sum=$want_sum" "$FARM_DIR/ca.out" && grep -q "sum=$want_sum" "$FARM_DIR/cb.out" ||
  fail "the shared files arrived altered"
# Both may upload a file neither had yet (the store takes either copy), but
# never more than once each.
[[ $both -lt $((2 * 300 * 4096 + 131072)) ]] || fail "concurrent builds sharing files sent $both bytes"
echo "concurrent builds sharing 1.2 MB of new files: both built, $both bytes received"
make_context "$FARM_DIR/c-c"
cp -r "$shared" "$FARM_DIR/c-c/shared"
cp "$FARM_DIR/c-a/Dockerfile" "$FARM_DIR/c-c/Dockerfile"
echo c >"$FARM_DIR/c-c/third"
before=$(received)
build third "$FARM_DIR/c-c"
third=$(($(received) - before))
[[ $third -lt 65536 ]] || fail "a third build of the shared files sent $third bytes"
echo "a third context with the same files: $third bytes received"

# The whole-tar upload still builds.
printf 'v4\n' >"$ctx/app/marker"
LONGSHORE_CONTEXT_UPLOAD=tar build tar "$ctx"
grep -q "marker=v4" "$FARM_DIR/tar.out" || fail "the tar upload did not build the edit"
# ...and its steps' cache keys are those of the same files synced.
build synced "$ctx"
[[ $(grep -c ' CACHED$' "$FARM_DIR/synced.out" || true) -eq 3 ]] ||
  fail "the synced context missed the cache the tar upload filled: $(grep '^#' "$FARM_DIR/synced.out")"
echo "PASS: context sync"
