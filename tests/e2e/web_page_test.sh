#!/usr/bin/env bash
# The scheduler's web page in a real browser: Debian's chromium, headless,
# driven by playwright-core (tests/web/web_page_test.js). Two submitters and an
# operator hold tokens; alice's build runs while the page watches its step
# finish and its output arrive live; a finished build of hers shows its
# timeline; bob's build is neither listed nor readable for her. `longshore
# build` prints each build's link, taken from the scheduler's --web-url.
# Screenshots of every page go to $TEST_UNDECLARED_OUTPUTS_DIR.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

need node nodejs
need curl
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || fail "node $(node --version) is too old: playwright-core needs Node.js 20 or later"
[[ -x /usr/bin/chromium ]] || fail "/usr/bin/chromium is missing: run ops/bootstrap.sh (package: chromium)"
# The driver sits beside the script in the repository, with the
# node_modules ops/bootstrap.sh installs there (npm ci).
driver="${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-longshore}/tests/web/web_page_test.js"
[[ -f "$driver" ]] || fail "tests/web/web_page_test.js is missing from the test's data"
driver=$(readlink -f "$driver")
node -e "require.resolve('playwright-core', {paths: ['$(dirname "$driver")']})" 2>/dev/null ||
  fail "playwright-core is not installed in $(dirname "$driver")/node_modules: run ops/bootstrap.sh (npm ci in tests/web)"

farm_init
tokens="$FARM_DIR/tokens"
: >"$tokens"
mint() {
  "$LONGSHORE" token "$1" --role "$2" >"$FARM_DIR/$1.minted" || fail "longshore token $1 failed"
  head -1 "$FARM_DIR/$1.minted" >"$FARM_DIR/$1.token"
  tail -1 "$FARM_DIR/$1.minted" >>"$tokens"
  chown "$FARM_USER:" "$FARM_DIR/$1.token"
  chmod 600 "$FARM_DIR/$1.token"
}
mint alice submitter
mint bob submitter
mint ops operator
mint pool worker

WEB_PORT=$(free_port)
WEB_URL="http://127.0.0.1:$WEB_PORT"
farm_start_scheduler --tokens-file "$tokens" --web-listen "127.0.0.1:$WEB_PORT"
wait_for_port "$WEB_PORT" "the web page"
farm_start_worker w1 --token-file "$FARM_DIR/pool.token" --labels team=web

as() {
  local who=$1
  shift
  LONGSHORE_TOKEN=$(cat "$FARM_DIR/$who.token") "$@"
}
# link_id LOG: the build id of the link `longshore build` printed, checking
# the link is the advertised web address.
link_id() {
  local line
  line=$(grep -oE "$WEB_URL/builds/[0-9a-f]+" "$1" | head -1 || true)
  [[ -n $line ]] || return 1
  echo "${line##*/}"
}

# bob: a finished build alice must never see.
bobctx="$FARM_DIR/bob"
make_context "$bobctx"
printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' \
  'RUN ["/bin/busybox", "sh", "-c", "echo bob-secret-step"]' >"$bobctx/Dockerfile"
as bob "$LONGSHORE" build --progress=plain "$bobctx" >"$FARM_DIR/bob.log" 2>&1 ||
  fail "bob's build failed: $(tail -5 "$FARM_DIR/bob.log")"
BOB_ID=$(link_id "$FARM_DIR/bob.log") ||
  fail "longshore build printed no $WEB_URL/builds/ID link: $(cat "$FARM_DIR/bob.log")"
echo "bob's build $BOB_ID; its link was printed"

# alice: two stages, built twice, the second time with its first stage cached.
tl="$FARM_DIR/timeline"
make_context "$tl"
cat >"$tl/Dockerfile" <<'DOCKERFILE'
FROM scratch AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo tools-ready; /bin/busybox sleep 1"]

FROM tools AS app
ARG V
RUN ["/bin/busybox", "sh", "-c", "echo app-step-ran $V; /bin/busybox sleep 1"]
DOCKERFILE
as alice "$LONGSHORE" build --progress=plain --build-arg V=1 "$tl" >"$FARM_DIR/tl1.log" 2>&1 ||
  fail "alice's first build failed: $(tail -5 "$FARM_DIR/tl1.log")"
as alice "$LONGSHORE" build --progress=plain --build-arg V=2 \
  --output "type=oci,dest=$FARM_DIR/app.tar" "$tl" >"$FARM_DIR/tl2.log" 2>&1 ||
  fail "alice's second build failed: $(tail -5 "$FARM_DIR/tl2.log")"
grep -q CACHED "$FARM_DIR/tl2.log" || fail "alice's second build hit no cache: $(cat "$FARM_DIR/tl2.log")"
FINISHED_ID=$(link_id "$FARM_DIR/tl2.log") || fail "no link for alice's second build"

# The API refuses as the page does (the browser checks the page itself).
code=$(curl -s -o "$FARM_DIR/api.out" -w '%{http_code}' \
  -H "Authorization: Bearer $(cat "$FARM_DIR/alice.token")" "$WEB_URL/api/builds/$BOB_ID")
[[ $code == 403 ]] || fail "alice read bob's build over the API: $code $(cat "$FARM_DIR/api.out")"
# Her output, downloaded from the page's API, is the file the client wrote.
code=$(curl -s -o "$FARM_DIR/download.tar" -w '%{http_code}' \
  -H "Authorization: Bearer $(cat "$FARM_DIR/alice.token")" "$WEB_URL/api/builds/$FINISHED_ID/outputs/0")
[[ $code == 200 ]] || fail "alice could not download her output: $code $(head -c 300 "$FARM_DIR/download.tar")"
cmp -s "$FARM_DIR/download.tar" "$FARM_DIR/app.tar" || fail "the downloaded output differs from the client's"
code=$(curl -s -o "$FARM_DIR/api.out" -w '%{http_code}' \
  -H "Authorization: Bearer $(cat "$FARM_DIR/bob.token")" "$WEB_URL/api/builds/$FINISHED_ID/outputs/0")
[[ $code == 403 ]] || fail "bob downloaded alice's output: $code"
code=$(curl -s -o "$FARM_DIR/api.out" -w '%{http_code}' "$WEB_URL/api/builds")
[[ $code == 401 ]] || fail "the API answered a caller without a token: $code"
code=$(curl -s -o "$FARM_DIR/api.out" -w '%{http_code}' -X DELETE -d x \
  -H "Authorization: Bearer $(cat "$FARM_DIR/ops.token")" "$WEB_URL/api/builds/$BOB_ID")
[[ $code == 405 ]] || fail "the read-only page took a DELETE: $code"

# alice: a build whose long step prints a marker several seconds in.
marker="web-live-marker-$$"
live="$FARM_DIR/live"
make_context "$live"
printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' \
  "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo waiting-$marker; /bin/busybox sleep 20; echo $marker-printed; /bin/busybox sleep 8\"]" \
  >"$live/Dockerfile"
as alice "$LONGSHORE" build --progress=plain "$live" >"$FARM_DIR/live.log" 2>&1 &
live_pid=$!
RUNNING_ID=""
for _ in $(seq 100); do
  RUNNING_ID=$(link_id "$FARM_DIR/live.log") && break
  sleep 0.1
done
[[ -n $RUNNING_ID ]] || fail "no link for alice's running build: $(cat "$FARM_DIR/live.log")"

# alice: one more build, queued behind the running one (the worker has one
# slot), so the queue shows its position and wait.
queued="$FARM_DIR/queued"
make_true_context "$queued"
as alice "$LONGSHORE" build --progress=plain "$queued" >"$FARM_DIR/queued.log" 2>&1 &
queued_pid=$!
QUEUED_ID=""
for _ in $(seq 100); do
  QUEUED_ID=$(link_id "$FARM_DIR/queued.log") && break
  sleep 0.1
done
[[ -n $QUEUED_ID ]] || fail "no link for alice's queued build: $(cat "$FARM_DIR/queued.log")"

out="${TEST_UNDECLARED_OUTPUTS_DIR:-$(mktemp -d /tmp/web-page-test-screens.XXXXXX)}"
mkdir -p "$out"
WEB_URL="$WEB_URL" ALICE_TOKEN=$(cat "$FARM_DIR/alice.token") OPS_TOKEN=$(cat "$FARM_DIR/ops.token") \
  RUNNING_ID="$RUNNING_ID" QUEUED_ID="$QUEUED_ID" FINISHED_ID="$FINISHED_ID" BOB_ID="$BOB_ID" LIVE_MARKER="$marker" \
  OUT_DIR="$out" timeout 180 node "$driver" || fail "the browser test failed (screenshots in $out)"
wait "$live_pid" || fail "alice's running build failed: $(tail -5 "$FARM_DIR/live.log")"
wait "$queued_pid" || fail "alice's queued build failed: $(tail -5 "$FARM_DIR/queued.log")"
for shot in builds-submitter build-running build-finished-live build-timeline \
  build-of-another-submitter builds-operator workers; do
  [[ -s "$out/$shot.png" ]] || fail "no screenshot $shot.png in $out"
done
echo "PASS: the web page showed alice's builds live, her timeline and refused bob's build; screenshots in $out"
