#!/bin/sh
# Bazel's --workspace_status_command: the commit binaries report in --version
# and longshore_build_info. Only this stable key is used, so builds redo the
# version stamp when the commit changes and at no other time.
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || true)
echo "STABLE_LONGSHORE_COMMIT ${commit:-unknown}"
