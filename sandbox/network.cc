#include "sandbox/network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace longshore::sandbox {
namespace {

struct BlockedPrefix {
  const char* address;
  int prefix_len;
};

constexpr BlockedPrefix kBlocked[] = {
    {"169.254.0.0", 16},
    {"168.63.129.16", 32},
    {"100.100.100.200", 32},
    {kSlirpHostAlias, 32},
};

absl::Status AddProhibitRoute(int sock, const BlockedPrefix& p, uint32_t seq) {
  struct {
    struct nlmsghdr nh;
    struct rtmsg rt;
    char attrs[64];
  } req = {};
  in_addr_t addr;
  if (::inet_pton(AF_INET, p.address, &addr) != 1) {
    return absl::InternalError(absl::StrCat("bad address ", p.address));
  }
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
  req.nh.nlmsg_type = RTM_NEWROUTE;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
  req.nh.nlmsg_seq = seq;
  req.rt.rtm_family = AF_INET;
  req.rt.rtm_dst_len = static_cast<unsigned char>(p.prefix_len);
  req.rt.rtm_table = RT_TABLE_MAIN;
  req.rt.rtm_protocol = RTPROT_STATIC;
  req.rt.rtm_scope = RT_SCOPE_UNIVERSE;
  // RTN_PROHIBIT: the kernel answers locally with EACCES ("administratively
  // prohibited"); nothing leaves through tap0.
  req.rt.rtm_type = RTN_PROHIBIT;
  struct rtattr* rta = reinterpret_cast<struct rtattr*>(
      reinterpret_cast<char*>(&req) + NLMSG_ALIGN(req.nh.nlmsg_len));
  rta->rta_type = RTA_DST;
  rta->rta_len = RTA_LENGTH(sizeof(addr));
  memcpy(RTA_DATA(rta), &addr, sizeof(addr));
  req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);

  const std::string what =
      absl::StrCat("route(prohibit ", p.address, "/", p.prefix_len, ")");
  if (::send(sock, &req, req.nh.nlmsg_len, 0) < 0) {
    return ErrnoStatus(errno, "send(%s)", what);
  }
  char buf[4096];
  ssize_t n;
  do {
    n = ::recv(sock, buf, sizeof(buf), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus(errno, "recv(%s)", what);
  const struct nlmsghdr* h = reinterpret_cast<const struct nlmsghdr*>(buf);
  if (!NLMSG_OK(h, static_cast<unsigned>(n)) || h->nlmsg_type != NLMSG_ERROR) {
    return absl::InternalError(absl::StrCat(what, ": unexpected reply"));
  }
  const struct nlmsgerr* e =
      reinterpret_cast<const struct nlmsgerr*>(NLMSG_DATA(h));
  if (e->error != 0) return ErrnoStatus(-e->error, "%s", what);
  return absl::OkStatus();
}

}  // namespace

absl::Status CreatePersistentTap() {
  UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!tun) {
    return ErrnoStatus(errno,
                       "open(/dev/net/tun) (is it missing or not mode 0666?)");
  }
  struct ifreq ifr = {};
  std::strncpy(ifr.ifr_name, kSlirpTapName, IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(tun.get(), TUNSETIFF, &ifr) != 0) {
    return ErrnoStatus(errno, "ioctl(TUNSETIFF, %s)", kSlirpTapName);
  }
  if (::ioctl(tun.get(), TUNSETPERSIST, 1) != 0) {
    return ErrnoStatus(errno, "ioctl(TUNSETPERSIST, %s)", kSlirpTapName);
  }
  return absl::OkStatus();
}

absl::Status ProhibitBlockedDestinations() {
  UniqueFd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!sock) return ErrnoStatus(errno, "socket(AF_NETLINK)");
  uint32_t seq = 1;
  for (const BlockedPrefix& p : kBlocked) {
    RETURN_IF_ERROR(AddProhibitRoute(sock.get(), p, seq++));
  }
  return absl::OkStatus();
}

absl::StatusOr<SlirpProcess> SlirpProcess::Start(const std::string& binary,
                                                 pid_t pid,
                                                 const std::string& userns_path,
                                                 int timeout_ms) {
  int ready[2], exit_pipe[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  if (::pipe2(exit_pipe, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd exit_r(exit_pipe[0]), exit_w(exit_pipe[1]);

  // Everything the child needs is formatted before fork.
  constexpr int kReadyFd = 3, kExitFd = 4;
  std::vector<std::string> args = {binary,
                                   "--configure",
                                   "--mtu=65520",
                                   "--disable-host-loopback",
                                   absl::StrCat("--ready-fd=", kReadyFd),
                                   absl::StrCat("--exit-fd=", kExitFd)};
  if (!userns_path.empty()) {
    args.push_back(absl::StrCat("--userns-path=", userns_path));
  }
  args.push_back(absl::StrCat(pid));
  args.push_back(kSlirpTapName);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string path_env = "PATH=/usr/local/bin:/usr/bin:/bin";
  char* envp[] = {path_env.data(), nullptr};
  const pid_t parent = ::getpid();

  pid_t child = ::fork();
  if (child < 0) return ErrnoStatus(errno, "fork(slirp4netns)");
  if (child == 0) {
    // The step's own fds are all close-on-exec; 3 and 4 are slirp's pipes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(devnull, 1) < 0 ||
        ::dup2(devnull, 2) < 0 || ::dup2(ready_w.get(), kReadyFd) < 0 ||
        ::dup2(exit_r.get(), kExitFd) < 0) {
      ::_exit(127);
    }
    if (binary.find('/') != std::string::npos) {
      ::execve(binary.c_str(), argv.data(), envp);
    } else {
      ::execvpe(binary.c_str(), argv.data(), envp);
    }
    ::_exit(127);
  }
  ready_w.reset();
  exit_r.reset();
  SlirpProcess slirp(child, exit_w.release());
  struct pollfd pfd = {ready_r.get(), POLLIN, 0};
  int n;
  do {
    n = ::poll(&pfd, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  char c = 0;
  if (n > 0 && ::read(ready_r.get(), &c, 1) == 1 && c == '1') return slirp;
  int status = 0;
  ::kill(child, SIGKILL);
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  slirp.pid_ = -1;
  if (n == 0) {
    return absl::DeadlineExceededError(
        absl::StrCat(binary, ": not ready after ", timeout_ms, " ms"));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return absl::FailedPreconditionError(absl::StrCat(
        binary, ": could not be executed (install the slirp4netns package)"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat(binary, ": exited before configuring ", kSlirpTapName,
                   " (is /dev/net/tun missing or not mode 0666?)"));
}

SlirpProcess::SlirpProcess(SlirpProcess&& other) noexcept
    : pid_(other.pid_), exit_fd_(other.exit_fd_) {
  other.pid_ = -1;
  other.exit_fd_ = -1;
}

SlirpProcess::~SlirpProcess() { Stop(); }

void SlirpProcess::Stop() {
  if (exit_fd_ >= 0) {
    ::close(exit_fd_);
    exit_fd_ = -1;
  }
  if (pid_ > 0) {
    // Nothing of slirp4netns outlives the step's network namespace, which is
    // gone by now: no need to wait for it to notice its exit fd.
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
}

}  // namespace longshore::sandbox
