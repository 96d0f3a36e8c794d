# Longshore's two entry points on a fresh Debian 12 machine (run as root):
#   make demo   installs, builds, and runs a scheduler, a worker and one build end to end
#   make test   installs, builds, and runs the whole test suite
BAZEL ?= bazel
BAZEL_FLAGS ?=

.PHONY: all bootstrap build demo test format check-format clean

all: build

bootstrap:
	@./ops/bootstrap.sh

build: bootstrap
	$(BAZEL) build $(BAZEL_FLAGS) //...

demo: build
	./ops/demo.sh

# Runs every Bazel test, then the formatting check; the summary of both goes to
# bazel-testlogs and .test-summary for .ci/run.
test: bootstrap
	./ops/run-tests.sh

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

check-format:
	./ops/check-format.sh

clean:
	$(BAZEL) clean
