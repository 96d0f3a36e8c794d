#include "client/stdin_input.h"

#include <errno.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/tar_extract.h"

namespace longshore::client {

absl::StatusOr<std::string> ReadAll(int fd, const std::string& what) {
  std::string data;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read(%s)", what);
    if (n == 0) break;
    data.append(buf, n);
  }
  return data;
}

bool LooksLikeTar(absl::string_view head) {
  auto starts = [&](absl::string_view magic) {
    return head.substr(0, magic.size()) == magic;
  };
  if (starts("\x1f\x8b") || starts("BZh") ||
      starts(absl::string_view("\xfd"
                               "7zXZ\0",
                               6)) ||
      starts("\x28\xb5\x2f\xfd")) {
    return true;
  }
  // POSIX "ustar\0" and GNU "ustar  \0" both start with "ustar".
  return head.size() >= 512 && head.substr(257, 5) == "ustar";
}

absl::StatusOr<StdinContext> ReadStdinContext(int fd,
                                              const std::string& temp_dir) {
  ASSIGN_OR_RETURN(std::string data, ReadAll(fd, "stdin"));
  StdinContext out;
  ASSIGN_OR_RETURN(out.dir, MakeTempDir(temp_dir, "longshore-stdin-"));
  if (!LooksLikeTar(data)) {
    out.dockerfile = std::move(data);
    return out;
  }
  // Spooled beside the extraction, which reads a file.
  std::string tar = out.dir + ".tar";
  absl::Status s = WriteFileAtomic(tar, data, 0600);
  data.clear();
  if (s.ok()) {
    s = ExtractTarConfined(tar, out.dir, "context on stdin",
                           /*compressed=*/true);
  }
  unlink(tar.c_str());
  if (!s.ok()) {
    RemoveTree(out.dir).IgnoreError();
    return s;
  }
  return out;
}

}  // namespace longshore::client
