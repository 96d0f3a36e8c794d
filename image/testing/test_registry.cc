#include "image/testing/test_registry.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace longshore::image::testing {
namespace {

// Debian's crypt(3) (libxcrypt) makes bcrypt hashes; perl-base reaches it
// without a compiler or apache2-utils. distribution accepts $2b$ hashes.
absl::StatusOr<std::string> BcryptHash(const std::string& password) {
  for (char c : password) {
    if (!isalnum(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError("test passwords are alphanumeric");
    }
  }
  ShellResult r = Shell(absl::StrCat(
      "perl -e 'print crypt($ARGV[0], \"\\$2b\\$05\\$\" . $ARGV[1])' ",
      password, " abcdefghijklmnopqrstuu"));
  std::string hash(absl::StripAsciiWhitespace(r.out));
  if (r.status != 0 || hash.rfind("$2b$05$", 0) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "making a bcrypt hash with perl's crypt() failed (perl and "
        "libcrypt1 are needed): ",
        r.out));
  }
  return hash;
}

bool Answers(int port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    return false;
  }
  const char req[] = "GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd.get(), req, sizeof(req) - 1) < 0) return false;
  char buf[16] = {0};
  ssize_t n = read(fd.get(), buf, sizeof(buf) - 1);
  return n > 9 && std::string(buf, 5) == "HTTP/";
}

}  // namespace

ShellResult Shell(const std::string& cmd) {
  ShellResult r;
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) r.out.append(buf, n);
  r.status = pclose(f);
  return r;
}

absl::StatusOr<int> FreePort() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "bind(127.0.0.1:0)");
  }
  socklen_t len = sizeof(addr);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoStatus(errno, "getsockname");
  }
  return ntohs(addr.sin_port);
}

absl::StatusOr<std::unique_ptr<TestRegistry>> TestRegistry::Create(
    const std::string& dir, const Options& opts) {
  if (access(kRegistryBinary, X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(kRegistryBinary,
                     " is missing: install the "
                     "docker-registry package (ops/bootstrap.sh)"));
  }
  std::unique_ptr<TestRegistry> r(new TestRegistry());
  r->dir_ = dir;
  RETURN_IF_ERROR(MakeDirs(dir + "/data"));
  if (opts.port != 0) {
    r->port_ = opts.port;
  } else {
    ASSIGN_OR_RETURN(r->port_, FreePort());
  }
  std::string config = absl::StrCat(
      "version: 0.1\n"
      "log:\n"
      "  level: info\n"
      "  formatter: text\n"
      "storage:\n"
      "  filesystem:\n"
      "    rootdirectory: ",
      dir,
      "/data\n"
      "  delete:\n"
      "    enabled: true\n"
      "http:\n"
      "  addr: 127.0.0.1:",
      r->port_,
      "\n"
      "  secret: longshore-test-secret\n");
  if (!opts.user.empty()) {
    ASSIGN_OR_RETURN(std::string hash, BcryptHash(opts.password));
    RETURN_IF_ERROR(WriteFileAtomic(dir + "/htpasswd",
                                    absl::StrCat(opts.user, ":", hash, "\n")));
    absl::StrAppend(&config,
                    "auth:\n"
                    "  htpasswd:\n"
                    "    realm: longshore-test\n"
                    "    path: ",
                    dir, "/htpasswd\n");
  }
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/config.yml", config));
  return r;
}

absl::StatusOr<std::unique_ptr<TestRegistry>> TestRegistry::StartNew(
    const std::string& dir, const Options& opts) {
  ASSIGN_OR_RETURN(std::unique_ptr<TestRegistry> r, Create(dir, opts));
  RETURN_IF_ERROR(r->Start());
  return r;
}

TestRegistry::~TestRegistry() { Stop(); }

std::string TestRegistry::host() const {
  return absl::StrCat("127.0.0.1:", port_);
}

std::string TestRegistry::Log() const {
  auto text = ReadFile(dir_ + "/registry.log");
  return text.ok() ? *text : "";
}

absl::Status TestRegistry::Start() {
  if (pid_ > 0) return absl::OkStatus();
  std::string log = dir_ + "/registry.log";
  std::string config = dir_ + "/config.yml";
  UniqueFd out(
      open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!out) return ErrnoStatus(errno, "open(%s)", log);
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    dup2(out.get(), 1);
    dup2(out.get(), 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execl(kRegistryBinary, "docker-registry", "serve", config.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_ = pid;
  absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline) {
    int st;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::FailedPreconditionError(
          absl::StrCat("docker-registry exited at start: ", Log()));
    }
    if (Answers(port_)) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  Stop();
  return absl::DeadlineExceededError(
      absl::StrCat("docker-registry did not answer on ", host(), ": ", Log()));
}

void TestRegistry::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace longshore::image::testing
