// The worker's user namespace: the worker re-executes itself, before any thread
// exists, inside a user namespace that maps ids 0..65535 to its subordinate
// range, so it is root over image files (which belong to that range on disk).
// See DESIGN.md, "Image files belong to the worker's subuid range".
#ifndef LONGSHORE_SANDBOX_USERNS_H_
#define LONGSHORE_SANDBOX_USERNS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sandbox/id_mapping.h"

namespace longshore::sandbox {

// Environment variable set in the re-executed process.
inline constexpr char kUserNamespaceMarkerEnv[] = "LONGSHORE_IN_USERNS";

struct UserNamespaceOptions {
  // Real root (uid 0 in the initial user namespace) is refused unless set. With
  // it, root enters a namespace over its own subordinate range when it has one,
  // and otherwise stays where it is (with a warning).
  bool allow_real_root = false;
  // Receives warnings (single-id fallback, ...). Unset: LS_LOG(WARNING).
  std::function<void(const std::string&)> warn;
  // How many ids, from 0 inside, map to the subordinate range.
  uint32_t range_size = 65536;
  // Also map the caller's own uid/gid at inside id `range_size` (so the worker
  // keeps access to its own state files; steps, whose nested namespace maps
  // only 0..range_size-1, see them as unowned).
  bool map_own_ids = true;
  std::string subuid_path = "/etc/subuid";
  std::string subgid_path = "/etc/subgid";
  std::string newuidmap = "newuidmap";
  std::string newgidmap = "newgidmap";
};

// How a new user namespace made by an unprivileged process gets its maps.
struct UserNamespacePlan {
  std::vector<IdMapExtent> uid_map;
  std::vector<IdMapExtent> gid_map;
  // True: write the maps with newuidmap/newgidmap (setuid helpers, from the
  // parent namespace). False: a single-id map of the caller's own ids, written
  // directly with setgroups denied.
  bool use_helpers = false;
  // Non-empty when the plan is a degraded one the operator should hear about.
  std::string warning;
};

// If not already done, re-executes the current binary (/proc/self/exe, same
// argv, environment plus kUserNamespaceMarkerEnv=1) inside a new user namespace
// mapped as described above and returns only in that child, as uid/gid 0 with
// no supplementary groups. The parent waits, forwards SIGTERM, SIGINT, SIGHUP,
// SIGQUIT, SIGUSR1 and SIGUSR2, and exits with the child's status (re-raising
// the child's terminating signal). Must be called before any thread exists:
// returns FailedPrecondition otherwise, and for real root without
// allow_real_root. Errors are returned only in the original process.
absl::Status EnterUserNamespace(const UserNamespaceOptions& opts);

// True in a process (re-)executed by EnterUserNamespace, or a descendant of
// one that kept its environment, while inside a non-initial user namespace.
bool InWorkerUserNamespace();

// True when the calling process is in the initial user namespace.
bool InInitialUserNamespace();

// FailedPrecondition unless the calling process has exactly one thread.
absl::Status CheckSingleThreaded();

// The maps for a namespace created by the calling (unprivileged) user:
// subordinate ranges when the user has them and the helpers exist, else the
// single-id fallback with a warning.
absl::StatusOr<UserNamespacePlan> PlanUserNamespace(
    const UserNamespaceOptions& opts);

// Writes the plan's maps for `pid`, which has created (but not yet used) its
// user namespace. Call from the parent namespace.
absl::Status ApplyUserNamespacePlan(pid_t pid, const UserNamespacePlan& plan,
                                    const UserNamespaceOptions& opts);

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_USERNS_H_
