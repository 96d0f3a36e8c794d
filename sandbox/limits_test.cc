#include "sandbox/limits.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/unique_fd.h"
#include "gtest/gtest.h"

namespace longshore::sandbox {
namespace {

class LimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = getenv("TEST_TMPDIR");
    auto d = MakeTempDir(t != nullptr ? t : "/tmp", "limits.");
    ASSERT_TRUE(d.ok()) << d.status();
    dir_ = *d;
  }
  void TearDown() override { (void)RemoveTree(dir_); }

  void WriteBytes(const std::string& path, size_t n) {
    ASSERT_TRUE(WriteFileAtomic(path, std::string(n, 'x')).ok());
  }

  std::string dir_;
};

TEST_F(LimitsTest, DiskUsageCountsAllocatedBytesOnce) {
  ASSERT_TRUE(MakeDirs(dir_ + "/a/b").ok());
  WriteBytes(dir_ + "/a/b/big", 1 << 20);
  ASSERT_EQ(link((dir_ + "/a/b/big").c_str(), (dir_ + "/a/hard").c_str()), 0);
  ASSERT_EQ(symlink("/etc", (dir_ + "/a/link").c_str()), 0);
  UniqueFd fd(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  auto used = DiskUsage(fd.get(), 0);
  ASSERT_TRUE(used.ok()) << used.status();
  // One MiB of data counted once (the hard link adds nothing), the symlink
  // not followed into /etc, plus a few directory blocks.
  EXPECT_GE(*used, 1u << 20);
  EXPECT_LT(*used, (1u << 20) + (256u << 10));
}

TEST_F(LimitsTest, DiskUsageStopsEarlyPastTheLimit) {
  for (int i = 0; i < 8; ++i) {
    WriteBytes(absl::StrCat(dir_, "/f", i), 256 << 10);
  }
  UniqueFd fd(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto used = DiskUsage(fd.get(), 300 << 10);
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_GT(*used, 300u << 10);
  EXPECT_LT(*used, 2u << 20);
}

TEST_F(LimitsTest, DiskUsageRefusesTreesTooDeepToMeasure) {
  std::string p = dir_;
  UniqueFd cur(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (int i = 0; i < kMaxDiskWalkDepth + 2; ++i) {
    ASSERT_EQ(mkdirat(cur.get(), "d", 0755), 0);
    cur.reset(openat(cur.get(), "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(cur);
  }
  UniqueFd fd(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto used = DiskUsage(fd.get(), 1 << 30);
  ASSERT_FALSE(used.ok());
  EXPECT_NE(used.status().message().find("nested deeper"), std::string::npos);
}

TEST_F(LimitsTest, CommandRlimitsAreSetHardAndSoft) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    StepLimits l;
    l.memory_bytes = 1ull << 30;
    l.pids = 100;
    l.disk_bytes = 1 << 20;
    l.nofile = 64;
    if (ApplyCommandRlimits(l) != 0) _exit(1);
    struct rlimit r;
    auto is = [&r](int res, uint64_t v) {
      return getrlimit(res, &r) == 0 && r.rlim_cur == v && r.rlim_max == v;
    };
    if (!is(RLIMIT_CORE, 0)) _exit(2);
    if (!is(RLIMIT_AS, 1ull << 30)) _exit(3);
    if (!is(RLIMIT_NPROC, 100)) _exit(4);
    if (!is(RLIMIT_FSIZE, 1 << 20)) _exit(5);
    if (!is(RLIMIT_NOFILE, 64)) _exit(6);
    // What the cgroup enforces is left to it.
    l.memory_in_cgroup = true;
    l.memory_bytes = 1ull << 20;
    if (ApplyCommandRlimits(l) != 0) _exit(7);
    if (!is(RLIMIT_AS, 1ull << 30)) _exit(8);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "check number that failed";
}

TEST_F(LimitsTest, CgroupTakesTheLimitsItsControllersCover) {
  // A directory standing in for a step's cgroup: the control files are plain
  // files here, so what is written can be read back.
  for (const char* f :
       {"memory.max", "memory.swap.max", "memory.oom.group", "pids.max"}) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/" + f, "").ok());
  }
  StepLimits l;
  l.memory_bytes = 64 << 20;
  l.pids = 10;
  ASSERT_TRUE(WriteCgroupLimits(dir_, {"memory", "pids"}, &l).ok());
  EXPECT_TRUE(l.memory_in_cgroup);
  EXPECT_TRUE(l.pids_in_cgroup);
  EXPECT_EQ(*ReadFile(dir_ + "/memory.max"), "67108864");
  EXPECT_EQ(*ReadFile(dir_ + "/memory.swap.max"), "0");
  EXPECT_EQ(*ReadFile(dir_ + "/memory.oom.group"), "1");
  EXPECT_EQ(*ReadFile(dir_ + "/pids.max"), "11");  // pid 1 included

  // Only pids delegated: memory stays with RLIMIT_AS.
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/memory.max", "unset").ok());
  ASSERT_TRUE(WriteCgroupLimits(dir_, {"pids", "cpu"}, &l).ok());
  EXPECT_FALSE(l.memory_in_cgroup);
  EXPECT_TRUE(l.pids_in_cgroup);
  EXPECT_EQ(*ReadFile(dir_ + "/memory.max"), "unset");
}

TEST_F(LimitsTest, CgroupWithoutControllersLeavesLimitsToRlimits) {
  ASSERT_TRUE(
      WriteFileAtomic(dir_ + "/cgroup.subtree_control", "cpu io\n").ok());
  StepLimits l;
  l.memory_bytes = 64 << 20;
  l.pids = 10;
  l.memory_in_cgroup = l.pids_in_cgroup = true;  // stale values are reset
  auto cg = StepCgroup::Create(dir_, "step-1", &l);
  ASSERT_TRUE(cg.ok()) << cg.status();
  EXPECT_TRUE(PathExists(dir_ + "/step-1"));
  EXPECT_FALSE(l.memory_in_cgroup);
  EXPECT_FALSE(l.pids_in_cgroup);
  EXPECT_FALSE(PathExists(dir_ + "/step-1/pids.max"));
}

TEST_F(LimitsTest, MissingSubtreeControlIsAnError) {
  StepLimits l;
  auto cg = StepCgroup::Create(dir_ + "/absent", "step-1", &l);
  ASSERT_FALSE(cg.ok());
  EXPECT_NE(cg.status().message().find("cgroup.subtree_control"),
            std::string::npos)
      << cg.status();
}

}  // namespace
}  // namespace longshore::sandbox
