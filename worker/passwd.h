// USER and --chown resolution inside an image root: /etc/passwd and /etc/group
// are read through the root (their symlinks cannot point outside it) and
// resolved with the sandbox's rules, so a step and a COPY agree on every id.
#ifndef LONGSHORE_WORKER_PASSWD_H_
#define LONGSHORE_WORKER_PASSWD_H_

#include <string>

#include "absl/status/statusor.h"
#include "sandbox/user_spec.h"

namespace longshore::worker {

absl::StatusOr<sandbox::ResolvedUser> ResolveUserInRoot(
    int root_fd, const std::string& spec);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_PASSWD_H_
