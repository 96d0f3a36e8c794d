# Longshore's entry points on a fresh Debian 12 machine (run as root):
#   make demo   installs, builds, and runs a scheduler, a worker and one build end to end
#   make tutorial  the hello-world-flask tutorial on a farm, run by podman
#   make test   installs, builds, and runs the whole test suite
#   make images builds the scheduler and worker container images with Longshore
BAZEL ?= bazel
BAZEL_FLAGS ?=

.PHONY: all bootstrap build demo tutorial test images format check-format clean

all: build

bootstrap:
	@./ops/bootstrap.sh

build: bootstrap
	$(BAZEL) build $(BAZEL_FLAGS) //...

demo: build
	./ops/demo.sh

# The hello-world-flask tutorial on a farm: base and app built and pushed to a
# local registry, the app run by podman, and the layer cache's lesson.
tutorial: build
	./ops/tutorial.sh

# Runs every Bazel test, then the formatting check; the summary of both goes to
# bazel-testlogs and .test-summary for .ci/run.
test: bootstrap
	./ops/run-tests.sh

# The scheduler's and the worker's container images, built by Longshore itself
# from ops/images on a Debian base: out/images/longshore-{scheduler,worker}.oci.tar.
images: build
	./ops/images/build-images.sh

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

check-format:
	./ops/check-format.sh

clean:
	$(BAZEL) clean
