#include "sandbox/seccomp_policy.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace longshore::sandbox {
namespace {

// Calls allowed unconditionally, as in Docker's default profile. Names unknown
// to an architecture are skipped for it. Absent on purpose (they need a
// capability Docker does not grant by default, or were removed from its
// profile): mount, umount2, pivot_root, unshare, setns, clone3 (answered with
// ENOSYS below so libc falls back to clone), bpf, perf_event_open,
// userfaultfd, keyctl, add_key, request_key, io_uring_*, open_by_handle_at,
// kexec_*, *_module, reboot, swapon/swapoff, syslog, acct, quotactl,
// settimeofday, iopl/ioperm, lookup_dcookie, fanotify_init, vhangup,
// *_mempolicy, mbind.
constexpr const char* kAllowed[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_getfd",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // x86 specific, allowed by Docker on amd64, x32 and x86.
    "arch_prctl",
    "modify_ldt",
    // CAP_SYS_CHROOT is in Docker's default capability set.
    "chroot",
};

constexpr const char* kPtraceCalls[] = {"ptrace", "process_vm_readv",
                                        "process_vm_writev"};

// clone(2) may not create namespaces (Docker: without CAP_SYS_ADMIN).
constexpr uint64_t kCloneNamespaceFlags =
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
    CLONE_NEWNET | CLONE_NEWCGROUP;

// personality(2) values Docker allows: PER_LINUX, UNAME26, PER_LINUX32,
// UNAME26|PER_LINUX32 and the query value 0xffffffff.
constexpr uint64_t kPersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

// socket(2) families allowed: everything below AF_ALG (38), and AF_NFC (39)
// and AF_KCM .. AF_MCTP (41..45). Docker refuses AF_VSOCK (40); AF_ALG is
// refused too (kernel crypto API, a recurring source of bugs and no use in a
// build). The rules compare for equality or "less than", never "not equal",
// so a value with high bits set cannot slip past a 64-bit comparison while
// the kernel reads a 32-bit int.
constexpr uint64_t kSocketFamilyLimit = 38;
constexpr uint64_t kSocketExtraFamilies[] = {39, 41, 42, 43, 44, 45};

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using FilterPtr = std::unique_ptr<void, FilterDeleter>;

absl::Status LibStatus(int rc, const std::string& operation) {
  // libseccomp returns negative errno values.
  return ErrnoStatus(-rc, "%s", operation);
}

absl::Status AddRule(scmp_filter_ctx ctx, uint32_t action, const char* name,
                     std::vector<scmp_arg_cmp> args = {}) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return absl::OkStatus();  // Unknown everywhere.
  int rc = seccomp_rule_add_array(ctx, action, nr, args.size(),
                                  args.empty() ? nullptr : args.data());
  // -EDOM/-EINVAL here mean the call does not exist on one of the filter's
  // architectures (or cannot take argument rules there, as with i386's
  // multiplexed socketcall); libseccomp still adds it where it can.
  if (rc != 0 && rc != -EDOM && rc != -EINVAL && rc != -EEXIST) {
    return LibStatus(rc, absl::StrCat("seccomp_rule_add(", name, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<FilterPtr> BuildFilter(const SeccompPolicyOptions& opts) {
  FilterPtr ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  if (!ctx) return absl::InternalError("seccomp_init failed");
  scmp_filter_ctx f = ctx.get();
  // A call from an architecture the filter does not know kills the process.
  int rc = seccomp_attr_set(f, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc != 0) return LibStatus(rc, "seccomp_attr_set(ACT_BADARCH)");
  // The sandbox sets no_new_privs itself, right before installing.
  rc = seccomp_attr_set(f, SCMP_FLTATR_CTL_NNP, 0);
  if (rc != 0) return LibStatus(rc, "seccomp_attr_set(CTL_NNP)");
  if (opts.binary_tree) {
    rc = seccomp_attr_set(f, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (rc != 0) return LibStatus(rc, "seccomp_attr_set(CTL_OPTIMIZE)");
  }
  if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
    // i386 (int 0x80) and x32 calls enter the same kernel; without these
    // entries they would meet the bad-arch action, with them they meet the
    // same allow-list as native calls.
    for (uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
      rc = seccomp_arch_add(f, arch);
      if (rc != 0 && rc != -EEXIST) return LibStatus(rc, "seccomp_arch_add");
    }
  }
  for (const char* name : kAllowed) {
    RETURN_IF_ERROR(AddRule(f, SCMP_ACT_ALLOW, name));
  }
  if (opts.allow_ptrace) {
    for (const char* name : kPtraceCalls) {
      RETURN_IF_ERROR(AddRule(f, SCMP_ACT_ALLOW, name));
    }
  }
  RETURN_IF_ERROR(
      AddRule(f, SCMP_ACT_ALLOW, "clone",
              {SCMP_A0(SCMP_CMP_MASKED_EQ, kCloneNamespaceFlags, 0)}));
  RETURN_IF_ERROR(AddRule(f, SCMP_ACT_ERRNO(ENOSYS), "clone3"));
  for (uint64_t p : kPersonalities) {
    RETURN_IF_ERROR(
        AddRule(f, SCMP_ACT_ALLOW, "personality", {SCMP_A0(SCMP_CMP_EQ, p)}));
  }
  RETURN_IF_ERROR(AddRule(f, SCMP_ACT_ALLOW, "socket",
                          {SCMP_A0(SCMP_CMP_LT, kSocketFamilyLimit)}));
  for (uint64_t family : kSocketExtraFamilies) {
    RETURN_IF_ERROR(
        AddRule(f, SCMP_ACT_ALLOW, "socket", {SCMP_A0(SCMP_CMP_EQ, family)}));
  }
  return ctx;
}

}  // namespace

absl::StatusOr<std::string> CompileSeccompBpf(
    const SeccompPolicyOptions& opts) {
  ASSIGN_OR_RETURN(FilterPtr ctx, BuildFilter(opts));
  UniqueFd fd(::memfd_create("longshore-seccomp", MFD_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "memfd_create");
  int rc = seccomp_export_bpf(ctx.get(), fd.get());
  if (rc != 0) return LibStatus(rc, "seccomp_export_bpf");
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat(memfd)");
  std::string program(static_cast<size_t>(st.st_size), '\0');
  size_t off = 0;
  while (off < program.size()) {
    ssize_t n = ::pread(fd.get(), program.data() + off, program.size() - off,
                        static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "pread(memfd)");
    }
    if (n == 0) break;
    off += static_cast<size_t>(n);
  }
  program.resize(off);
  RETURN_IF_ERROR(ValidateSeccompBpf(program));
  return program;
}

absl::Status ValidateSeccompBpf(absl::string_view program) {
  if (program.empty() || program.size() % sizeof(struct sock_filter) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("seccomp program of ", program.size(),
                     " bytes is not a whole number of BPF instructions"));
  }
  if (program.size() / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "seccomp program has more than ", BPF_MAXINSNS, " instructions"));
  }
  return absl::OkStatus();
}

absl::Status WriteSeccompBpfFile(const std::string& path,
                                 const SeccompPolicyOptions& opts) {
  ASSIGN_OR_RETURN(std::string program, CompileSeccompBpf(opts));
  return WriteFileAtomic(path, program, 0644);
}

absl::StatusOr<std::string> ReadSeccompBpfFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string program, ReadFile(path));
  absl::Status valid = ValidateSeccompBpf(program);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", valid.message()));
  }
  return program;
}

int InstallSeccompBpf(absl::string_view program) {
  struct sock_fprog prog;
  prog.len =
      static_cast<unsigned short>(program.size() / sizeof(struct sock_filter));
  prog.filter =
      reinterpret_cast<struct sock_filter*>(const_cast<char*>(program.data()));
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
    return errno;
  }
  return 0;
}

}  // namespace longshore::sandbox
