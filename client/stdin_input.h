// `longshore build` inputs read from stdin: a Dockerfile (`-f -`) or a whole
// build context (CONTEXT `-`), as `docker buildx build` reads them.
#ifndef LONGSHORE_CLIENT_STDIN_INPUT_H_
#define LONGSHORE_CLIENT_STDIN_INPUT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::client {

// Every byte of `fd` until end of file; `what` names it in errors.
absl::StatusOr<std::string> ReadAll(int fd, const std::string& what);

// Whether `head` (the first bytes of a stream, at least 512 when there are
// that many) starts a tar, plain (ustar or GNU magic at offset 257) or
// compressed with gzip, bzip2, xz or zstd.
bool LooksLikeTar(absl::string_view head);

struct StdinContext {
  // A temporary directory holding the context; the caller removes it.
  std::string dir;
  // Set when stdin held a lone Dockerfile rather than a tar: its bytes (the
  // context is then empty, as with `docker build - < Dockerfile`).
  std::optional<std::string> dockerfile;
};

// Reads a context from `fd`: a tar (possibly compressed) is extracted into a
// fresh directory under `temp_dir`, confined to it; anything else is taken as
// the Dockerfile of an empty context.
absl::StatusOr<StdinContext> ReadStdinContext(int fd,
                                              const std::string& temp_dir);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_STDIN_INPUT_H_
