#include "sandbox/seccomp_policy.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/file_util.h"
#include "gtest/gtest.h"

namespace longshore::sandbox {
namespace {

// A classic-BPF interpreter for seccomp programs, so the policy is checked for
// every architecture it names, whatever this kernel can execute.
uint32_t RunBpf(const std::string& program, const seccomp_data& data) {
  const auto* insns = reinterpret_cast<const sock_filter*>(program.data());
  const size_t n = program.size() / sizeof(sock_filter);
  const auto* bytes = reinterpret_cast<const unsigned char*>(&data);
  uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {};
  for (size_t pc = 0; pc < n; ++pc) {
    const sock_filter& in = insns[pc];
    const uint32_t k = in.k;
    switch (BPF_CLASS(in.code)) {
      case BPF_LD:
        if (BPF_MODE(in.code) == BPF_ABS) {
          EXPECT_EQ(BPF_SIZE(in.code), BPF_W);
          EXPECT_LE(k + 4, sizeof(data));
          std::memcpy(&a, bytes + k, 4);
        } else if (BPF_MODE(in.code) == BPF_IMM) {
          a = k;
        } else if (BPF_MODE(in.code) == BPF_MEM) {
          a = mem[k];
        } else {
          ADD_FAILURE() << "unexpected LD mode at " << pc;
          return 0;
        }
        break;
      case BPF_LDX:
        x = BPF_MODE(in.code) == BPF_MEM ? mem[k] : k;
        break;
      case BPF_ST:
        mem[k] = a;
        break;
      case BPF_STX:
        mem[k] = x;
        break;
      case BPF_ALU: {
        const uint32_t v = BPF_SRC(in.code) == BPF_X ? x : k;
        switch (BPF_OP(in.code)) {
          case BPF_ADD:
            a += v;
            break;
          case BPF_SUB:
            a -= v;
            break;
          case BPF_MUL:
            a *= v;
            break;
          case BPF_DIV:
            a = v ? a / v : 0;
            break;
          case BPF_OR:
            a |= v;
            break;
          case BPF_AND:
            a &= v;
            break;
          case BPF_LSH:
            a <<= v;
            break;
          case BPF_RSH:
            a >>= v;
            break;
          case BPF_NEG:
            a = -a;
            break;
          case BPF_XOR:
            a ^= v;
            break;
          default:
            ADD_FAILURE() << "unexpected ALU op";
            return 0;
        }
        break;
      }
      case BPF_JMP: {
        const uint32_t v = BPF_SRC(in.code) == BPF_X ? x : k;
        bool taken = false;
        switch (BPF_OP(in.code)) {
          case BPF_JA:
            pc += k;
            continue;
          case BPF_JEQ:
            taken = a == v;
            break;
          case BPF_JGT:
            taken = a > v;
            break;
          case BPF_JGE:
            taken = a >= v;
            break;
          case BPF_JSET:
            taken = (a & v) != 0;
            break;
          default:
            ADD_FAILURE() << "unexpected JMP op";
            return 0;
        }
        pc += taken ? in.jt : in.jf;
        break;
      }
      case BPF_RET:
        return BPF_RVAL(in.code) == BPF_A ? a : k;
      case BPF_MISC:
        if (BPF_MISCOP(in.code) == BPF_TAX) {
          x = a;
        } else {
          a = x;
        }
        break;
    }
  }
  ADD_FAILURE() << "program ran off its end";
  return 0;
}

constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kEperm = SECCOMP_RET_ERRNO | EPERM;
constexpr uint32_t kEnosys = SECCOMP_RET_ERRNO | ENOSYS;
constexpr uint32_t kX32Bit = 0x40000000;

// i386 syscall numbers (arch/x86/entry/syscalls/syscall_32.tbl).
constexpr int kI386Getpid = 20;
constexpr int kI386Mount = 21;
constexpr int kI386Personality = 136;
constexpr int kI386Unshare = 310;
constexpr int kI386Socket = 359;
constexpr int kI386Keyctl = 288;

class SeccompPolicyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = CompileSeccompBpf();
    ASSERT_TRUE(p.ok()) << p.status();
    program_ = new std::string(*p);
  }
  static void TearDownTestSuite() { delete program_; }

  static uint32_t Eval(uint32_t arch, int nr, std::vector<uint64_t> args = {}) {
    seccomp_data d = {};
    d.nr = nr;
    d.arch = arch;
    for (size_t i = 0; i < args.size() && i < 6; ++i) d.args[i] = args[i];
    return RunBpf(*program_, d);
  }
  static uint32_t X86_64(int nr, std::vector<uint64_t> args = {}) {
    return Eval(AUDIT_ARCH_X86_64, nr, std::move(args));
  }
  static uint32_t I386(int nr, std::vector<uint64_t> args = {}) {
    return Eval(AUDIT_ARCH_I386, nr, std::move(args));
  }
  static uint32_t X32(int nr, std::vector<uint64_t> args = {}) {
    return Eval(AUDIT_ARCH_X86_64, nr | kX32Bit, std::move(args));
  }

  static std::string* program_;
};
std::string* SeccompPolicyTest::program_ = nullptr;

TEST_F(SeccompPolicyTest, ProgramHasAValidShape) {
  EXPECT_TRUE(ValidateSeccompBpf(*program_).ok());
  EXPECT_FALSE(ValidateSeccompBpf(program_->substr(0, 7)).ok());
  EXPECT_FALSE(ValidateSeccompBpf("").ok());
}

TEST_F(SeccompPolicyTest, NativeAllowListAndDefaultDeny) {
  EXPECT_EQ(X86_64(SYS_getpid), kAllow);
  EXPECT_EQ(X86_64(SYS_read), kAllow);
  EXPECT_EQ(X86_64(SYS_execve), kAllow);
  EXPECT_EQ(X86_64(SYS_chroot), kAllow);
  EXPECT_EQ(X86_64(SYS_ptrace), kAllow);
  for (int nr : {SYS_mount,
                 SYS_umount2,
                 SYS_pivot_root,
                 SYS_unshare,
                 SYS_setns,
                 SYS_bpf,
                 SYS_perf_event_open,
                 SYS_userfaultfd,
                 SYS_keyctl,
                 SYS_add_key,
                 SYS_request_key,
                 SYS_io_uring_setup,
                 SYS_open_by_handle_at,
                 SYS_init_module,
                 SYS_kexec_load,
                 SYS_reboot,
                 SYS_syslog,
                 SYS_swapon,
                 SYS_iopl,
                 SYS_fanotify_init,
                 SYS_acct,
                 SYS_settimeofday}) {
    EXPECT_EQ(X86_64(nr), kEperm) << "syscall " << nr;
  }
}

TEST_F(SeccompPolicyTest, CloneMayNotCreateNamespaces) {
  EXPECT_EQ(X86_64(SYS_clone, {SIGCHLD}), kAllow);
  EXPECT_EQ(X86_64(SYS_clone, {CLONE_VM | CLONE_THREAD | CLONE_SIGHAND}),
            kAllow);
  for (uint64_t flag : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET,
                        CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP}) {
    EXPECT_EQ(X86_64(SYS_clone, {flag | SIGCHLD}), kEperm) << flag;
  }
  // clone3 passes its flags in memory the filter cannot read: ENOSYS makes
  // libc fall back to clone.
  EXPECT_EQ(X86_64(SYS_clone3), kEnosys);
}

TEST_F(SeccompPolicyTest, PersonalityRule) {
  EXPECT_EQ(X86_64(SYS_personality, {0}), kAllow);
  EXPECT_EQ(X86_64(SYS_personality, {0xffffffff}), kAllow);
  EXPECT_EQ(X86_64(SYS_personality, {0x20008}), kAllow);
  EXPECT_EQ(X86_64(SYS_personality, {0x0400000}), kEperm);  // READ_IMPLIES_EXEC
  EXPECT_EQ(X86_64(SYS_personality, {0x0040000}), kEperm);  // ADDR_NO_RANDOMIZE
}

TEST_F(SeccompPolicyTest, SocketFamilyRule) {
  EXPECT_EQ(X86_64(SYS_socket, {AF_UNIX, SOCK_STREAM}), kAllow);
  EXPECT_EQ(X86_64(SYS_socket, {AF_INET, SOCK_DGRAM}), kAllow);
  EXPECT_EQ(X86_64(SYS_socket, {AF_INET6, SOCK_STREAM}), kAllow);
  EXPECT_EQ(X86_64(SYS_socket, {AF_NETLINK, SOCK_RAW}), kAllow);
  EXPECT_EQ(X86_64(SYS_socket, {AF_PACKET, SOCK_RAW}), kAllow);
  EXPECT_EQ(X86_64(SYS_socket, {39}), kAllow);  // AF_NFC
  EXPECT_EQ(X86_64(SYS_socket, {AF_VSOCK}), kEperm);
  EXPECT_EQ(X86_64(SYS_socket, {AF_ALG}), kEperm);
  // The kernel reads an int: high bits must not smuggle AF_VSOCK through.
  EXPECT_EQ(X86_64(SYS_socket, {(1ull << 32) | AF_VSOCK}), kEperm);
  EXPECT_EQ(X86_64(SYS_socket, {(1ull << 32) | AF_UNIX}), kEperm);
}

TEST_F(SeccompPolicyTest, I386CallsMeetTheSameRules) {
  EXPECT_EQ(I386(kI386Getpid), kAllow);
  EXPECT_EQ(I386(kI386Mount), kEperm);
  EXPECT_EQ(I386(kI386Unshare), kEperm);
  EXPECT_EQ(I386(kI386Keyctl), kEperm);
  EXPECT_EQ(I386(kI386Personality, {0x0400000}), kEperm);
  EXPECT_EQ(I386(kI386Socket, {AF_INET}), kAllow);
  EXPECT_EQ(I386(kI386Socket, {AF_VSOCK}), kEperm);
}

TEST_F(SeccompPolicyTest, X32CallsMeetTheSameRules) {
  EXPECT_EQ(X32(SYS_getpid), kAllow);
  EXPECT_EQ(X32(SYS_mount), kEperm);
  EXPECT_EQ(X32(SYS_unshare), kEperm);
  EXPECT_EQ(X32(SYS_socket, {AF_VSOCK}), kEperm);
}

TEST_F(SeccompPolicyTest, UnknownArchitectureIsKilled) {
  constexpr uint32_t kAarch64 = 0xC00000B7;
  EXPECT_EQ(Eval(kAarch64, 172) & SECCOMP_RET_ACTION_FULL,
            SECCOMP_RET_KILL_PROCESS);
}

TEST_F(SeccompPolicyTest, WritesAndReadsTheProgramFile) {
  char tmpl[] = "/tmp/seccomp_policy_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/policy.bpf";
  ASSERT_TRUE(WriteSeccompBpfFile(path).ok());
  auto read = ReadSeccompBpfFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, *program_);
  ASSERT_TRUE(WriteFileAtomic(path, "12345").ok());
  EXPECT_FALSE(ReadSeccompBpfFile(path).ok());
  ASSERT_TRUE(RemoveTree(tmpl).ok());
}

// Installs the real filter in a child and checks what the kernel answers.
TEST_F(SeccompPolicyTest, KernelEnforcesTheInstalledProgram) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(100);
    if (InstallSeccompBpf(*program_) != 0) _exit(101);
    if (getpid() <= 0) _exit(102);
    if (unshare(CLONE_NEWUSER) == 0 || errno != EPERM) _exit(103);
    if (socket(AF_VSOCK, SOCK_STREAM, 0) >= 0 || errno != EPERM) _exit(104);
    if (socket(AF_ALG, SOCK_SEQPACKET, 0) >= 0 || errno != EPERM) _exit(105);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) _exit(106);
    close(s);
    if (syscall(SYS_clone3, nullptr, 0) >= 0 || errno != ENOSYS) _exit(107);
    if (syscall(SYS_keyctl, 0, 0, 0, 0, 0) >= 0 || errno != EPERM) _exit(108);
    // x32 mount: refused by the filter (EPERM) before the kernel could say
    // whether it supports x32 at all (ENOSYS).
    if (syscall(SYS_mount | kX32Bit, 0, 0, 0, 0, 0) >= 0 || errno != EPERM) {
      _exit(109);
    }
    pid_t child = fork();  // clone without namespace flags
    if (child < 0) _exit(110);
    if (child == 0) _exit(0);
    int st;
    if (waitpid(child, &st, 0) != child || st != 0) _exit(111);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status))
      << "child died with signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "check " << WEXITSTATUS(status) << " failed (see the test source)";
}

}  // namespace
}  // namespace longshore::sandbox
