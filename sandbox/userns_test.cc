#include "sandbox/userns.h"

#include <signal.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/test_support.h"

namespace longshore::sandbox {
namespace {

using ::testing::HasSubstr;
using testing::RunOptions;

class UserNamespaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto user = testing::FindUnprivilegedUser();
    ASSERT_TRUE(user.ok()) << user.status();
    user_ = *user;
    auto dir = testing::ScratchDir::Create("userns_test.");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<testing::ScratchDir>(std::move(*dir));
    auto src = testing::RunfilePath("userns_exec");
    ASSERT_TRUE(src.ok()) << src.status();
    exe_ = dir_->path() + "/userns_exec";
    ASSERT_TRUE(testing::CopyExecutable(*src, exe_).ok());
  }

  testing::UnprivilegedUser user_;
  std::unique_ptr<testing::ScratchDir> dir_;
  std::string exe_;
};

TEST_F(UserNamespaceTest, ReExecutesInsideTheSubordinateRange) {
  auto r = testing::Run({exe_, "--report", "3"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3) << r->err;  // The child's status comes back.
  EXPECT_THAT(r->out, HasSubstr("in_worker_userns=1\n"));
  EXPECT_THAT(r->out, HasSubstr("uid=0 gid=0\n"));
  EXPECT_THAT(r->out, HasSubstr("groups=0\n"));
  // 0..65535 onto the range from /etc/subuid, then the worker's own ids.
  auto subuid = SubordinateIdFile::Load("/etc/subuid");
  ASSERT_TRUE(subuid.ok()) << subuid.status();
  auto range = subuid->FirstRangeFor("longshore", user_.uid, 65536);
  ASSERT_TRUE(range.ok()) << "/etc/subuid has no 65536-id range for longshore";
  auto parsed_start = r->out.find("uid_map=");
  ASSERT_NE(parsed_start, std::string::npos);
  auto gid_start = r->out.find("gid_map=");
  auto uid_map =
      ParseIdMap(r->out.substr(parsed_start + 8, gid_start - parsed_start - 8));
  ASSERT_TRUE(uid_map.ok()) << uid_map.status();
  ASSERT_EQ(uid_map->size(), 2u) << r->out;
  EXPECT_EQ((*uid_map)[0], (IdMapExtent{0, range->start, 65536}));
  EXPECT_EQ((*uid_map)[1], (IdMapExtent{65536, user_.uid, 1}));
  EXPECT_TRUE(r->err.empty()) << r->err;
}

TEST_F(UserNamespaceTest, ForwardsSigtermToTheChild) {
  RunOptions opts;
  opts.on_first_line = [](pid_t pid) { kill(pid, SIGTERM); };
  auto r = testing::Run({exe_, "--wait-for-signal"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "ready\n");
  EXPECT_EQ(r->exit_code, 40 + SIGTERM) << r->err;
}

TEST_F(UserNamespaceTest, RealRootIsRefused) {
  // This process is real root (see FindUnprivilegedUser).
  absl::Status s = EnterUserNamespace({});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("real root"));
  EXPECT_FALSE(InWorkerUserNamespace());
  EXPECT_TRUE(InInitialUserNamespace());
  // The same through the binary.
  RunOptions opts;
  opts.as_root = true;
  auto r = testing::Run({exe_, "--report"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 125);
  EXPECT_THAT(r->err, HasSubstr("refusing to run as real root"));
}

TEST_F(UserNamespaceTest, RefusesOnceAThreadExists) {
  EXPECT_TRUE(CheckSingleThreaded().ok());
  bool stop = false;
  std::thread t([&stop] {
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) usleep(1000);
  });
  absl::Status s = CheckSingleThreaded();
  // allow_real_root gets past the root check to the thread check.
  UserNamespaceOptions opts;
  opts.allow_real_root = true;
  absl::Status entered = EnterUserNamespace(opts);
  __atomic_store_n(&stop, true, __ATOMIC_SEQ_CST);
  t.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("2 threads"));
  EXPECT_EQ(entered.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(entered.message()), HasSubstr("threads"));
}

TEST_F(UserNamespaceTest, PlanFallsBackToASingleIdWithAWarning) {
  const std::string subuid = dir_->path() + "/subuid";
  ASSERT_TRUE(WriteFileAtomic(subuid, "someoneelse:100000:65536\n").ok());
  UserNamespaceOptions opts;
  opts.subuid_path = subuid;
  opts.subgid_path = subuid;
  auto plan = PlanUserNamespace(opts);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->use_helpers);
  ASSERT_EQ(plan->uid_map.size(), 1u);
  EXPECT_EQ(plan->uid_map[0], (IdMapExtent{0, geteuid(), 1}));
  EXPECT_THAT(plan->warning, HasSubstr(subuid));
  EXPECT_THAT(plan->warning, HasSubstr("mapping only uid"));

  ASSERT_TRUE(WriteFileAtomic(subuid, "0:200000:65536\n").ok());
  plan = PlanUserNamespace(opts);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->use_helpers);
  ASSERT_EQ(plan->uid_map.size(), 2u);
  EXPECT_EQ(plan->uid_map[0], (IdMapExtent{0, 200000, 65536}));
  EXPECT_EQ(plan->uid_map[1], (IdMapExtent{65536, geteuid(), 1}));
  EXPECT_TRUE(plan->warning.empty());
}

}  // namespace
}  // namespace longshore::sandbox
