// Assembles a step's root inside a fresh mount namespace and pivots into it:
// overlay (or a bind of a plain directory), /proc with crun's masks, /dev as a
// tmpfs of bind-mounted nodes plus a new devpts, /sys read-only, and the
// provided /etc/hosts, /etc/resolv.conf and /etc/hostname.
#ifndef LONGSHORE_SANDBOX_ROOTFS_H_
#define LONGSHORE_SANDBOX_ROOTFS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sandbox/options.h"

namespace longshore::sandbox {

struct RootfsSpec {
  // Overlay layers, top-most first; empty means `empty_lower` is the lower.
  std::vector<std::string> lowers;
  std::string upper;
  std::string work;
  // When set, a recursive bind of this directory is the root instead.
  std::string rootfs_dir;
  // An empty directory of the host's on which SetUpRootfs mounts a small
  // tmpfs (in the step's mount namespace only) holding the root's mount
  // point, the empty lower and the files below, so setting up a step writes
  // nothing to the host's disk and the caller only removes this directory.
  std::string scratch_dir;
  // Contents of the root's /etc/hosts, /etc/resolv.conf and /etc/hostname.
  std::string hosts;
  std::string resolv_conf;
  std::string hostname;
  // True when the step has its own network namespace (owned by the user
  // namespace doing the mounts): loopback is brought up, sysfs mounted and the
  // per-namespace sysctls set.
  bool own_network = true;
  // With own_network: destinations the step must not reach get "prohibit"
  // routes (--network default: link-local/cloud metadata, slirp's host
  // loopback alias).
  bool block_private_destinations = false;
  // The step has a cgroup of its own (its cgroup namespace's root): with
  // own_network, cgroup2 is mounted read-only at /sys/fs/cgroup, so tools see
  // the step's limits as in a container.
  bool cgroup2 = false;
  // Size of the /dev/shm tmpfs (--shm-size).
  uint64_t shm_bytes = 64 << 20;
  // Host paths and tmpfs mounted inside the root (RUN --mount).
  std::vector<BindMountSpec> binds;
  std::vector<TmpfsMountSpec> tmpfs;
};

// Runs in the step's pid 1, in a new mount namespace. Mount points missing
// from the image are created and their root-relative paths appended to
// `stubs` (so they can be removed from the upper directory afterwards). On
// return the process's root and cwd are the new root and the old root is
// detached.
absl::Status SetUpRootfs(const RootfsSpec& spec,
                         std::vector<std::string>* stubs);

// Brings the loopback interface of the current network namespace up.
absl::Status BringUpLoopback();

// Removes the mount-point stubs recorded by SetUpRootfs (deepest first) if
// they are still empty files or directories. Runs after pivot_root, once the
// step's processes are gone. Best effort.
void RemoveStubs(const std::vector<std::string>& stubs);

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_ROOTFS_H_
