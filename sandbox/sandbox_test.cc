// Runs the built longshore-sandbox as the unprivileged user over a
// busybox-static rootfs, both the way the worker does (through a parent user
// namespace made by EnterUserNamespace, via userns_exec) and standalone.
#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/limits.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/test_support.h"

namespace longshore::sandbox {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunOptions;
using testing::RunResult;
using ::testing::StartsWith;

// Root of the step's user namespace on disk: the first id of the subordinate
// range of 'longshore' (ops/bootstrap.sh gives it 100000:65536).
constexpr uid_t kRangeStart = 100000;

enum class Mode { kWorker, kStandalone };

std::string ModeName(const ::testing::TestParamInfo<Mode>& info) {
  return info.param == Mode::kWorker ? "WorkerUserNamespace" : "Standalone";
}

struct Fixture {
  std::unique_ptr<testing::ScratchDir> dir;
  std::string sandbox;
  std::string userns_exec;
  std::string policy;
  std::string lower;
  int next_step = 0;
};
Fixture* g_fixture = nullptr;

absl::Status BuildRootfs(const std::string& root) {
  for (const char* d : {"bin", "etc", "proc", "dev", "sys", "tmp", "mnt",
                        "home/builder", "root"}) {
    if (auto s = MakeDirs(absl::StrCat(root, "/", d)); !s.ok()) return s;
  }
  chmod((root + "/tmp").c_str(), 01777);
  auto busybox = ReadFile("/bin/busybox");
  if (!busybox.ok()) {
    return absl::FailedPreconditionError(
        "/bin/busybox is missing: install busybox-static (ops/bootstrap.sh)");
  }
  if (auto s = WriteFileAtomic(root + "/bin/busybox", *busybox, 0755);
      !s.ok()) {
    return s;
  }
  chmod((root + "/bin/busybox").c_str(), 0755);
  FILE* list = popen("/bin/busybox --list", "r");
  if (list == nullptr) return absl::InternalError("busybox --list failed");
  char line[256];
  int links = 0;
  while (fgets(line, sizeof(line), list) != nullptr) {
    std::string name = std::string(absl::StripTrailingAsciiWhitespace(line));
    if (name.empty() || name == "busybox" ||
        name.find('/') != std::string::npos) {
      continue;
    }
    if (symlink("busybox", (root + "/bin/" + name).c_str()) == 0) ++links;
  }
  pclose(list);
  if (links < 50)
    return absl::InternalError("busybox --list gave too few applets");
  auto write = [&root](const char* rel, const char* text) {
    return WriteFileAtomic(absl::StrCat(root, "/", rel), text, 0644);
  };
  absl::Status s = write("etc/passwd",
                         "root:x:0:0:root:/root:/bin/sh\n"
                         "builder:x:1000:1000:Builder:/home/builder:/bin/sh\n");
  if (s.ok()) {
    s = write("etc/group",
              "root:x:0:\nwheel:x:10:builder\nbuilder:x:1000:\n"
              "extra:x:2000:other,builder\n");
  }
  if (s.ok()) s = write("etc/gone", "delete me\n");
  // Symlinks that try to lead a path out of the root.
  if (s.ok() && symlink("../../../../../..", (root + "/escape").c_str()) != 0) {
    s = absl::InternalError("symlink(escape)");
  }
  if (s.ok() && symlink("/", (root + "/abs").c_str()) != 0) {
    s = absl::InternalError("symlink(abs)");
  }
  return s;
}

class SandboxTest : public ::testing::TestWithParam<Mode> {
 protected:
  static void SetUpTestSuite() {
    auto user = testing::FindUnprivilegedUser();
    ASSERT_TRUE(user.ok()) << user.status();
    auto dir = testing::ScratchDir::Create("sandbox_test.");
    ASSERT_TRUE(dir.ok()) << dir.status();
    g_fixture = new Fixture;
    g_fixture->dir = std::make_unique<testing::ScratchDir>(std::move(*dir));
    const std::string& base = g_fixture->dir->path();
    for (const char* name : {"longshore-sandbox", "userns_exec"}) {
      auto src = testing::RunfilePath(name);
      ASSERT_TRUE(src.ok()) << src.status();
      ASSERT_TRUE(testing::CopyExecutable(*src, base + "/" + name).ok());
    }
    g_fixture->sandbox = base + "/longshore-sandbox";
    g_fixture->userns_exec = base + "/userns_exec";
    g_fixture->policy = base + "/policy.bpf";
    ASSERT_TRUE(WriteSeccompBpfFile(g_fixture->policy).ok());
    g_fixture->lower = base + "/lower";
    absl::Status built = BuildRootfs(g_fixture->lower);
    ASSERT_TRUE(built.ok()) << built;
    // Image files belong to the subordinate range, as extracted layers do.
    ASSERT_TRUE(
        testing::ChownTree(g_fixture->lower, kRangeStart, kRangeStart).ok());
    ASSERT_EQ(mkdir((base + "/steps").c_str(), 0755), 0);
  }
  static void TearDownTestSuite() {
    delete g_fixture;
    g_fixture = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(g_fixture, nullptr) << "suite set-up failed";
    step_ =
        absl::StrCat(g_fixture->dir->path(), "/steps/", g_fixture->next_step++);
    upper_ = step_ + "/upper";
    work_ = step_ + "/work";
    ASSERT_TRUE(MakeDirs(upper_).ok());
    ASSERT_TRUE(MakeDirs(work_).ok());
    ASSERT_TRUE(testing::ChownTree(step_, kRangeStart, kRangeStart).ok());
  }

  // Runs the sandbox over the busybox layer with a fresh upper dir.
  RunResult Sandbox(std::vector<std::string> args, RunOptions opts = {}) {
    std::vector<std::string> argv;
    if (GetParam() == Mode::kWorker) {
      argv = {g_fixture->userns_exec, "--", g_fixture->sandbox};
    } else {
      argv = {g_fixture->sandbox};
    }
    if (!raw_args_) {
      for (const std::string& a :
           {std::string("--lower"), g_fixture->lower, std::string("--upper"),
            upper_, std::string("--work"), work_, std::string("--seccomp-bpf"),
            g_fixture->policy, std::string("--env"),
            std::string("PATH=/bin")}) {
        argv.push_back(a);
      }
    }
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = testing::Run(argv, opts);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RunResult{};
  }
  RunResult Sh(const std::string& script, std::vector<std::string> flags = {}) {
    flags.insert(flags.end(), {"--", "/bin/sh", "-c", script});
    return Sandbox(flags);
  }

  bool raw_args_ = false;
  std::string step_, upper_, work_;
};

TEST_P(SandboxTest, ExitStatuses) {
  RunResult ok = Sh("true");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.err, "");
  EXPECT_EQ(Sh("exit 7").exit_code, 7);
  EXPECT_EQ(Sh("kill -9 $$").exit_code, 128 + SIGKILL);
  EXPECT_EQ(Sh("kill -TERM $$").exit_code, 128 + SIGTERM);
  RunResult missing = Sandbox({"--", "/bin/no-such-command"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_THAT(
      missing.err,
      HasSubstr(
          "longshore-sandbox: execve(/bin/no-such-command): No such file"));
}

TEST_P(SandboxTest, UpperAndWorkDirectoriesCanBeUsedAgain) {
  // The volatile overlay leaves a marker in the work dir that makes
  // overlayfs refuse it; the next run over the same directories clears it.
  EXPECT_EQ(Sh("echo one > /first").exit_code, 0);
  EXPECT_TRUE(PathExists(work_ + "/work/incompat/volatile"));
  RunResult again = Sh("cat /first; echo two > /second");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "one\n");
  EXPECT_TRUE(PathExists(upper_ + "/second"));
}

// Entries of `dir` named longshore-sandbox.*.
std::vector<std::string> ScratchEntries(const std::string& dir) {
  std::vector<std::string> out;
  absl::StatusOr<std::vector<std::string>> names = ListDirSorted(dir);
  if (!names.ok()) return out;
  for (const std::string& n : *names) {
    if (absl::StartsWith(n, "longshore-sandbox.")) out.push_back(n);
  }
  return out;
}

TEST_P(SandboxTest, StepsShareOneScratchMountPointOnlyWhenItIsTheirs) {
  auto user = testing::FindUnprivilegedUser();
  ASSERT_TRUE(user.ok()) << user.status();
  const std::string tmp = step_ + "/tmp";
  ASSERT_EQ(mkdir(tmp.c_str(), 0755), 0);
  ASSERT_EQ(chown(tmp.c_str(), user->uid, user->gid), 0);
  RunOptions opts;
  opts.env = {"PATH=/usr/bin:/bin", "TMPDIR=" + tmp};
  auto run = [&] { return Sandbox({"--", "/bin/sh", "-c", "echo ok"}, opts); };
  // Two steps, one directory: empty (the tmpfs was the steps' own), 0700.
  ASSERT_EQ(run().out, "ok\n");
  ASSERT_EQ(run().out, "ok\n");
  std::vector<std::string> entries = ScratchEntries(tmp);
  ASSERT_EQ(entries.size(), 1u) << absl::StrJoin(entries, ",");
  const std::string shared = tmp + "/" + entries[0];
  struct stat st;
  ASSERT_EQ(lstat(shared.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  auto inside = ListDirSorted(shared);
  ASSERT_TRUE(inside.ok());
  EXPECT_TRUE(inside->empty());
  // Someone else's symlink in its place is not used: the step makes a
  // directory of its own, removes it after, and leaves the symlink be.
  ASSERT_EQ(rmdir(shared.c_str()), 0);
  ASSERT_EQ(symlink("/etc", shared.c_str()), 0);
  ASSERT_EQ(run().out, "ok\n");
  EXPECT_EQ(ScratchEntries(tmp), entries);
  ASSERT_EQ(lstat(shared.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST_P(SandboxTest, SandboxFailuresPrintOneLineAndExit125) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"--bogus", "--", "true"},
        std::vector<std::string>{"--network", "default", "--slirp4netns",
                                 "/nonexistent/slirp4netns", "--", "true"},
        std::vector<std::string>{"--user", "nosuchuser", "--", "/bin/true"},
        std::vector<std::string>{"--lower", "/nonexistent-layer", "--",
                                 "/bin/true"}}) {
    RunResult r = Sandbox(args);
    EXPECT_EQ(r.exit_code, 125) << absl::StrJoin(args, " ") << ": " << r.err;
    EXPECT_THAT(r.err, StartsWith("longshore-sandbox: "));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.out, "");
  }
  // The overlay error names the mount and the kernel's reason.
  RunResult r = Sandbox({"--lower", "/nonexistent-layer", "--", "/bin/true"});
  EXPECT_THAT(r.err, HasSubstr("mount(overlay, "));
}

TEST_P(SandboxTest, TimeoutKillsTheStep) {
  RunResult r = Sh("sleep 30", {"--timeout", "1"});
  EXPECT_EQ(r.exit_code, 124);
  EXPECT_THAT(r.err, HasSubstr("longshore-sandbox: timeout"));
  EXPECT_LT(r.seconds, 15);
}

TEST_P(SandboxTest, HostnameAndEtcFiles) {
  RunResult r = Sh("hostname; cat /etc/hostname; grep -c step-42 /etc/hosts",
                   {"--hostname", "step-42"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "step-42\nstep-42\n1\n");
  // The provided files are mount-point stubs, not part of the layer.
  EXPECT_FALSE(PathExists(upper_ + "/etc/hostname"));
  EXPECT_FALSE(PathExists(upper_ + "/etc/hosts"));
  EXPECT_FALSE(PathExists(upper_ + "/etc/resolv.conf"));
}

TEST_P(SandboxTest, EnvironmentIsExactlyTheGivenOne) {
  RunResult r =
      Sandbox({"--env", "A=1", "--env", "B=two words", "--", "/bin/env"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "PATH=/bin\nA=1\nB=two words\n");
}

TEST_P(SandboxTest, WorkingDirectoryIsCreatedForTheUser) {
  RunResult r =
      Sh("pwd; stat -c %u:%g .", {"--cwd", "/work/dir", "--user", "builder"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/work/dir\n1000:1000\n");
  struct stat st;
  ASSERT_EQ(lstat((upper_ + "/work/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kRangeStart + 1000);
}

TEST_P(SandboxTest, WorkingDirectoryCannotEscapeThroughSymlinks) {
  const std::string name =
      absl::StrCat("ls-escape-", getpid(), "-", step_.size(),
                   GetParam() == Mode::kWorker ? "w" : "s");
  for (const char* link : {"/escape", "/abs"}) {
    RunResult r = Sh("pwd", {"--cwd", absl::StrCat(link, "/tmp/", name, link)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, absl::StrCat("/tmp/", name, link, "\n"));
  }
  EXPECT_FALSE(PathExists("/tmp/" + name));
  EXPECT_TRUE(PathExists(upper_ + "/tmp/" + name));
}

TEST_P(SandboxTest, UserAndGroupsComeFromTheImage) {
  auto ids = [this](const std::string& user) {
    RunResult r = Sh("id -u; id -g; id -G", {"--user", user});
    EXPECT_EQ(r.exit_code, 0) << user << ": " << r.err;
    return r.out;
  };
  EXPECT_EQ(ids("builder"), "1000\n1000\n1000 10 2000\n");
  EXPECT_EQ(ids("builder:extra"), "1000\n2000\n2000\n");
  EXPECT_EQ(ids("1234:5678"), "1234\n5678\n5678\n");
  EXPECT_EQ(ids("0"), "0\n0\n0\n");
  RunResult r = Sh("true", {"--user", "builder:nosuchgroup"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_THAT(r.err, HasSubstr("nosuchgroup"));
}

TEST_P(SandboxTest, CapabilitiesNoNewPrivsAndSeccomp) {
  RunResult root =
      Sh("grep -E '^(CapEff|CapBnd|CapInh|CapAmb|NoNewPrivs|Seccomp):' "
         "/proc/self/status");
  EXPECT_EQ(root.exit_code, 0) << root.err;
  EXPECT_EQ(root.out,
            "CapInh:\t0000000000000000\n"
            "CapEff:\t00000000a80425fb\n"
            "CapBnd:\t00000000a80425fb\n"
            "CapAmb:\t0000000000000000\n"
            "NoNewPrivs:\t1\n"
            "Seccomp:\t2\n");
  RunResult user = Sh("grep -E '^(CapEff|CapBnd):' /proc/self/status",
                      {"--user", "builder"});
  EXPECT_EQ(user.out, "CapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\n");
  // Namespaces cannot be created (seccomp clone rule, and no CAP_SYS_ADMIN).
  RunResult ns =
      Sh("unshare -U true 2>/dev/null && echo created || echo refused");
  EXPECT_EQ(ns.out, "refused\n");
}

TEST_P(SandboxTest, ProcIsFreshAndMasked) {
  RunResult r = Sh(
      "echo pid=$$; "
      "for f in /proc/keys /proc/timer_list /proc/kcore /proc/sched_debug; do "
      "  [ -e $f ] && echo $f=$(wc -c < $f); done; "
      "[ -d /proc/acpi ] && echo acpi=$(ls -A /proc/acpi | wc -l); "
      "echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable || echo "
      "sysrq-ro; "
      "echo x > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable "
      "|| echo sys-ro; "
      "ls /proc | grep -c '^[0-9]'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The command is pid 2 (pid 1 is the sandbox's init).
  EXPECT_THAT(r.out, StartsWith("pid=2\n"));
  EXPECT_THAT(r.out, HasSubstr("/proc/keys=0\n"));
  EXPECT_THAT(r.out, HasSubstr("/proc/timer_list=0\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("/proc/kcore=1")));
  if (PathExists("/proc/acpi")) {
    EXPECT_THAT(r.out, HasSubstr("acpi=0\n"));
  }
  EXPECT_THAT(r.out, HasSubstr("sysrq-ro\n"));
  EXPECT_THAT(r.out, HasSubstr("sys-ro\n"));
  // Only pid 1, the shell, and ls/grep's processes are visible.
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  int visible = 0;
  ASSERT_TRUE(absl::SimpleAtoi(lines.back(), &visible));
  EXPECT_LE(visible, 4);
}

TEST_P(SandboxTest, DevHoldsOnlyTheExpectedNodes) {
  RunResult r =
      Sh("ls /dev | tr '\\n' ' '; echo; ls /dev/pts | tr '\\n' ' '; echo; "
         "head -c 5 /dev/zero | wc -c; echo hi > /dev/null && echo null-ok; "
         "readlink /dev/fd; readlink /dev/ptmx");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "fd full mqueue null ptmx pts random shm stderr stdin stdout tty "
            "urandom zero \nptmx \n5\nnull-ok\n/proc/self/fd\npts/ptmx\n");
}

TEST_P(SandboxTest, MountingFails) {
  RunResult r =
      Sh("mount -t tmpfs none /mnt 2>/dev/null && echo mounted || echo "
         "mount-refused; "
         "umount /proc 2>/dev/null && echo unmounted || echo umount-refused; "
         "mount -o remount,rw /proc/sys 2>/dev/null && echo remounted || echo "
         "remount-refused");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "mount-refused\numount-refused\nremount-refused\n");
}

TEST_P(SandboxTest, NetworkNoneHasOnlyLoopback) {
  RunResult r =
      Sh("grep : /proc/net/dev | cut -d: -f1 | tr -d ' '; ls /sys/class/net; "
         "cat /sys/class/net/lo/operstate /sys/class/net/lo/flags");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0], "lo");
  EXPECT_EQ(lines[1], "lo");
  EXPECT_EQ(lines[2], "unknown");  // loopback has no carrier state
  EXPECT_EQ(lines[3], "0x9");      // IFF_UP | IFF_LOOPBACK
}

TEST_P(SandboxTest, UpperDirReceivesWritesAndWhiteouts) {
  RunResult r =
      Sh("rm /etc/gone && echo hi > /new && mkdir -p /opt/app && touch "
         "/opt/app/f");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto content = ReadFile(upper_ + "/new");
  ASSERT_TRUE(content.ok()) << content.status();
  EXPECT_EQ(*content, "hi\n");
  struct stat st;
  ASSERT_EQ(lstat((upper_ + "/new").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kRangeStart);
  ASSERT_EQ(lstat((upper_ + "/etc/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 0u);
  EXPECT_EQ(minor(st.st_rdev), 0u);
  EXPECT_TRUE(PathExists(upper_ + "/opt/app/f"));
  // Nothing of the sandbox's own mounts lands in the layer.
  for (const char* p : {"/proc", "/dev", "/sys", "/etc/hosts",
                        "/etc/resolv.conf", "/etc/hostname"}) {
    EXPECT_FALSE(PathExists(upper_ + p)) << p;
  }
}

TEST_P(SandboxTest, ScratchLayerWithoutLowers) {
  raw_args_ = true;
  // FROM scratch: the root is the upper dir; put a static busybox there.
  ASSERT_TRUE(MakeDirs(upper_ + "/bin").ok());
  auto busybox = ReadFile(g_fixture->lower + "/bin/busybox");
  ASSERT_TRUE(busybox.ok());
  ASSERT_TRUE(WriteFileAtomic(upper_ + "/bin/busybox", *busybox, 0755).ok());
  chmod((upper_ + "/bin/busybox").c_str(), 0755);
  ASSERT_TRUE(testing::ChownTree(upper_, kRangeStart, kRangeStart).ok());
  RunResult r = Sandbox({"--upper", upper_, "--work", work_, "--seccomp-bpf",
                         g_fixture->policy, "--", "/bin/busybox", "sh", "-c",
                         "echo scratch > /made"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto made = ReadFile(upper_ + "/made");
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(*made, "scratch\n");
  // Stubs for /proc, /dev, /sys and /etc files were made and removed again.
  for (const char* p : {"/proc", "/dev", "/sys", "/etc"}) {
    EXPECT_FALSE(PathExists(upper_ + p)) << p;
  }
}

bool ProcessWithArgumentExists(const std::string& arg) {
  DIR* d = opendir("/proc");
  if (d == nullptr) return false;
  bool found = false;
  while (struct dirent* e = readdir(d)) {
    if (!isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    auto cmdline = ReadFile(absl::StrCat("/proc/", e->d_name, "/cmdline"));
    if (cmdline.ok() && cmdline->find(arg) != std::string::npos &&
        cmdline->find("sleep") != std::string::npos) {
      found = true;
    }
  }
  closedir(d);
  return found;
}

TEST_P(SandboxTest, NoProcessSurvivesTheStep) {
  const std::string marker = GetParam() == Mode::kWorker ? "31337" : "31338";
  RunResult r = Sh(absl::StrCat("(setsid sleep ", marker, " &) ; sleep ",
                                marker, " & echo started"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "started\n");
  EXPECT_FALSE(ProcessWithArgumentExists(marker));
}

TEST_P(SandboxTest, SignalsReachTheCommand) {
  RunOptions opts;
  opts.on_first_line = [](pid_t pid) { kill(pid, SIGTERM); };
  std::vector<std::string> args = {
      "--", "/bin/sh", "-c",
      "trap 'echo got-term; exit 42' TERM; echo ready; "
      "while true; do sleep 0.05; done"};
  RunResult r = Sandbox(args, opts);
  EXPECT_EQ(r.exit_code, 42) << r.err;
  EXPECT_EQ(r.out, "ready\ngot-term\n");
}

TEST_P(SandboxTest, NoDescriptorLeaksIn) {
  RunOptions opts;
  opts.leak_fd = 47;
  RunResult r = Sandbox({"--", "/bin/ls", "/proc/self/fd"}, opts);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> fds = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  // 0-2, plus the directory ls itself is reading.
  EXPECT_EQ(fds, (std::set<std::string>{"0", "1", "2", "3"})) << r.out;
}

// A non-loopback IPv4 address of this machine, for a listener the step must
// reach through slirp4netns.
std::string HostAddress() {
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string out;
  for (struct ifaddrs* i = list; i != nullptr && out.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if (i->ifa_flags & IFF_LOOPBACK) continue;
    char buf[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<struct sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)) != nullptr) {
      out = buf;
    }
  }
  freeifaddrs(list);
  return out;
}

// A TCP listener that answers every connection with "hello\n" from a thread.
class Listener {
 public:
  explicit Listener(const std::string& address) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {};
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, address.c_str(), &sin.sin_addr);
    socklen_t len = sizeof(sin);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sin), len) != 0 ||
        listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
      return;
    }
    port_ = ntohs(sin.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        accepted_++;
        (void)!write(c, "hello\n", 6);
        close(c);
      }
    });
  }
  ~Listener() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST_P(SandboxTest, NetworkDefaultReachesOutButNotHostLoopbackOrMetadata) {
  const std::string host = HostAddress();
  ASSERT_FALSE(host.empty()) << "this machine has no non-loopback IPv4 address";
  Listener outside(host);
  Listener loopback("127.0.0.1");
  ASSERT_GT(outside.port(), 0);
  ASSERT_GT(loopback.port(), 0);
  RunResult r =
      Sh(absl::StrCat("cat /etc/resolv.conf; ip -4 -o addr show tap0 | grep -o "
                      "'inet [0-9./]*'; "
                      "nc -w 3 ",
                      host, " ", outside.port(),
                      " </dev/null; "
                      "nc -w 3 10.0.2.2 ",
                      loopback.port(),
                      " </dev/null 2>&1 | tail -n1; "
                      "nc -w 3 169.254.169.254 80 </dev/null 2>&1 | tail -n1; "
                      "ip route del prohibit 169.254.0.0/16 2>&1 | tail -n1"),
         {"--network", "default"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u) << r.out;
  EXPECT_EQ(lines[0], "nameserver 10.0.2.3");
  EXPECT_EQ(lines[1], "inet 10.0.2.100/24");
  EXPECT_EQ(lines[2], "hello");
  EXPECT_THAT(lines[3], HasSubstr("Permission denied"));
  EXPECT_THAT(lines[4], HasSubstr("Permission denied"));
  EXPECT_THAT(lines[5], HasSubstr("Operation not permitted"));
  EXPECT_EQ(outside.accepted(), 1);
  EXPECT_EQ(loopback.accepted(), 0);
}

TEST_P(SandboxTest, PidsLimitStopsForks) {
  // The inner shell dies at its first failed fork; the outer one counts.
  RunResult r =
      Sh("sh -c 'for i in $(seq 40); do sleep 5 & echo $! >> /tmp/pids; done'; "
         "echo started=$(wc -l < /tmp/pids); kill $(cat /tmp/pids)",
         {"--pids", "16"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("can't fork: Resource temporarily unavailable"));
  // 16 tasks: the two shells and 14 sleeps, whatever uid they run as.
  EXPECT_EQ(r.out, "started=14\n");
}

TEST_P(SandboxTest, MemoryLimitWithoutCgroupCapsAddressSpace) {
  RunResult r =
      Sh("dd if=/dev/zero of=/dev/null bs=128M count=1 2>&1 | head -n1; "
         "dd if=/dev/zero of=/dev/null bs=1M count=1 2>&1 | tail -n1",
         {"--memory", std::to_string(64 << 20)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("out of memory")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("1+0 records out")) << r.out;
}

std::vector<std::string> StepCgroups(const std::string& parent) {
  std::vector<std::string> out;
  DIR* d = opendir(parent.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = readdir(d)) {
    if (absl::StartsWith(e->d_name, "step-")) out.push_back(e->d_name);
  }
  closedir(d);
  return out;
}

TEST_P(SandboxTest, StepRunsInItsOwnCgroupUnderADelegatedParent) {
  const std::string mount = Cgroup2MountPoint();
  ASSERT_FALSE(mount.empty())
      << "no cgroup2 mount in /proc/self/mountinfo: this test needs the "
         "unified hierarchy (cgroup v2)";
  auto user = testing::FindUnprivilegedUser();
  ASSERT_TRUE(user.ok()) << user.status();
  // A delegated subtree, as systemd's Delegate=yes makes one: the directory
  // and its cgroup.procs/threads/subtree_control belong to the user; the
  // sandbox runs in the leaf "caller", steps go beside it.
  const std::string parent =
      absl::StrCat(mount, "/longshore-sandbox-test-", getpid());
  const std::string caller = parent + "/caller";
  ASSERT_EQ(mkdir(parent.c_str(), 0755), 0)
      << parent << ": " << strerror(errno);
  ASSERT_EQ(mkdir(caller.c_str(), 0755), 0) << strerror(errno);
  absl::Cleanup remove = [&] {
    rmdir(caller.c_str());
    for (const std::string& step : StepCgroups(parent)) {
      rmdir((parent + "/" + step).c_str());
    }
    rmdir(parent.c_str());
  };
  for (const std::string& path :
       {parent, parent + "/cgroup.procs", parent + "/cgroup.threads",
        parent + "/cgroup.subtree_control", caller, caller + "/cgroup.procs"}) {
    ASSERT_EQ(chown(path.c_str(), user->uid, user->gid), 0) << path;
  }
  RunOptions opts;
  opts.cgroup = caller;
  std::vector<std::string> during;
  std::string procs_during;
  opts.on_first_line = [&](pid_t) {
    during = StepCgroups(parent);
    if (during.size() == 1) {
      absl::StatusOr<std::string> procs =
          ReadFile(absl::StrCat(parent, "/", during[0], "/cgroup.procs"));
      if (procs.ok()) procs_during = *procs;
    }
  };
  RunResult r =
      Sandbox({"--cgroup-parent", parent, "--pids", "16", "--", "/bin/sh", "-c",
               "echo started; sleep 1; cat /proc/self/cgroup; "
               "echo procs=$(wc -l < /sys/fs/cgroup/cgroup.procs); "
               "echo limit > /sys/fs/cgroup/pids.max 2>&1 || true; "
               "touch /sys/fs/cgroup/x 2>&1 || true"},
              opts);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Pid 1 was born in step-<pid> (clone3 CLONE_INTO_CGROUP), the command with
  // it: pid 1, the shell and sleep.
  ASSERT_EQ(during.size(), 1u) << absl::StrJoin(during, ",");
  EXPECT_GE(std::vector<std::string>(
                absl::StrSplit(procs_during, '\n', absl::SkipEmpty()))
                .size(),
            2u)
      << procs_during;
  // The step's cgroup namespace is rooted there, and its cgroup is mounted
  // read-only at /sys/fs/cgroup, listing the step's own processes (pid 1, sh,
  // wc at least).
  EXPECT_THAT(r.out, HasSubstr("\n0::/\n")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Read-only file system")) << r.out;
  size_t at = r.out.find("procs=");
  ASSERT_NE(at, std::string::npos) << r.out;
  int procs = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      r.out.substr(at + 6, r.out.find('\n', at) - at - 6), &procs));
  EXPECT_GE(procs, 3) << r.out;
  // Gone with the step.
  EXPECT_THAT(StepCgroups(parent), ::testing::IsEmpty());
}

TEST_P(SandboxTest, DiskLimitStopsTheStep) {
  // Many small files: only the upper-directory check can catch these.
  RunResult r =
      Sh("for i in $(seq 64); do dd if=/dev/zero of=/f$i bs=64k count=1 "
         "2>/dev/null; done; sleep 20; echo not-stopped",
         {"--disk", std::to_string(1 << 20)});
  EXPECT_EQ(r.exit_code, 123) << r.err;
  EXPECT_THAT(r.err, HasSubstr("longshore-sandbox: disk limit: the step wrote "
                               "more than 1048576 bytes"));
  EXPECT_EQ(r.out, "");
  EXPECT_LT(r.seconds, 10);
  auto fresh_upper = [this](const std::string& name) {
    upper_ = absl::StrCat(step_, "/", name, "-upper");
    work_ = absl::StrCat(step_, "/", name, "-work");
    ASSERT_TRUE(MakeDirs(upper_).ok());
    ASSERT_TRUE(MakeDirs(work_).ok());
    ASSERT_TRUE(testing::ChownTree(step_, kRangeStart, kRangeStart).ok());
  };
  // One big file stops at the limit (RLIMIT_FSIZE), and the final check
  // still fails the step.
  fresh_upper("big");
  RunResult big = Sh("dd if=/dev/zero of=/big bs=1M count=4; echo rc=$?",
                     {"--disk", std::to_string(1 << 20)});
  EXPECT_EQ(big.exit_code, 123) << big.err;
  EXPECT_THAT(big.out, HasSubstr("rc=")) << big.out;
  // Under the limit nothing happens.
  fresh_upper("small");
  RunResult small = Sh("dd if=/dev/zero of=/small bs=64k count=1 2>/dev/null",
                       {"--disk", std::to_string(1 << 20)});
  EXPECT_EQ(small.exit_code, 0) << small.err;
}

TEST_P(SandboxTest, BindAndTmpfsMounts) {
  const std::string ro = step_ + "/ro-src", rw = step_ + "/rw-src";
  ASSERT_TRUE(MakeDirs(ro).ok());
  ASSERT_TRUE(MakeDirs(rw).ok());
  ASSERT_TRUE(WriteFileAtomic(ro + "/data", "ro-data\n").ok());
  ASSERT_TRUE(WriteFileAtomic(step_ + "/secret", "s3cret\n").ok());
  ASSERT_TRUE(testing::ChownTree(step_, kRangeStart, kRangeStart).ok());
  RunResult r =
      Sh("cat /data/in/data /run/secrets/token; "
         "echo x > /data/in/new 2>/dev/null || echo ro-refused; "
         "echo cached > /cache/out; "
         "echo t > /scratch/t && grep ' /scratch ' /proc/mounts | cut -d' ' "
         "-f3,4",
         {"--bind", ro + ":/data/in", "--bind", rw + ":/cache:rw", "--bind",
          step_ + "/secret:/run/secrets/token", "--tmpfs", "/scratch:1048576"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "ro-data\ns3cret\nro-refused\n"
            "tmpfs rw,nosuid,nodev,relatime,size=1024k,uid=" +
                std::to_string(kRangeStart) +
                ",gid=" + std::to_string(kRangeStart) + "\n")
      << r.out;
  auto cached = ReadFile(rw + "/out");
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(*cached, "cached\n");
  // Mount points made for the step are not part of its layer.
  EXPECT_FALSE(PathExists(upper_ + "/data"));
  EXPECT_FALSE(PathExists(upper_ + "/cache"));
  EXPECT_FALSE(PathExists(upper_ + "/run"));
  EXPECT_FALSE(PathExists(upper_ + "/scratch"));
}

INSTANTIATE_TEST_SUITE_P(Modes, SandboxTest,
                         ::testing::Values(Mode::kWorker, Mode::kStandalone),
                         ModeName);

TEST(SandboxAsRootTest, RealRootIsRefused) {
  auto src = testing::RunfilePath("longshore-sandbox");
  ASSERT_TRUE(src.ok()) << src.status();
  RunOptions opts;
  opts.as_root = true;
  auto r = testing::Run({*src, "--rootfs", "/", "--", "/bin/true"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 125);
  EXPECT_THAT(
      r->err,
      HasSubstr("longshore-sandbox: user: refusing to run as real root"));
}

TEST(SandboxWriteSeccompTest, WritesTheCompiledProgram) {
  auto src = testing::RunfilePath("longshore-sandbox");
  ASSERT_TRUE(src.ok()) << src.status();
  auto dir = testing::ScratchDir::Create("sandbox_seccomp.");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->path() + "/p.bpf";
  RunOptions opts;
  opts.as_root = true;
  auto r = testing::Run({*src, "--write-seccomp-bpf", path}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  auto written = ReadSeccompBpfFile(path);
  ASSERT_TRUE(written.ok()) << written.status();
  auto compiled = CompileSeccompBpf();
  ASSERT_TRUE(compiled.ok());
  EXPECT_EQ(*written, *compiled);
}

}  // namespace
}  // namespace longshore::sandbox
