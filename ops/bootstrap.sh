#!/usr/bin/env bash
# Installs everything Longshore builds, tests and runs with on Debian 12, and creates
# what the tests need. Idempotent: quiet when all is already there. Run as root.
set -euo pipefail

PACKAGES=(
  # Build: Bazel offline with Debian's stand-in repositories, and the system libraries.
  bazel-bootstrap bazel-bootstrap-source build-essential pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libseccomp-dev libabsl-dev prometheus-cpp-dev libgtest-dev libgmock-dev
  libarchive-dev zlib1g-dev libzstd-dev libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libsqlite3-dev
  # The scheduler's web page: cpp-httplib (a shared library with its header).
  libcpp-httplib-dev
  # ISA-L: igzip, the default gzip compressor of layers.
  libisal-dev
  # Formatting check and the libFuzzer targets.
  clang clang-format libclang-rt-14-dev
  # Run: user namespaces with a subordinate id range, the per-step network.
  uidmap slirp4netns
  # Test peers and fixtures: base images from busybox-static, a real registry,
  # real OCI tools to check what Longshore produces, Prometheus, bench peers.
  busybox-static docker-registry skopeo umoci prometheus bubblewrap
  pigz zstd jq curl ca-certificates openssl util-linux iproute2 procps git
  # The tutorial and the buildah benchmark: a Debian Python base made with
  # debootstrap, run with podman, compared against buildah (both through runc).
  debootstrap podman buildah runc
  # The web page's browser test: Debian's chromium, driven headless from Node.
  chromium nodejs
  # The operators' kit: grpc.health.v1 checks (python3-grpcio), systemd-analyze
  # verify of the units, and Node for the manifest and dashboard validators.
  python3-grpcio python3-yaml systemd
  # The live tty view's test: a real terminal to snapshot.
  tmux
)

TEST_USER="${LONGSHORE_TEST_USER:-longshore}"

if [[ $(id -u) -ne 0 ]]; then
  echo "ops/bootstrap.sh: run as root (it installs packages and creates the user ${TEST_USER})" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "ops/bootstrap.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian starts the registry and Prometheus as services on install; tests start their
# own on free ports, so the packaged ones are stopped to keep the machine quiet.
for svc in docker-registry prometheus prometheus-node-exporter; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" >/dev/null 2>&1 || true
  fi
done

# The unprivileged user workers and sandbox tests run as, with a 65,536-id
# subordinate range for newuidmap/newgidmap.
if ! id -u "$TEST_USER" >/dev/null 2>&1; then
  useradd --system --create-home --shell /usr/sbin/nologin "$TEST_USER"
fi
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  if ! grep -q "^${TEST_USER}:" "$f"; then
    # Pick a range above every range already given out.
    start=$(awk -F: 'BEGIN{m=100000} {e=$2+$3; if (e>m) m=e} END{print m}' "$f")
    echo "${TEST_USER}:${start}:65536" >>"$f"
  fi
done

# slirp4netns, run by an unprivileged user, opens /dev/net/tun; most distributions
# make it 0666 through udev, these machines ship it 0600.
if [[ -c /dev/net/tun ]] && [[ $(stat -c %a /dev/net/tun) != 666 ]]; then
  chmod 0666 /dev/net/tun
fi

# npm for the browser test's driver (playwright-core, tests/web/package-lock.json).
# Debian's npm, unless the nodejs installed already brings one.
if ! command -v npm >/dev/null; then
  echo "ops/bootstrap.sh: installing npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
# The driver's exact locked version, into tests/web/node_modules (ignored by git)
# and npm's cache, so later installs work offline. No install scripts run: it
# downloads no browser; the test uses /usr/bin/chromium.
web_test_dir="$(cd "$(dirname "$0")/../tests/web" && pwd)"
want=$(node -p "require('$web_test_dir/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('$web_test_dir/node_modules/playwright-core/package.json').version } catch (e) { '' }")
if [[ "$want" != "$have" ]]; then
  echo "ops/bootstrap.sh: npm ci in tests/web (playwright-core $want)"
  (cd "$web_test_dir" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
fi

# The Python base of the hello-world-flask tutorial (make tutorial, and
# tests/e2e/tutorial_test.sh): debootstrap from the Debian mirror, once.
"$(dirname "$0")/../examples/hello-world-flask/base/make-base.sh" >/dev/null

# Node and the npm packages of the Kubernetes manifest validator
# (tests/tools/k8s-validate, pinned by its package-lock.json), installed into
# that directory. Debian's nodejs and npm when no Node is installed.
if ! command -v npm >/dev/null; then
  echo "ops/bootstrap.sh: installing nodejs npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
validator="$(dirname "$0")/../tests/tools/k8s-validate"
if [[ ! -d "$validator/node_modules/kubernetes-models" ||
  "$validator/package-lock.json" -nt "$validator/node_modules/.package-lock.json" ]]; then
  echo "ops/bootstrap.sh: npm ci in tests/tools/k8s-validate"
  (cd "$validator" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The Debian base of the scheduler and worker images (make images, and
# tests/e2e/images_test.sh): debootstrap from the Debian mirror, once.
"$(dirname "$0")/images/make-base.sh" /var/cache/longshore/runtime-base.tar >/dev/null
