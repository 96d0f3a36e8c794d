#include "scheduler/event_log.h"

#include <thread>

#include "absl/synchronization/notification.h"
#include "common/file_util.h"
#include "gtest/gtest.h"

namespace longshore::scheduler {
namespace {

using longshore::v1::BuildEvent;

class EventLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    auto dir = MakeTempDir(tmp != nullptr ? tmp : "/tmp", "eventlog-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    Reopen();
  }
  void TearDown() override {
    log_.reset();
    journal_.reset();
    ASSERT_TRUE(RemoveTree(dir_).ok());
  }
  void Reopen() {
    log_.reset();
    journal_.reset();
    auto journal = BuildJournal::Open(dir_ + "/journal.db");
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
    log_ = std::make_unique<EventLog>(
        journal_.get(), [] { return absl::FromUnixSeconds(1700000000); });
  }
  BuildEvent Log(const std::string& text) {
    BuildEvent ev;
    ev.mutable_log()->set_data(text);
    return ev;
  }

  std::string dir_;
  std::unique_ptr<BuildJournal> journal_;
  std::unique_ptr<EventLog> log_;
};

TEST_F(EventLogTest, AssignsSequenceAndTimePerBuild) {
  auto a1 = log_->Append("a", Log("a1"));
  auto b1 = log_->Append("b", Log("b1"));
  auto a2 = log_->Append("a", Log("a2"));
  ASSERT_TRUE(a1.ok() && b1.ok() && a2.ok());
  EXPECT_EQ(a1->sequence(), 1u);
  EXPECT_EQ(b1->sequence(), 1u);
  EXPECT_EQ(a2->sequence(), 2u);
  EXPECT_EQ(a2->time_unix_nanos(), 1700000000LL * 1000000000LL);
}

TEST_F(EventLogTest, ReplaysAfterSequenceAcrossReopen) {
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(log_->Append("a", Log("line" + std::to_string(i))).ok());
  }
  Reopen();
  // Sequence numbering continues where the journal left off.
  auto fifth = log_->Append("a", Log("line5"));
  ASSERT_TRUE(fifth.ok());
  EXPECT_EQ(fifth->sequence(), 5u);

  auto missed = log_->Read("a", 2, 0);
  ASSERT_TRUE(missed.ok());
  ASSERT_EQ(missed->size(), 3u);
  EXPECT_EQ((*missed)[0].sequence(), 3u);
  EXPECT_EQ((*missed)[0].log().data(), "line3");
  EXPECT_EQ((*missed)[2].log().data(), "line5");
  auto none = log_->Read("a", 5, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(EventLogTest, FinishedAfterTheClosingEvent) {
  ASSERT_TRUE(log_->Append("a", Log("x")).ok());
  auto open = log_->FinishedAfter("a", 1);
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE(*open);
  BuildEvent done;
  done.mutable_build_finished()->set_result(longshore::v1::SUCCEEDED);
  ASSERT_TRUE(log_->Append("a", done).ok());
  auto before_end = log_->FinishedAfter("a", 1);
  ASSERT_TRUE(before_end.ok());
  EXPECT_FALSE(*before_end);  // Event 2 still to be read.
  Reopen();
  auto at_end = log_->FinishedAfter("a", 2);
  ASSERT_TRUE(at_end.ok());
  EXPECT_TRUE(*at_end);
}

TEST_F(EventLogTest, WaitForNewerWakesOnAppend) {
  ASSERT_TRUE(log_->Append("a", Log("first")).ok());
  EXPECT_TRUE(log_->WaitForNewer("a", 0, absl::ZeroDuration()));
  EXPECT_FALSE(log_->WaitForNewer("a", 1, absl::Milliseconds(20)));
  absl::Notification waiting;
  bool woke = false;
  std::thread waiter([&] {
    waiting.Notify();
    // Loop as Watch does: any wake-up re-checks.
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (!woke && absl::Now() < deadline) {
      woke = log_->WaitForNewer("a", 1, absl::Seconds(1));
    }
  });
  waiting.WaitForNotification();
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_TRUE(log_->Append("a", Log("second")).ok());
  waiter.join();
  EXPECT_TRUE(woke);
}

}  // namespace
}  // namespace longshore::scheduler
