// USER and --chown resolution against an image's /etc/passwd and /etc/group,
// read inside the image root (symlinks there cannot point outside it).
#ifndef LONGSHORE_WORKER_PASSWD_H_
#define LONGSHORE_WORKER_PASSWD_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::worker {

struct UserSpec {
  uid_t uid = 0;
  gid_t gid = 0;  // the group given, else the user's primary group
  bool group_given = false;
};

// "name", "uid", "name:group", "uid:gid" (and mixes). A number need not exist
// in the files; a name must. A numeric user without an entry gets gid 0, as
// Docker does for `USER 1234`.
absl::StatusOr<UserSpec> ResolveUser(int root_fd, const std::string& spec);

// Parsers for the file contents, for tests: the id of `name` or nullopt-like
// NotFound.
absl::StatusOr<std::pair<uid_t, gid_t>> LookupPasswd(
    absl::string_view passwd, absl::string_view name_or_uid);
absl::StatusOr<gid_t> LookupGroup(absl::string_view group,
                                  absl::string_view name);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_PASSWD_H_
