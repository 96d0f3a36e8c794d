#include "sandbox/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "sandbox/id_mapping.h"
#include "sandbox/in_root.h"
#include "sandbox/network.h"

namespace longshore::sandbox {
namespace {

constexpr unsigned long kNoSuidDevExec = MS_NOSUID | MS_NODEV | MS_NOEXEC;

// Masked as crun and Docker do: files get /dev/null, directories an empty
// read-only tmpfs.
constexpr const char* kMaskedProcPaths[] = {
    "acpi",          "asound",      "interrupts", "kcore",      "keys",
    "latency_stats", "sched_debug", "scsi",       "timer_list", "timer_stats"};
constexpr const char* kReadOnlyProcPaths[] = {"bus", "fs", "irq", "sys",
                                              "sysrq-trigger"};
constexpr const char* kMaskedSysPaths[] = {
    "firmware", "fs/selinux", "dev/block", "devices/virtual/powercap",
    "kernel/security"};

// Provided by the sandbox, in this order: RootfsSpec::hosts, resolv_conf,
// hostname.
constexpr const char* kEtcFiles[] = {"hosts", "resolv.conf", "hostname"};

constexpr const char* kDeviceNodes[] = {"null",   "zero",    "full",
                                        "random", "urandom", "tty"};

absl::Status Mount(const std::string& source, const std::string& target,
                   const char* fstype, unsigned long flags,
                   const std::string& data, const std::string& display) {
  if (::mount(source.c_str(), target.c_str(), fstype, flags,
              data.empty() ? nullptr : data.c_str()) != 0) {
    return ErrnoStatus(errno, "mount(%s, %s)",
                       fstype != nullptr ? fstype : source, display);
  }
  return absl::OkStatus();
}

// Binds `source` (a host path) onto the file or directory `target_fd` refers
// to.
absl::Status BindOnto(const std::string& source, int target_fd,
                      const std::string& display, unsigned long extra = 0) {
  return Mount(source, FdPath(target_fd), nullptr, MS_BIND | extra, "",
               display);
}

// Makes `dir_fd`/`rel` a read-only (and nosuid, nodev, noexec) mount of its
// own: a detached recursive clone of the path is made read-only and moved on
// top of it. Three calls, against four for bind, reopen, remount, and the
// flags cover submounts too.
absl::Status MakeReadOnly(int dir_fd, const std::string& rel,
                          const std::string& display) {
  UniqueFd tree(::open_tree(dir_fd, rel.c_str(),
                            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE |
                                AT_SYMLINK_NOFOLLOW));
  if (!tree) {
    if (errno == ENOENT) return absl::OkStatus();  // Absent in this kernel.
    return ErrnoStatus(errno, "open_tree(%s)", display);
  }
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                  MOUNT_ATTR_NOEXEC;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                      sizeof(attr)) != 0) {
    return ErrnoStatus(errno, "mount_setattr(%s, read-only)", display);
  }
  if (::move_mount(tree.get(), "", dir_fd, rel.c_str(),
                   MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return ErrnoStatus(errno, "move_mount(%s)", display);
  }
  return absl::OkStatus();
}

// Covers files with /dev/null and directories with an empty read-only
// directory. Directories share one tmpfs (size=0, mode 555, read-only,
// nosuid/nodev/noexec): the first is mounted, every later one is a bind of
// it, a mount without a superblock to create at set-up and shut down at exit.
class Masker {
 public:
  absl::Status Mask(int dir_fd, const std::string& rel,
                    const std::string& display) {
    UniqueFd fd(::openat(dir_fd, rel.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT || errno == ENOTDIR) return absl::OkStatus();
      return ErrnoStatus(errno, "open(%s)", display);
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0)
      return ErrnoStatus(errno, "fstat(%s)", display);
    if (!S_ISDIR(st.st_mode)) return BindOnto("/dev/null", fd.get(), display);
    if (empty_dir_) {
      return Mount(FdPath(empty_dir_.get()), FdPath(fd.get()), nullptr, MS_BIND,
                   "", display);
    }
    RETURN_IF_ERROR(Mount("tmpfs", FdPath(fd.get()), "tmpfs",
                          MS_RDONLY | kNoSuidDevExec, "size=0,mode=555",
                          display));
    // Reopen: the old fd still names the covered dentry, not the new mount.
    empty_dir_.reset(::openat(dir_fd, rel.c_str(),
                              O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC));
    if (!empty_dir_) return ErrnoStatus(errno, "open(%s)", display);
    return absl::OkStatus();
  }

 private:
  UniqueFd empty_dir_;
};

absl::Status WriteAt(int dir_fd, const char* rel, const char* value) {
  UniqueFd fd(::openat(dir_fd, rel, O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(/proc/%s)", rel);
  const size_t len = strlen(value);
  if (::write(fd.get(), value, len) != static_cast<ssize_t>(len)) {
    return ErrnoStatus(errno, "write(/proc/%s)", rel);
  }
  return absl::OkStatus();
}

absl::Status MountProc(int root_fd, const RootfsSpec& spec, Masker* masker,
                       std::vector<std::string>* stubs) {
  ASSIGN_OR_RETURN(UniqueFd target,
                   MakeDirsInRoot(root_fd, "/proc", 0555, -1, -1, stubs));
  // The kernel allows a new proc mount in a user namespace only for the pid
  // namespace the caller is in, and only while an unobstructed proc is
  // visible in the mount namespace (mnt_too_revealing).
  RETURN_IF_ERROR(
      Mount("proc", FdPath(target.get()), "proc", kNoSuidDevExec, "", "/proc"));
  ASSIGN_OR_RETURN(UniqueFd proc,
                   OpenInRoot(root_fd, "/proc", O_PATH | O_DIRECTORY));
  if (spec.own_network) {
    // Per-network-namespace sysctls, written before /proc/sys turns read-only:
    // the step's nested user namespace does not own the network namespace, so
    // without these root in the step could neither bind ports below 1024 nor
    // use ping sockets (which Docker grants through NET_BIND_SERVICE/NET_RAW).
    RETURN_IF_ERROR(
        WriteAt(proc.get(), "sys/net/ipv4/ip_unprivileged_port_start", "0"));
    // The group range must be mapped in this user namespace.
    absl::StatusOr<std::string> gid_map = ReadFile("/proc/self/gid_map");
    if (!gid_map.ok()) return gid_map.status();
    absl::StatusOr<std::vector<IdMapExtent>> extents = ParseIdMap(*gid_map);
    if (!extents.ok()) return extents.status();
    const uint32_t gids = ContiguousIdsFromZero(*extents);
    if (gids > 0) {
      RETURN_IF_ERROR(WriteAt(proc.get(), "sys/net/ipv4/ping_group_range",
                              absl::StrCat("0 ", gids - 1).c_str()));
    }
  }
  for (const char* rel : kMaskedProcPaths) {
    RETURN_IF_ERROR(masker->Mask(proc.get(), rel, absl::StrCat("/proc/", rel)));
  }
  for (const char* rel : kReadOnlyProcPaths) {
    RETURN_IF_ERROR(MakeReadOnly(proc.get(), rel, absl::StrCat("/proc/", rel)));
  }
  return absl::OkStatus();
}

absl::Status MountDev(int root_fd, uint64_t shm_bytes,
                      std::vector<std::string>* stubs) {
  ASSIGN_OR_RETURN(UniqueFd target,
                   MakeDirsInRoot(root_fd, "/dev", 0755, -1, -1, stubs));
  RETURN_IF_ERROR(Mount("tmpfs", FdPath(target.get()), "tmpfs",
                        MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k",
                        "/dev"));
  ASSIGN_OR_RETURN(UniqueFd dev,
                   OpenInRoot(root_fd, "/dev", O_PATH | O_DIRECTORY));
  // Device nodes cannot be created in a user namespace; bind the host's.
  for (const char* name : kDeviceNodes) {
    const std::string display = absl::StrCat("/dev/", name);
    UniqueFd stub(::openat(dev.get(), name,
                           O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (!stub) return ErrnoStatus(errno, "create(%s)", display);
    RETURN_IF_ERROR(BindOnto(display, stub.get(), display));
  }
  for (const char* dir : {"pts", "shm", "mqueue"}) {
    if (::mkdirat(dev.get(), dir, 0755) != 0) {
      return ErrnoStatus(errno, "mkdir(/dev/%s)", dir);
    }
  }
  UniqueFd pts(::openat(dev.get(), "pts", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!pts) return ErrnoStatus(errno, "open(/dev/pts)");
  // gid=5 (tty) exists only when the namespace maps it; EINVAL means it does
  // not (single-id map), and the default group is used instead.
  absl::Status devpts =
      Mount("devpts", FdPath(pts.get()), "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5", "/dev/pts");
  if (!devpts.ok()) {
    RETURN_IF_ERROR(Mount("devpts", FdPath(pts.get()), "devpts",
                          MS_NOSUID | MS_NOEXEC,
                          "newinstance,ptmxmode=0666,mode=0620", "/dev/pts"));
  }
  UniqueFd shm(::openat(dev.get(), "shm", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!shm) return ErrnoStatus(errno, "open(/dev/shm)");
  RETURN_IF_ERROR(Mount("shm", FdPath(shm.get()), "tmpfs", kNoSuidDevExec,
                        absl::StrCat("mode=1777,size=", shm_bytes),
                        "/dev/shm"));
  UniqueFd mq(::openat(dev.get(), "mqueue", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!mq) return ErrnoStatus(errno, "open(/dev/mqueue)");
  // POSIX message queues are optional for builds; a kernel without
  // CONFIG_POSIX_MQUEUE answers ENODEV and the directory stays empty.
  absl::Status mqueue = Mount("mqueue", FdPath(mq.get()), "mqueue",
                              kNoSuidDevExec, "", "/dev/mqueue");
  if (!mqueue.ok() && !absl::IsUnimplemented(mqueue) &&
      mqueue.message().find("No such device") == absl::string_view::npos) {
    return mqueue;
  }
  const std::pair<const char*, const char*> links[] = {
      {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"},
      {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
      {"pts/ptmx", "ptmx"},
  };
  for (const auto& [target_path, name] : links) {
    if (::symlinkat(target_path, dev.get(), name) != 0) {
      return ErrnoStatus(errno, "symlink(/dev/%s)", name);
    }
  }
  return absl::OkStatus();
}

absl::Status MountSys(int root_fd, const RootfsSpec& spec, Masker* masker,
                      std::vector<std::string>* stubs) {
  ASSIGN_OR_RETURN(UniqueFd target,
                   MakeDirsInRoot(root_fd, "/sys", 0555, -1, -1, stubs));
  // sysfs may only be mounted by the user namespace owning the current
  // network namespace; with the host's network it stays an empty directory.
  if (!spec.own_network) return absl::OkStatus();
  RETURN_IF_ERROR(Mount("sysfs", FdPath(target.get()), "sysfs",
                        MS_RDONLY | kNoSuidDevExec, "", "/sys"));
  ASSIGN_OR_RETURN(UniqueFd sys,
                   OpenInRoot(root_fd, "/sys", O_PATH | O_DIRECTORY));
  for (const char* rel : kMaskedSysPaths) {
    RETURN_IF_ERROR(masker->Mask(sys.get(), rel, absl::StrCat("/sys/", rel)));
  }
  if (spec.cgroup2) {
    UniqueFd cg(::openat(sys.get(), "fs/cgroup",
                         O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!cg) return ErrnoStatus(errno, "open(/sys/fs/cgroup)");
    RETURN_IF_ERROR(Mount("cgroup2", FdPath(cg.get()), "cgroup2",
                          MS_RDONLY | kNoSuidDevExec, "", "/sys/fs/cgroup"));
  }
  return absl::OkStatus();
}

absl::Status BindEtcFiles(int root_fd, const std::string& scratch,
                          std::vector<std::string>* stubs) {
  for (const char* name : kEtcFiles) {
    const std::string path = absl::StrCat("/etc/", name);
    ASSIGN_OR_RETURN(UniqueFd target, MakeFileInRoot(root_fd, path, stubs));
    RETURN_IF_ERROR(
        BindOnto(absl::StrCat(scratch, "/", name), target.get(), path));
  }
  return absl::OkStatus();
}

absl::Status WriteNewFile(int dir_fd, const char* name,
                          const std::string& data) {
  UniqueFd fd(
      ::openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return ErrnoStatus(errno, "create(scratch/%s)", name);
  if (::write(fd.get(), data.data(), data.size()) !=
      static_cast<ssize_t>(data.size())) {
    return ErrnoStatus(errno, "write(scratch/%s)", name);
  }
  return absl::OkStatus();
}

// Mounts the scratch tmpfs and fills it: "root" (the mount point), "empty"
// (the lower of a step without layers) and the /etc files. Its size bounds
// what the step can write through those files.
absl::Status PrepareScratch(const RootfsSpec& spec) {
  const size_t bytes = (1 << 20) + spec.hosts.size() + spec.resolv_conf.size() +
                       spec.hostname.size();
  RETURN_IF_ERROR(Mount("tmpfs", spec.scratch_dir, "tmpfs", kNoSuidDevExec,
                        absl::StrCat("mode=0755,size=", bytes),
                        spec.scratch_dir));
  UniqueFd dir(::open(spec.scratch_dir.c_str(),
                      O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return ErrnoStatus(errno, "open(%s)", spec.scratch_dir);
  for (const char* sub : {"root", "empty"}) {
    if (::mkdirat(dir.get(), sub, 0755) != 0) {
      return ErrnoStatus(errno, "mkdir(scratch/%s)", sub);
    }
  }
  RETURN_IF_ERROR(WriteNewFile(dir.get(), kEtcFiles[0], spec.hosts));
  RETURN_IF_ERROR(WriteNewFile(dir.get(), kEtcFiles[1], spec.resolv_conf));
  return WriteNewFile(dir.get(), kEtcFiles[2], spec.hostname);
}

// RUN --mount: host paths (a cache directory, a secret file, another stage's
// snapshot) and tmpfs. Every target is created inside the root if missing
// (recorded as a stub) and resolved with RESOLVE_IN_ROOT, so an image symlink
// cannot redirect a mount onto the host.
absl::Status MountUserMounts(int root_fd, const RootfsSpec& spec,
                             std::vector<std::string>* stubs) {
  for (const BindMountSpec& b : spec.binds) {
    UniqueFd source(::open(b.source.c_str(), O_PATH | O_CLOEXEC));
    if (!source) return ErrnoStatus(errno, "open(--bind %s)", b.source);
    struct stat st;
    if (::fstat(source.get(), &st) != 0) {
      return ErrnoStatus(errno, "fstat(%s)", b.source);
    }
    absl::StatusOr<UniqueFd> target =
        S_ISDIR(st.st_mode)
            ? MakeDirsInRoot(root_fd, b.target, 0755, -1, -1, stubs)
            : MakeFileInRoot(root_fd, b.target, stubs);
    if (!target.ok()) return target.status();
    RETURN_IF_ERROR(Mount(FdPath(source.get()), FdPath(target->get()), nullptr,
                          MS_BIND | MS_REC, "", b.target));
    // The old fd names the covered dentry; the new mount is on top of it.
    ASSIGN_OR_RETURN(UniqueFd mounted,
                     OpenInRoot(root_fd, b.target, O_PATH | O_NOFOLLOW));
    // mount_setattr only adds restrictions here, so flags the kernel locked
    // on the source mount (nosuid, noexec...) never make it fail, and
    // AT_RECURSIVE covers submounts a plain remount would leave writable.
    struct mount_attr attr = {};
    attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                    (b.writable ? 0 : MOUNT_ATTR_RDONLY);
    if (::mount_setattr(mounted.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                        sizeof(attr)) != 0) {
      return ErrnoStatus(errno, "mount_setattr(%s)", b.target);
    }
  }
  for (const TmpfsMountSpec& t : spec.tmpfs) {
    ASSIGN_OR_RETURN(UniqueFd target,
                     MakeDirsInRoot(root_fd, t.target, 0755, -1, -1, stubs));
    RETURN_IF_ERROR(
        Mount("tmpfs", FdPath(target.get()), "tmpfs", MS_NOSUID | MS_NODEV,
              absl::StrCat("mode=1777,size=", t.size_bytes), t.target));
  }
  return absl::OkStatus();
}

absl::Status PivotInto(int root_fd, const std::string& display) {
  if (::fchdir(root_fd) != 0) return ErrnoStatus(errno, "fchdir(%s)", display);
  // pivot_root(".", ".") stacks the old root on top of the new one at the same
  // place; detaching "." then removes the old root and leaves the new one, with
  // no directory needed inside the image for the old root.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) {
    return ErrnoStatus(errno, "pivot_root(%s)", display);
  }
  if (::umount2(".", MNT_DETACH) != 0) {
    return ErrnoStatus(errno, "umount2(old root)");
  }
  if (::chdir("/") != 0) return ErrnoStatus(errno, "chdir(/)");
  return absl::OkStatus();
}

// Removes work/incompat/volatile/dirty and its directories, left by an
// earlier volatile mount over the same work dir. One failed lookup when the
// directory is fresh.
void ClearVolatileMarker(const std::string& work) {
  const std::string incompat = work + "/work/incompat";
  if (::unlink((incompat + "/volatile/dirty").c_str()) != 0) return;
  ::rmdir((incompat + "/volatile").c_str());
  ::rmdir(incompat.c_str());
}

}  // namespace

absl::Status BringUpLoopback() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return ErrnoStatus(errno, "socket(AF_INET)");
  struct ifreq ifr = {};
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) {
    return ErrnoStatus(errno, "ioctl(lo, SIOCGIFFLAGS)");
  }
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) {
    return ErrnoStatus(errno, "ioctl(lo, SIOCSIFFLAGS)");
  }
  return absl::OkStatus();
}

absl::Status SetUpRootfs(const RootfsSpec& spec,
                         std::vector<std::string>* stubs) {
  // Nothing mounted from here on may propagate back to the parent namespace;
  // slave (not private) still lets host unmounts reach us.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return ErrnoStatus(errno, "mount(/, MS_REC|MS_SLAVE)");
  }
  RETURN_IF_ERROR(PrepareScratch(spec));
  const std::string mount_point = spec.scratch_dir + "/root";
  if (!spec.rootfs_dir.empty()) {
    RETURN_IF_ERROR(Mount(spec.rootfs_dir, mount_point, nullptr,
                          MS_BIND | MS_REC, "", mount_point));
  } else {
    const std::string lowers = spec.lowers.empty()
                                   ? spec.scratch_dir + "/empty"
                                   : absl::StrJoin(spec.lowers, ":");
    // userxattr: in a user namespace overlayfs keeps its metadata in user.*
    // xattrs (trusted.* needs CAP_SYS_ADMIN in the initial namespace).
    // volatile: no sync of the upper filesystem, which overlayfs otherwise
    // runs on the WHOLE filesystem holding the upper dir when the step's
    // mount goes away (waiting for every dirty page on it, the worker's and
    // other steps' included). The layer is read back through the page cache
    // and committed by the worker; after a crash the step runs again in fresh
    // directories. The marker it leaves in the work dir (which makes
    // overlayfs refuse that work dir again) is the caller's, as the work dir
    // is: removing it costs three ext4 directory updates, about 0.7 ms here,
    // and the worker deletes its step directories anyway. A marker left by
    // an earlier run over the same directories is cleared first.
    ClearVolatileMarker(spec.work);
    const std::string data =
        absl::StrCat("lowerdir=", lowers, ",upperdir=", spec.upper,
                     ",workdir=", spec.work, ",userxattr,volatile");
    RETURN_IF_ERROR(
        Mount("overlay", mount_point, "overlay", MS_NODEV, data, mount_point));
  }
  UniqueFd root(::open(mount_point.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return ErrnoStatus(errno, "open(%s)", mount_point);
  if (spec.own_network) RETURN_IF_ERROR(BringUpLoopback());
  if (spec.own_network && spec.block_private_destinations) {
    RETURN_IF_ERROR(ProhibitBlockedDestinations());
  }
  Masker masker;
  RETURN_IF_ERROR(MountProc(root.get(), spec, &masker, stubs));
  RETURN_IF_ERROR(MountDev(root.get(), spec.shm_bytes, stubs));
  RETURN_IF_ERROR(MountSys(root.get(), spec, &masker, stubs));
  RETURN_IF_ERROR(BindEtcFiles(root.get(), spec.scratch_dir, stubs));
  RETURN_IF_ERROR(MountUserMounts(root.get(), spec, stubs));
  return PivotInto(root.get(), mount_point);
}

void RemoveStubs(const std::vector<std::string>& stubs) {
  UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return;
  for (auto it = stubs.rbegin(); it != stubs.rend(); ++it) {
    const std::string& path = *it;
    ::umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    const std::string base = path.substr(slash + 1);
    absl::StatusOr<UniqueFd> parent =
        OpenInRoot(root.get(), dir, O_PATH | O_DIRECTORY);
    if (!parent.ok()) continue;
    struct stat st;
    if (::fstatat(parent->get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      ::unlinkat(parent->get(), base.c_str(), AT_REMOVEDIR);  // Fails if used.
    } else if (S_ISREG(st.st_mode) && st.st_size == 0) {
      ::unlinkat(parent->get(), base.c_str(), 0);
    }
  }
}

}  // namespace longshore::sandbox
