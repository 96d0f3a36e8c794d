#!/usr/bin/env bash
# Independent stages run at the same time: two stages that each record when
# their step ran (from /proc/uptime) overlap; the final stage copies from both;
# a stage nothing needs is not built; --target builds only what it needs.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM base AS left
RUN cut -d' ' -f1 /proc/uptime > /start && sleep 2 && cut -d' ' -f1 /proc/uptime > /end

FROM base AS right
RUN cut -d' ' -f1 /proc/uptime > /start && sleep 2 && cut -d' ' -f1 /proc/uptime > /end

FROM base AS unused
RUN echo this stage is never needed && exit 9

FROM base
COPY --from=left /start /left.start
COPY --from=left /end /left.end
COPY --from=right /start /right.start
COPY --from=right /end /right.end
DOCKERFILE

rc=0
"$LONGSHORE" build -t par:1 --progress=plain --output "type=oci,dest=$FARM_DIR/out,tar=false" \
  "$ctx" 2>"$FARM_DIR/build.log" || rc=$?
[[ $rc -eq 0 ]] || { cat "$FARM_DIR/build.log" >&2; fail "build exited $rc"; }
grep -q 'never needed' "$FARM_DIR/build.log" && fail "the unused stage was built"
umoci unpack --image "$FARM_DIR/out:1" "$FARM_DIR/b" >/dev/null || fail "umoci unpack failed"
r="$FARM_DIR/b/rootfs"
ls_=$(cat "$r/left.start") le=$(cat "$r/left.end") rs=$(cat "$r/right.start") re=$(cat "$r/right.end")
awk -v ls="$ls_" -v le="$le" -v rs="$rs" -v re="$re" 'BEGIN { exit !(rs < le && ls < re) }' ||
  fail "stages did not overlap: left $ls_-$le, right $rs-$re"

# --target builds the named stage and what it needs, nothing else.
"$LONGSHORE" build --target left --progress=plain "$ctx" 2>"$FARM_DIR/target.log" ||
  { cat "$FARM_DIR/target.log" >&2; fail "--target build failed"; }
grep -q '\[right ' "$FARM_DIR/target.log" && fail "--target left built stage right"
grep -q '\[left ' "$FARM_DIR/target.log" || fail "--target left did not show stage left"
echo "PASS: parallel stages (left $ls_-$le, right $rs-$re)"
