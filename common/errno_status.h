// The one place where errno becomes an absl::Status.
#ifndef LONGSHORE_COMMON_ERRNO_STATUS_H_
#define LONGSHORE_COMMON_ERRNO_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace longshore {

// Maps an errno value to the closest absl::StatusCode.
absl::StatusCode ErrnoToCode(int err);

// "operation: strerror(err)" with the code chosen by ErrnoToCode.
absl::Status ErrnoStatusMessage(int err, const std::string& operation);

// ErrnoStatus(errno, "openat(%s)", path) -> "openat(/x): No such file or
// directory".
template <typename... Args>
absl::Status ErrnoStatus(int err, const absl::FormatSpec<Args...>& format,
                         const Args&... args) {
  return ErrnoStatusMessage(err, absl::StrFormat(format, args...));
}

}  // namespace longshore

#endif  // LONGSHORE_COMMON_ERRNO_STATUS_H_
