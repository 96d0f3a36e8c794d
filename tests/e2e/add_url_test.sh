#!/usr/bin/env bash
# ADD <url>: the worker downloads the file (busybox httpd on the host's own
# address serves it): mode 0600 unless --chmod, --chown applies, the server's
# Last-Modified becomes the mtime, an archive stays packed, a changed file is
# not served from the cache, --checksum is checked; a 404 and the addresses a
# build must not reach (loopback, cloud metadata) fail the build, naming the
# URL and the Dockerfile line.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1

host=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')
[[ -n "$host" ]] || fail "no global IPv4 address on this machine to serve from"
srv="$FARM_DIR/www"
mkdir -p "$srv"
echo "hello from the web" >"$srv/hello.txt"
touch -d '2021-03-04 05:06:07 UTC' "$srv/hello.txt"
tar -czf "$srv/app.tar.gz" -C "$FARM_DIR" www/hello.txt
port=$(free_port)
busybox httpd -f -p "$host:$port" -h "$srv" &
FARM_PIDS+=($!)
wait_for_port "$port" "busybox httpd"
base="http://$host:$port"

ctx="$FARM_DIR/ctx"
make_context "$ctx"
sum=$(sha256sum "$srv/hello.txt" | cut -d' ' -f1)
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY busybox /bin/busybox
ADD $base/hello.txt /data/
ADD --chown=1000:1000 --chmod=0644 $base/hello.txt /data/renamed.txt
ADD $base/app.tar.gz /opt/
ADD --checksum=sha256:$sum $base/hello.txt /checked.txt
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox stat -c '%a %u:%g %Y' /data/hello.txt /data/renamed.txt > /stat.txt"]
DOCKERFILE

build() {  # build NAME ARGS...
  local name=$1 rc=0
  shift
  "$LONGSHORE" build --progress=plain "$@" 2>"$FARM_DIR/$name.log" || rc=$?
  return $rc
}
build one -t add:1 --output "type=oci,dest=$FARM_DIR/one,tar=false" "$ctx" ||
  { cat "$FARM_DIR/one.log" >&2; fail "the ADD <url> build failed"; }
umoci unpack --image "$FARM_DIR/one:1" "$FARM_DIR/b1" >/dev/null || fail "umoci unpack failed"
root="$FARM_DIR/b1/rootfs"
[[ "$(cat "$root/data/hello.txt")" == "hello from the web" ]] || fail "wrong content in /data/hello.txt"
stat=$(cat "$root/stat.txt")
[[ "$stat" == $'600 0:0 1614834367\n644 1000:1000 1614834367' ]] ||
  fail "modes, owners, mtimes of the downloads: $stat"
[[ -f "$root/opt/app.tar.gz" && ! -e "$root/opt/www" ]] || fail "a downloaded archive was unpacked"
cmp -s "$root/checked.txt" "$srv/hello.txt" || fail "--checksum download differs"

# Changed on the server: rebuilt, not served from the cache.
echo "hello again" >"$srv/hello.txt"
sed -i "s/sha256:$sum/sha256:$(sha256sum "$srv/hello.txt" | cut -d' ' -f1)/" "$ctx/Dockerfile"
build two -t add:2 --output "type=oci,dest=$FARM_DIR/two,tar=false" "$ctx" ||
  { cat "$FARM_DIR/two.log" >&2; fail "the rebuild failed"; }
umoci unpack --image "$FARM_DIR/two:2" "$FARM_DIR/b2" >/dev/null || fail "umoci unpack failed"
[[ "$(cat "$FARM_DIR/b2/rootfs/data/hello.txt")" == "hello again" ]] ||
  fail "a changed URL was served from the cache"

# fails NAME DOCKERFILE_LINE PATTERN: a build whose third line is LINE fails
# with PATTERN in its log.
fails() {
  local name=$1 line=$2 pattern=$3
  mkdir -p "$FARM_DIR/$name"
  cp /bin/busybox "$FARM_DIR/$name/busybox"
  printf 'FROM scratch\nCOPY busybox /bin/busybox\n%s\n' "$line" >"$FARM_DIR/$name/Dockerfile"
  ! build "$name" "$FARM_DIR/$name" || fail "$name: the build succeeded"
  grep -Eq "$pattern" "$FARM_DIR/$name.log" ||
    { cat "$FARM_DIR/$name.log" >&2; fail "$name: no '$pattern' in the build's error"; }
}
fails missing "ADD $base/nope.txt /nope.txt" "Dockerfile:3.*$base/nope.txt: HTTP 404"
fails loopback "ADD http://127.0.0.1:$port/hello.txt /x" "refused to connect to 127.0.0.1"
fails metadata "ADD http://169.254.169.254/latest/meta-data/ /x" "refused to connect to 169.254.169.254"
fails checksum "ADD --checksum=sha256:$sum $base/hello.txt /x" "checksum=sha256:$sum: .* served content with digest"
fails git "ADD https://example.invalid/repo.git /src" "git sources are not supported yet"
fails local-checksum "ADD --checksum=sha256:$sum busybox /x" "checksum applies to http\(s\) sources only, not busybox"
echo "PASS: ADD <url>"
