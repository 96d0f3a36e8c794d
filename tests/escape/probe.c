// Escape attempts run as RUN steps of real builds. Each attempt runs in a
// child process and prints one line "PROBE <name>: <result>", where the
// result is the errno name the kernel or the seccomp filter gave ("EPERM"),
// "OK" when the call succeeded (an escape), "SIG<n>" when the attempt was
// killed, or a short observation. The program always exits 0 so a build goes
// on to the next RUN; tests/escape/escape_test.sh asserts on the lines.
//
//   probe NAME[=ARG] ...
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif

static const char* arg_ = "";
// The result pipe; children that only wait must not hold it open.
static int result_fd_ = -1;

static const char* ErrName(int e) {
  switch (e) {
    case EPERM:
      return "EPERM";
    case ENOENT:
      return "ENOENT";
    case ESRCH:
      return "ESRCH";
    case EIO:
      return "EIO";
    case ENXIO:
      return "ENXIO";
    case EBADF:
      return "EBADF";
    case EAGAIN:
      return "EAGAIN";
    case ENOMEM:
      return "ENOMEM";
    case EACCES:
      return "EACCES";
    case EFAULT:
      return "EFAULT";
    case EBUSY:
      return "EBUSY";
    case EEXIST:
      return "EEXIST";
    case ENOTDIR:
      return "ENOTDIR";
    case EINVAL:
      return "EINVAL";
    case ETXTBSY:
      return "ETXTBSY";
    case EFBIG:
      return "EFBIG";
    case ENOSPC:
      return "ENOSPC";
    case EROFS:
      return "EROFS";
    case ENOTTY:
      return "ENOTTY";
    case ENOSYS:
      return "ENOSYS";
    case ELOOP:
      return "ELOOP";
    case EAFNOSUPPORT:
      return "EAFNOSUPPORT";
    case ENETUNREACH:
      return "ENETUNREACH";
    case EHOSTUNREACH:
      return "EHOSTUNREACH";
    case ECONNREFUSED:
      return "ECONNREFUSED";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case EOPNOTSUPP:
      return "EOPNOTSUPP";
    case EXDEV:
      return "EXDEV";
    default: {
      static char buf[32];
      snprintf(buf, sizeof(buf), "errno%d", e);
      return buf;
    }
  }
}

// The result of a call returning -1/errno on failure.
static const char* R(long rc) { return rc < 0 ? ErrName(errno) : "OK"; }

static const char* Mount(void) {
  return R(mount("none", "/mnt", "tmpfs", 0, NULL));
}
// /proc/sys is a read-only bind made by pid 1: make it writable again.
static const char* RemountRw(void) {
  return R(mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL));
}
// Unmount the /dev/null mask over /proc/kcore to reveal the real file.
static const char* Umount(void) {
  return R(umount2("/proc/kcore", MNT_DETACH));
}
static const char* UnshareUser(void) { return R(unshare(CLONE_NEWUSER)); }
static const char* UnshareMount(void) { return R(unshare(CLONE_NEWNS)); }
static const char* CloneNewUser(void) {
  long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid((pid_t)pid, NULL, 0);
  return R(pid);
}
static const char* Clone3(void) {
  uint64_t args[11] = {0};
  args[4] = SIGCHLD;  // exit_signal
  long pid = syscall(SYS_clone3, args, sizeof(args));
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid((pid_t)pid, NULL, 0);
  return R(pid);
}
// setns into the namespace of pid 1 (the sandbox's own process).
static const char* OpenPid1Ns(void) {
  return R(open("/proc/1/ns/user", O_RDONLY));
}
static const char* Setns(void) {
  int fd = open("/proc/self/ns/net", O_RDONLY);
  if (fd < 0) return ErrName(errno);
  return R(setns(fd, 0));
}
static const char* PtracePid1(void) {
  return R(ptrace(PTRACE_ATTACH, 1, NULL, NULL));
}
static const char* ProcessVmWritevPid1(void) {
  char buf[8] = {0};
  struct iovec local = {buf, sizeof(buf)};
  struct iovec remote = {(void*)0x400000, sizeof(buf)};
  return R(syscall(SYS_process_vm_writev, 1, &local, 1, &remote, 1, 0));
}
// Pid 1 shares its memory with the sandbox process outside the step's
// namespaces: writing it through /proc would be an escape.
static const char* Pid1Mem(void) { return R(open("/proc/1/mem", O_RDWR)); }
// ARG: a pid outside the step (the worker's, on the host).
static const char* KillOutside(void) { return R(kill(atoi(arg_), SIGKILL)); }
static const char* Pid1Exe(void) { return R(open("/proc/1/exe", O_WRONLY)); }
static const char* SelfExe(void) { return R(open("/proc/self/exe", O_WRONLY)); }
static const char* Pid1Root(void) { return R(open("/proc/1/root/", O_RDONLY)); }
static const char* Pid1Environ(void) {
  return R(open("/proc/1/environ", O_RDONLY));
}
static const char* ProcSys(void) {
  return R(open("/proc/sys/kernel/hostname", O_WRONLY));
}
static const char* Sysrq(void) {
  return R(open("/proc/sysrq-trigger", O_WRONLY));
}
static const char* SysWrite(void) {
  return R(open("/sys/kernel/profiling", O_WRONLY));
}
// ARG: a masked /proc file (bound to /dev/null): reading gives nothing.
static const char* Masked(void) {
  int fd = open(arg_, O_RDONLY);
  if (fd < 0) return ErrName(errno);
  char buf[16];
  ssize_t n = read(fd, buf, sizeof(buf));
  return n == 0 ? "EMPTY" : n < 0 ? ErrName(errno) : "DATA";
}
static const char* Keyctl(void) {
  return R(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
}
static const char* AddKey(void) {
  return R(syscall(SYS_add_key, "user", "probe", "x", 1, -3));
}
static const char* Bpf(void) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  return R(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr)));
}
static const char* PerfEventOpen(void) {
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  return R(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}
static const char* Userfaultfd(void) { return R(syscall(SYS_userfaultfd, 0)); }
static const char* IoUringSetup(void) {
  char params[120] = {0};
  return R(syscall(SYS_io_uring_setup, 4, params));
}
static const char* OpenByHandleAt(void) {
  char handle[64] = {0};
  ((unsigned*)handle)[0] = 8;  // handle_bytes
  return R(syscall(SYS_open_by_handle_at, AT_FDCWD, handle, O_RDONLY));
}
static const char* Vsock(void) { return R(socket(AF_VSOCK, SOCK_STREAM, 0)); }
static const char* Alg(void) { return R(socket(AF_ALG, SOCK_SEQPACKET, 0)); }
// Raw packets would bypass the routes that keep the step off addresses.
static const char* PacketSocket(void) {
  return R(socket(AF_PACKET, SOCK_RAW, htons(3 /* ETH_P_ALL */)));
}
static const char* Personality(void) {
  return R(personality(READ_IMPLIES_EXEC));
}
// The x32 ABI: the same kernel entry with bit 30 set in the call number.
static const char* X32Mount(void) {
  return R(syscall(0x40000000 | SYS_mount, "none", "/mnt", "tmpfs", 0, 0));
}
static const char* X32Unshare(void) {
  return R(syscall(0x40000000 | SYS_unshare, CLONE_NEWUSER));
}
// The i386 ABI through int 0x80: mount is 21 there.
static const char* Int80Mount(void) {
  static const char src[] = "none", dst[] = "/mnt", fs[] = "tmpfs";
  long rc;
  __asm__ volatile("int $0x80"
                   : "=a"(rc)
                   : "a"(21L), "b"(src), "c"(dst), "d"(fs), "S"(0L), "D"(0L)
                   : "memory");
  if (rc < 0 && rc > -4096) return ErrName((int)-rc);
  return "OK";
}
static const char* Mknod(void) {
  return R(mknod("/probe-sda", S_IFBLK | 0600, makedev(8, 0)));
}
// The classic chroot escape, then a look for a host path (ARG) that must not
// be visible from wherever it ends up.
static const char* ChrootEscape(void) {
  static char out[64];
  if (mkdir("/probe-jail", 0755) != 0 && errno != EEXIST) {
    snprintf(out, sizeof(out), "SETUP-%s", ErrName(errno));
    return out;
  }
  if (chroot("/probe-jail") != 0) {
    snprintf(out, sizeof(out), "SETUP-%s", ErrName(errno));
    return out;
  }
  for (int i = 0; i < 64; ++i) (void)chdir("..");
  if (chroot(".") != 0) return ErrName(errno);
  struct stat st;
  return R(stat(arg_, &st));
}
// ARG: a host path (the worker's work directory).
static const char* HostPath(void) {
  struct stat st;
  return R(stat(arg_, &st));
}
// Descriptors other than 0-2 (the listing's own is excluded).
static const char* FdLeak(void) {
  DIR* d = opendir("/proc/self/fd");
  if (d == NULL) return ErrName(errno);
  static char out[128];
  out[0] = '\0';
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d) || fd == result_fd_) {
      continue;
    }
    ++n;
  }
  closedir(d);
  snprintf(out, sizeof(out), "%d", n);
  return out;
}
// Anything of the worker's environment in ours.
static const char* Environ(void) {
  extern char** environ;
  for (char** e = environ; *e != NULL; ++e) {
    if (strncmp(*e, "LONGSHORE", 9) == 0 || strncmp(*e, "HOME=/tmp", 9) == 0) {
      return "LEAKED";
    }
  }
  return "CLEAN";
}
static const char* DevTty(void) { return R(open("/dev/tty", O_RDWR)); }
static const char* Tiocsti(void) {
  char c = 'x';
  return R(ioctl(0, TIOCSTI, &c));
}
// ARG: IPv4:PORT.
static const char* Connect(void) {
  char host[64];
  snprintf(host, sizeof(host), "%s", arg_);
  char* colon = strchr(host, ':');
  if (colon == NULL) return "BADARG";
  *colon = '\0';
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)atoi(colon + 1));
  inet_pton(AF_INET, host, &sin.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return ErrName(errno);
  struct timeval tv = {3, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return R(connect(fd, (struct sockaddr*)&sin, sizeof(sin)));
}
// setuid-root binaries: run as a non-root user, the effective uid must stay.
static const char* Euid(void) {
  static char out[64];
  snprintf(out, sizeof(out), "uid=%d euid=%d", (int)getuid(), (int)geteuid());
  return out;
}
// Fork until the kernel refuses; the children wait to be killed.
static const char* ForkBomb(void) {
  static char out[64];
  int n = 0;
  for (;;) {
    pid_t p = fork();
    if (p == 0) {
      close(result_fd_);
      pause();
      _exit(0);
    }
    if (p < 0) break;
    ++n;
    if (n > 100000) return "UNLIMITED";
  }
  int err = errno;
  snprintf(out, sizeof(out), "%s", ErrName(err));
  return out;
}
// Allocate and touch memory until the kernel refuses (ARG: MiB to try).
static const char* Memory(void) {
  long mib = atol(arg_);
  for (long i = 0; i < mib; ++i) {
    char* p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return ErrName(errno);
    memset(p, 1, 1 << 20);
  }
  return "OK";
}

struct Attempt {
  const char* name;
  const char* (*run)(void);
};

static const struct Attempt kAttempts[] = {
    {"mount", Mount},
    {"remount_rw", RemountRw},
    {"umount_mask", Umount},
    {"unshare_user", UnshareUser},
    {"unshare_mount", UnshareMount},
    {"clone_newuser", CloneNewUser},
    {"clone3", Clone3},
    {"open_pid1_ns", OpenPid1Ns},
    {"setns", Setns},
    {"ptrace_pid1", PtracePid1},
    {"process_vm_writev_pid1", ProcessVmWritevPid1},
    {"pid1_mem", Pid1Mem},
    {"kill_outside", KillOutside},
    {"write_pid1_exe", Pid1Exe},
    {"write_self_exe", SelfExe},
    {"pid1_root", Pid1Root},
    {"pid1_environ", Pid1Environ},
    {"proc_sys_write", ProcSys},
    {"sysrq_trigger", Sysrq},
    {"sys_write", SysWrite},
    {"masked", Masked},
    {"keyctl", Keyctl},
    {"add_key", AddKey},
    {"bpf", Bpf},
    {"perf_event_open", PerfEventOpen},
    {"userfaultfd", Userfaultfd},
    {"io_uring_setup", IoUringSetup},
    {"open_by_handle_at", OpenByHandleAt},
    {"af_vsock", Vsock},
    {"af_alg", Alg},
    {"af_packet", PacketSocket},
    {"personality", Personality},
    {"x32_mount", X32Mount},
    {"x32_unshare", X32Unshare},
    {"int80_mount", Int80Mount},
    {"mknod", Mknod},
    {"chroot_escape", ChrootEscape},
    {"host_path", HostPath},
    {"fd_leak", FdLeak},
    {"environ", Environ},
    {"dev_tty", DevTty},
    {"tiocsti", Tiocsti},
    {"connect", Connect},
    {"euid", Euid},
    {"forkbomb", ForkBomb},
    {"memory", Memory},
};

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  for (int i = 1; i < argc; ++i) {
    char name[64];
    snprintf(name, sizeof(name), "%s", argv[i]);
    char* eq = strchr(name, '=');
    arg_ = "";
    if (eq != NULL) {
      *eq = '\0';
      arg_ = strchr(argv[i], '=') + 1;
    }
    const struct Attempt* a = NULL;
    for (size_t k = 0; k < sizeof(kAttempts) / sizeof(kAttempts[0]); ++k) {
      if (strcmp(kAttempts[k].name, name) == 0) a = &kAttempts[k];
    }
    if (a == NULL) {
      printf("PROBE %s: UNKNOWN\n", name);
      continue;
    }
    int pipefd[2];
    if (pipe(pipefd) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
      close(pipefd[0]);
      result_fd_ = pipefd[1];
      // Its own process group, so a fork bomb's children go with it.
      setpgid(0, 0);
      const char* r = a->run();
      char line[256];
      int n = snprintf(line, sizeof(line), "PROBE %s: %s\n", name, r);
      (void)!write(pipefd[1], line, (size_t)n);
      _exit(0);
    }
    close(pipefd[1]);
    if (child < 0) {
      printf("PROBE %s: fork %s\n", name, ErrName(errno));
      close(pipefd[0]);
      continue;
    }
    char buf[256];
    ssize_t n = read(pipefd[0], buf, sizeof(buf) - 1);
    close(pipefd[0]);
    int status = 0;
    waitpid(child, &status, 0);
    kill(-child, SIGKILL);
    while (waitpid(-child, NULL, 0) > 0) {
    }
    if (n > 0) {
      buf[n] = '\0';
      fputs(buf, stdout);
    } else if (WIFSIGNALED(status)) {
      printf("PROBE %s: SIG%d\n", name, WTERMSIG(status));
    } else {
      printf("PROBE %s: NORESULT\n", name);
    }
  }
  return 0;
}
