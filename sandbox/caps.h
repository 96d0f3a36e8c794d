// Capability sets for a step: Docker's default set, nothing else.
#ifndef LONGSHORE_SANDBOX_CAPS_H_
#define LONGSHORE_SANDBOX_CAPS_H_

#include <cstdint>

namespace longshore::sandbox {

// CAP_CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
// NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
uint64_t DockerDefaultCapabilities();

// Drops every capability outside DockerDefaultCapabilities() from the
// bounding set. Needs CAP_SETPCAP, so call before changing uid. Returns 0 or
// an errno value; async-signal-safe.
int DropBoundingSet();

// After the final setresuid: root keeps the default set as effective and
// permitted, any other uid none; inheritable and ambient are emptied (as
// runc does since CVE-2022-24769). Returns 0 or an errno value.
// With `keep_all` (RUN --security=insecure), root keeps every capability it
// holds in the step's user namespace as effective and permitted instead.
int SetFinalCapabilities(bool is_root, bool keep_all = false);

// The calling thread's effective capability mask (0 on error).
uint64_t EffectiveCapabilities();

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_CAPS_H_
