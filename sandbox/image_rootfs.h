// `longshore-sandbox --image LAYOUT[:REF] ... -- CMD`: run a command on an
// image from an OCI image layout, for reproducing a build step by hand. The
// sandbox first enters a user namespace over the caller's subordinate ids (as
// the worker does); there the layers are unpacked with the image's owners (once
// per diffID, into ~/.cache/longshore/image-layers, so the files there belong
// to the subordinate ids) by the `longshore` CLI found beside this binary,
// which links the image library this static binary does not. They become the
// overlay's lowers. Without --upper and --work the step writes to a throw-away
// upper directory.
#ifndef LONGSHORE_SANDBOX_IMAGE_ROOTFS_H_
#define LONGSHORE_SANDBOX_IMAGE_ROOTFS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace longshore::sandbox {

struct ImageArgs {
  std::vector<std::string> args;  // the command line with --image resolved
  std::string temp_dir;           // throw-away upper/work; empty if none
};

// Rewrites `args` when it holds `--image VALUE` (before "--"): the image's
// layers become --lower flags, and a temporary --upper/--work pair is added
// unless given. Arguments without --image come back unchanged.
absl::StatusOr<ImageArgs> ResolveImageArgs(
    const std::vector<std::string>& args);

// True when `args` asks for --image (before any "--").
bool HasImageArg(const std::vector<std::string>& args);

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_IMAGE_ROOTFS_H_
