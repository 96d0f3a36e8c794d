#!/usr/bin/env bash
# The web page over HTTPS when the scheduler has TLS: the same certificate,
# client certificates from the farm's CA name the caller as on gRPC, a bearer
# token works without a certificate (tokens make the certificate optional), a
# certificate from another CA is refused at the handshake, plaintext HTTP is
# not answered, and `longshore build` is told an https:// link.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

need curl
farm_init

farm_tls_init
make_cert ops farm-ca "/CN=ops-alice"
make_cert ci farm-ca "/CN=ci-team-a"
make_cert rogue rogue-ca "/CN=ops-alice"

tokens="$FARM_DIR/tokens"
"$LONGSHORE" token team-b --role submitter >"$FARM_DIR/team-b.minted" || fail "longshore token failed"
head -1 "$FARM_DIR/team-b.minted" >"$FARM_DIR/team-b.token"
tail -1 "$FARM_DIR/team-b.minted" >"$tokens"

WEB_PORT=$(free_port)
farm_start_scheduler --tls-cert "$tls/scheduler.pem" --tls-key "$tls/scheduler.key" \
  --tls-client-ca "$tls/farm-ca.pem" --tls-operator-names 'ops-*' \
  --tokens-file "$tokens" --web-listen "127.0.0.1:$WEB_PORT"
wait_for_port "$WEB_PORT" "the web page"
url="https://127.0.0.1:$WEB_PORT"

# get [curl flags...] PATH: prints "CODE BODY".
get() {
  local path=${*: -1}
  local out code
  out="$FARM_DIR/get.out"
  code=$(curl -s -o "$out" -w '%{http_code}' --cacert "$tls/farm-ca.pem" "${@:1:$#-1}" "$url$path") || code="curl-failed-$?"
  echo "$code $(cat "$out" 2>/dev/null)"
}

r=$(get --cert "$tls/ops.pem" --key "$tls/ops.key" /api/whoami)
[[ $r == 200* && $r == *'certificate \"ops-alice\" (submitter, operator)'* ]] ||
  fail "the operator's certificate did not name it: $r"
r=$(get --cert "$tls/ops.pem" --key "$tls/ops.key" /api/workers)
[[ $r == 200* ]] || fail "the operator's certificate could not list workers: $r"
r=$(get --cert "$tls/ci.pem" --key "$tls/ci.key" /api/workers)
[[ $r == 403* && $r == *'ci-team-a'* ]] || fail "a submitter's certificate listed workers: $r"
r=$(get -H "Authorization: Bearer $(cat "$FARM_DIR/team-b.token")" /api/whoami)
[[ $r == 200* && $r == *'token \"team-b\" (submitter)'* ]] || fail "a token without a certificate was refused: $r"
r=$(get /api/builds)
[[ $r == 401* ]] || fail "a caller with neither certificate nor token was answered: $r"
r=$(get --cert "$tls/rogue.pem" --key "$tls/rogue.key" /api/whoami)
[[ $r == curl-failed* || $r == 000* ]] || fail "a certificate from another CA was accepted: $r"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WEB_PORT/" || true)
[[ $code == 000 ]] || fail "plaintext HTTP was answered on the TLS port: $code"
r=$(get /)
[[ $r == 200*'<title>Longshore</title>'* ]] || fail "the page itself was not served over HTTPS: $r"

# The build command is told the https:// address. No worker runs the build:
# the client is stopped after a few seconds, which cancels it.
ctx="$FARM_DIR/ctx"
make_true_context "$ctx"
LONGSHORE_TLS_CA="$tls/farm-ca.pem" LONGSHORE_TLS_CERT="$tls/ci.pem" LONGSHORE_TLS_KEY="$tls/ci.key" \
  timeout 5 "$LONGSHORE" build --progress=plain "$ctx" >"$FARM_DIR/build.log" 2>&1 || true
grep -qE "^build [0-9a-f]+: $url/builds/[0-9a-f]+$" "$FARM_DIR/build.log" ||
  fail "longshore build printed no $url/builds/ID link: $(cat "$FARM_DIR/build.log")"
echo "PASS: the web page serves HTTPS with the scheduler's TLS and identities"
