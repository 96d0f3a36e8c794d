#include "scheduler/dockerfile_check.h"

#include "dockerfile/parser.h"

namespace longshore::scheduler {

absl::Status CheckDockerfile(absl::string_view text,
                             absl::string_view filename) {
  absl::StatusOr<longshore::dockerfile::ParsedDockerfile> parsed =
      longshore::dockerfile::Parse(text, filename);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(parsed.status().message());
  }
  return absl::OkStatus();
}

}  // namespace longshore::scheduler
