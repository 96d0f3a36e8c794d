#include "worker/passwd.h"

#include <fcntl.h>
#include <unistd.h>

#include "worker/in_root.h"

namespace longshore::worker {
namespace {

// The file's contents, or empty when the image has none. Bounded, since a
// hostile image may hold a huge or endless file there.
std::string ReadInRoot(int root_fd, const std::string& path) {
  auto fd = OpenInRoot(root_fd, path, O_RDONLY);
  if (!fd.ok()) return "";
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd->get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, n);
    if (out.size() > (16 << 20)) break;
  }
  return out;
}

}  // namespace

absl::StatusOr<sandbox::ResolvedUser> ResolveUserInRoot(
    int root_fd, const std::string& spec) {
  return sandbox::ResolveUser(spec, ReadInRoot(root_fd, "/etc/passwd"),
                              ReadInRoot(root_fd, "/etc/group"));
}

}  // namespace longshore::worker
