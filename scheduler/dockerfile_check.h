// Submit-time check that a Dockerfile parses, so a broken one is rejected
// before it takes a place in the queue or a worker's time.
#ifndef LONGSHORE_SCHEDULER_DOCKERFILE_CHECK_H_
#define LONGSHORE_SCHEDULER_DOCKERFILE_CHECK_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace longshore::scheduler {

// INVALID_ARGUMENT with the parser's "<file>:<line>: <what>" message when
// `text` is not a valid Dockerfile.
absl::Status CheckDockerfile(absl::string_view text,
                             absl::string_view filename);

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_DOCKERFILE_CHECK_H_
