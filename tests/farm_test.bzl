"""farm_test: an end-to-end test that runs real Longshore processes."""

FARM_BINARIES = [
    "//client:longshore",
    "//scheduler:longshore-scheduler",
    "//sandbox:longshore-sandbox",
    "//worker:longshore-worker",
]

def farm_test(name, src, size = "medium", data = []):
    """A shell test with the farm's binaries and tests/lib/farm.sh.

    It needs the host's setuid newuidmap, /etc/subuid and a worker running as
    another user (and, for RUN steps with network, slirp4netns with
    /dev/net/tun), so it runs outside Bazel's sandbox, one test at a time.
    """
    native.sh_test(
        name = name,
        size = size,
        srcs = [src],
        data = FARM_BINARIES + ["//tests:farm"] + data,
        tags = [
            "exclusive",
            "no-sandbox",
        ],
    )
