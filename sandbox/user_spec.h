// `--user user[:group]` resolved against the image's /etc/passwd and
// /etc/group, with the semantics of Docker's USER instruction.
#ifndef LONGSHORE_SANDBOX_USER_SPEC_H_
#define LONGSHORE_SANDBOX_USER_SPEC_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::sandbox {

struct ResolvedUser {
  uid_t uid = 0;
  gid_t gid = 0;
  // Supplementary groups for setgroups(2).
  std::vector<gid_t> groups;
  std::string name;  // Empty for a numeric uid absent from /etc/passwd.
  std::string home;
};

// Resolves `spec` ("name", "1000", "name:group", "1000:1000", ...):
//  - a user name must exist in `passwd`; a numeric uid need not (then the
//    primary group is 0, as in Docker);
//  - an explicit group (name from `group`, or a number) replaces the primary
//    group and suppresses supplementary groups; without one, the groups that
//    list the user's name as a member become supplementary groups.
// `passwd` and `group` are the files' contents (possibly empty: an image
// without them).
absl::StatusOr<ResolvedUser> ResolveUser(absl::string_view spec,
                                         absl::string_view passwd,
                                         absl::string_view group);

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_USER_SPEC_H_
