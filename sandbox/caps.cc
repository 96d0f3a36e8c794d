#include "sandbox/caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace longshore::sandbox {

uint64_t DockerDefaultCapabilities() {
  constexpr int kCaps[] = {
      CAP_CHOWN,       CAP_DAC_OVERRIDE, CAP_FOWNER,
      CAP_FSETID,      CAP_KILL,         CAP_SETGID,
      CAP_SETUID,      CAP_SETPCAP,      CAP_NET_BIND_SERVICE,
      CAP_NET_RAW,     CAP_SYS_CHROOT,   CAP_MKNOD,
      CAP_AUDIT_WRITE, CAP_SETFCAP};
  uint64_t mask = 0;
  for (int c : kCaps) mask |= uint64_t{1} << c;
  return mask;
}

int DropBoundingSet() {
  const uint64_t keep = DockerDefaultCapabilities();
  for (int cap = 0; cap < 64; ++cap) {
    if (keep & (uint64_t{1} << cap)) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      // EINVAL: past the kernel's last capability; all are dropped.
      if (errno == EINVAL) return 0;
      return errno;
    }
  }
  return 0;
}

int SetFinalCapabilities(bool is_root, bool keep_all) {
  uint64_t set = is_root ? DockerDefaultCapabilities() : 0;
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (is_root && keep_all) {
    // Everything permitted now (the namespace's full set, as the bounding
    // set was left alone); capset refuses bits beyond it.
    if (::syscall(SYS_capget, &header, data) != 0) return errno;
    set = uint64_t{data[0].permitted} | (uint64_t{data[1].permitted} << 32);
    data[0] = data[1] = {};
  }
  data[0].effective = data[0].permitted = static_cast<uint32_t>(set);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(set >> 32);
  if (::syscall(SYS_capset, &header, data) != 0) return errno;
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
      errno != EINVAL) {
    return errno;
  }
  return 0;
}

uint64_t EffectiveCapabilities() {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return 0;
  return uint64_t{data[0].effective} | (uint64_t{data[1].effective} << 32);
}

}  // namespace longshore::sandbox
