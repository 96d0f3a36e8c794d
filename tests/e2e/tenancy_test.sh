#!/usr/bin/env bash
# A farm shared by teams: every cross-tenant attempt is refused with a message
# naming the caller and the rule, and an operator succeeds at each. Identities
# are bearer tokens from --tokens-file (the certificate side is tls_test.sh).
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
PROBE=$(runfile tests/tools/rpc_probe)
tokens="$FARM_DIR/tokens"
: >"$tokens"
# mint NAME ROLE: a token in $FARM_DIR/NAME.token, its hash line in $tokens.
mint() {
  "$LONGSHORE" token "$1" --role "$2" >"$FARM_DIR/$1.minted" || fail "longshore token $1 failed"
  head -1 "$FARM_DIR/$1.minted" >"$FARM_DIR/$1.token"
  tail -1 "$FARM_DIR/$1.minted" >>"$tokens"
  chown "$FARM_USER:" "$FARM_DIR/$1.token"
  chmod 600 "$FARM_DIR/$1.token"
}
mint team-a submitter
mint team-b submitter
mint ops operator
mint pool worker
mint pool-2 worker
! grep -q lst_ "$tokens" || fail "the tokens file holds a token, not only hashes"

farm_start_scheduler --tokens-file "$tokens"
farm_start_worker w1 --token-file "$FARM_DIR/pool.token"

as() {
  local who=$1
  shift
  LONGSHORE_TOKEN=$(cat "$FARM_DIR/$who.token") "$@"
}
probe() { "$PROBE" "$LONGSHORE_SCHEDULER" "$@"; }

rows=0
# refused WHO "ATTEMPT" "EXPECTED MESSAGE" COMMAND...: must fail saying so.
refused() {
  local who=$1 what=$2 want=$3
  shift 3
  local out rc=0
  if [[ $who == nobody ]]; then
    out=$(
      unset LONGSHORE_TOKEN
      "$@" 2>&1
    ) || rc=$?
  elif [[ $who == wrong ]]; then
    out=$(LONGSHORE_TOKEN=lst_0000 "$@" 2>&1) || rc=$?
  else
    out=$(as "$who" "$@" 2>&1) || rc=$?
  fi
  [[ $rc -ne 0 ]] || fail "$who: $what was allowed: $out"
  grep -qF -- "$want" <<<"$out" || fail "$who: $what: refused, but not with \"$want\": $out"
  printf '  %-8s %-44s refused: %s\n' "$who" "$what" "$(head -1 <<<"$out")"
  rows=$((rows + 1))
}
# allowed WHO "ATTEMPT" COMMAND...: must succeed.
allowed() {
  local who=$1 what=$2
  shift 2
  local out rc=0
  out=$(as "$who" "$@" 2>&1) || rc=$?
  [[ $rc -eq 0 ]] || fail "$who: $what was refused: $out"
  printf '  %-8s %-44s ok: %s\n' "$who" "$what" "$(head -1 <<<"$out")"
}

# team-a: a finished build with a client-side output, and a running one.
ctx="$FARM_DIR/ctx"
make_context "$ctx"
printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' \
  'ARG N' 'RUN ["/bin/busybox", "sh", "-c", "echo secret-plan-$N > /plan"]' >"$ctx/Dockerfile"
as team-a "$LONGSHORE" build --progress=plain --build-arg N=1 \
  --output "type=oci,dest=$FARM_DIR/a.tar" "$ctx" >"$FARM_DIR/a.log" 2>&1 ||
  fail "team-a's build failed: $(tail -5 "$FARM_DIR/a.log")"
done_id=$(as team-a "$LONGSHORE" builds | awk '$2 == "succeeded" {print $1; exit}')
[[ -n $done_id ]] || fail "team-a does not see its own finished build"

slow="$FARM_DIR/slow"
make_context "$slow"
printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' \
  'RUN ["/bin/busybox", "sleep", "60"]' >"$slow/Dockerfile"
as team-a "$LONGSHORE" build --progress=plain "$slow" >"$FARM_DIR/slow-a.log" 2>&1 &
slow_client=$!
run_id=""
for _ in $(seq 100); do
  run_id=$(as team-a "$LONGSHORE" builds | awk '$2 == "running" {print $1; exit}' || true)
  [[ -n $run_id ]] && break
  sleep 0.1
done
[[ -n $run_id ]] || fail "team-a's slow build did not start: $(cat "$FARM_DIR/slow-a.log")"
digest=$(as ops probe get "$run_id" | sed -n 's/.* context=\(sha256:[0-9a-f]*\).*/\1/p')
[[ -n $digest ]] || fail "the operator could not read the running build's context digest"

echo "cross-tenant attempts:"
deny="which another submitter owns"
refused team-b "watch team-a's build" "may not call Watch for build $run_id, $deny" probe watch "$run_id"
refused team-b "get team-a's build (Dockerfile, args)" "token \"team-b\" (submitter) may not call GetBuild for build $done_id, $deny" probe get "$done_id"
refused team-b "fetch team-a's output" "may not call FetchOutput for build $done_id, $deny" probe fetch-output "$done_id" 0
refused team-b "cancel team-a's build" "may not call Cancel for build $run_id, $deny" probe cancel "$run_id"
refused team-b "cancel with the CLI" "$deny" "$LONGSHORE" cancel "$run_id"
refused team-b "list workers" "may not call ListWorkers: this call is for operators" probe workers
refused team-b "drain a worker" "may not call Drain: this call is for operators" "$LONGSHORE" drain w1
refused team-a "register as a worker" "token \"team-a\" (submitter) may not call Connect: only the worker role registers as a worker" probe connect rogue
refused pool-2 "read the context of a build it does not hold" "may not call FetchContext for build $run_id, which is leased to another worker" probe fetch-context "$run_id" "$digest"
refused pool "read another context under its lease" "which is not the context of build $run_id" probe fetch-context "$run_id" "sha256:$(printf '%064d' 0)"
refused team-a "read a context as a submitter" "may not call FetchContext" probe fetch-context "$run_id" "$digest"
# Content-addressed context sync: each submitter has its own content store,
# and a worker reads only the files of its own leases' contexts.
bb_digest="sha256:$(sha256sum "$slow/busybox" | cut -d' ' -f1)"
refused pool-2 "read context files of a build it does not hold" "may not call FetchContextFiles for build $run_id, which is leased to another worker" probe fetch-context-files "$run_id" "$bb_digest"
refused pool "read a file outside its lease's context" "is not part of build $run_id's context" probe fetch-context-files "$run_id" "sha256:$(printf '%064d' 0)"
refused team-a "read context files as a submitter" "may not call FetchContextFiles" probe fetch-context-files "$run_id" "$bb_digest"
refused pool "upload context files as a worker" "may not call UploadContent" probe upload-content "$bb_digest" x
refused team-b "upload bytes under another content's digest" "arrived with digest" probe upload-content "$bb_digest" not-busybox
seen=$(as team-b probe find-missing "$bb_digest" || true)
[[ $seen == "OK missing" ]] || fail "team-b learns what team-a's content store holds: $seen"
echo "  team-b   learn whether team-a holds a file               refused: its own store answers \"$seen\""
rows=$((rows + 1))
refused wrong "any call with a wrong token" "the bearer token is not in the scheduler's --tokens-file" probe list
refused nobody "any call with no token" "this scheduler authenticates every call" probe list
refused nobody "the CLI with no token" "set LONGSHORE_TOKEN or pass --token-file" "$LONGSHORE" builds

# Listing shows only one's own builds.
list_b=$(as team-b probe list) || fail "team-b could not list: $list_b"
[[ $list_b == "OK 0 builds" ]] || fail "team-b lists others' builds: $list_b"
! as team-b "$LONGSHORE" builds | grep -q "$done_id" || fail "longshore builds shows team-b team-a's build"
echo "  team-b   list builds                                  ok: $list_b"

# Identical submissions merge only within a submitter.
as team-b "$LONGSHORE" build --progress=plain "$slow" >"$FARM_DIR/slow-b.log" 2>&1 &
b_client=$!
as team-a "$LONGSHORE" build --progress=plain "$slow" >"$FARM_DIR/slow-a2.log" 2>&1 &
a2_client=$!
for _ in $(seq 100); do
  grep -q "sharing the execution of build $run_id" "$FARM_DIR/slow-a2.log" && break
  sleep 0.1
done
grep -q "sharing the execution of build $run_id" "$FARM_DIR/slow-a2.log" ||
  fail "team-a's identical build did not merge with its own: $(cat "$FARM_DIR/slow-a2.log")"
for _ in $(seq 30); do
  [[ $(as ops "$LONGSHORE" builds | grep -c queued) -ge 1 ]] && break
  sleep 0.1
done
! grep -q "sharing the execution" "$FARM_DIR/slow-b.log" ||
  fail "team-b's identical build merged with team-a's: $(cat "$FARM_DIR/slow-b.log")"
b_id=$(as team-b "$LONGSHORE" builds | awk 'NR > 1 {print $1; exit}' || true)
[[ -n $b_id && $b_id != "$run_id" ]] || fail "team-b's identical build is not its own: '$b_id'"
echo "  team-b   merge with team-a's identical build          refused: queued as its own build $b_id"
rows=$((rows + 1))

echo "the operator, at each:"
allowed ops "watch team-a's build" probe watch "$run_id"
allowed ops "get team-a's build" probe get "$done_id"
allowed ops "fetch team-a's output" probe fetch-output "$done_id" 0
list_ops=$(as ops probe list)
grep -q "$done_id:team-a" <<<"$list_ops" && grep -q "$b_id:team-b" <<<"$list_ops" ||
  fail "the operator does not list every team's builds: $list_ops"
echo "  ops      list builds                                  ok: every team's"
allowed ops "list workers" probe workers
allowed ops "drain a worker" "$LONGSHORE" drain w1
allowed ops "undrain a worker" "$LONGSHORE" undrain w1
allowed pool "read the context of its own lease" probe fetch-context "$run_id" "$digest"
allowed pool "read context files of its own lease" probe fetch-context-files "$run_id" "$bb_digest"
allowed ops "cancel team-b's build" probe cancel "$b_id"
allowed ops "cancel team-a's build" "$LONGSHORE" cancel "$run_id"
wait "$slow_client" "$b_client" "$a2_client" 2>/dev/null || true

# The recorded submitter is the token's name, never the claim.
as team-a env LONGSHORE_SUBMITTER=team-b "$LONGSHORE" build --progress=plain --build-arg N=2 \
  "$ctx" >"$FARM_DIR/claim.log" 2>&1 || fail "the claiming build failed: $(tail -3 "$FARM_DIR/claim.log")"
[[ $(as ops probe list | grep -o ':team-b' | wc -l) -eq 1 ]] ||
  fail "a claim of team-b was recorded: $(as ops probe list)"

# Tokens never travel in plaintext beyond loopback.
ip=$(hostname -I 2>/dev/null | awk '{print $1}')
[[ -n $ip ]] || fail "this machine has no non-loopback address (hostname -I) to test plaintext tokens over"
port=$(free_port)
"$FARM_DIR/bin/longshore-scheduler" --listen "0.0.0.0:$port" --insecure --metrics-listen "" \
  --state-dir "$FARM_DIR/open-scheduler" --tokens-file "$tokens" >"$FARM_DIR/open.log" 2>&1 &
FARM_PIDS+=($!)
wait_for_port "$port" "plaintext scheduler"
refused team-a "send a token in plaintext over the network" "refusing to send a bearer token in plaintext to $ip:$port" \
  "$LONGSHORE" builds --scheduler "$ip:$port"
refused team-a "a token that came in plaintext over the network" "bearer token refused: it came over plaintext from a non-loopback address" \
  "$PROBE" "$ip:$port" list
# ...and without --insecure a non-loopback plaintext address is not served.
rc=0
"$FARM_DIR/bin/longshore-scheduler" --listen "0.0.0.0:$(free_port)" --metrics-listen "" \
  --state-dir "$FARM_DIR/refused" --tokens-file "$tokens" >"$FARM_DIR/refused.log" 2>&1 || rc=$?
[[ $rc -eq 2 ]] && grep -q "is not a loopback address and the scheduler has no TLS" "$FARM_DIR/refused.log" ||
  fail "plaintext on 0.0.0.0 without --insecure: exit $rc: $(cat "$FARM_DIR/refused.log")"
echo "  -        serve plaintext on 0.0.0.0 without --insecure refused: $(grep -o 'is not a loopback.*TLS' "$FARM_DIR/refused.log" | head -1)"
rows=$((rows + 1))

echo "PASS: $rows cross-tenant attempts refused, the operator allowed at each"
