#include "scheduler/build_journal.h"

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "gtest/gtest.h"

namespace longshore::scheduler {
namespace {

std::string TempStateDir() {
  const char* tmp = getenv("TEST_TMPDIR");
  auto dir = MakeTempDir(tmp != nullptr ? tmp : "/tmp", "journal-test-");
  EXPECT_TRUE(dir.ok()) << dir.status();
  return *dir;
}

BuildRecord NewRecord(const std::string& id) {
  BuildRecord r;
  r.id = id;
  r.spec.set_dockerfile("FROM scratch\n");
  r.spec.set_submitter("ci-" + id);
  r.spec.add_tags("example.com/app:" + id);
  r.created_ns = r.queued_ns = 1000;
  return r;
}

TEST(BuildJournalTest, RecordsSurviveReopen) {
  std::string dir = TempStateDir();
  std::string path = dir + "/journal.db";
  {
    auto journal = BuildJournal::Open(path);
    ASSERT_TRUE(journal.ok()) << journal.status();
    BuildRecord a = NewRecord("a");
    BuildRecord b = NewRecord("b");
    ASSERT_TRUE((*journal)->Insert(&a).ok());
    ASSERT_TRUE((*journal)->Insert(&b).ok());
    EXPECT_LT(a.order, b.order);
    b.state = longshore::v1::RUNNING;
    b.worker_id = "w1";
    b.attempt = 2;
    b.result.set_error("partial");
    ASSERT_TRUE((*journal)->Update(b).ok());
    BuildRecord dup = NewRecord("a");
    EXPECT_TRUE(absl::IsAlreadyExists((*journal)->Insert(&dup)));
  }
  auto journal = BuildJournal::Open(path);
  ASSERT_TRUE(journal.ok()) << journal.status();
  auto b = (*journal)->Get("b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->state, longshore::v1::RUNNING);
  EXPECT_EQ(b->worker_id, "w1");
  EXPECT_EQ(b->attempt, 2);
  EXPECT_EQ(b->spec.submitter(), "ci-b");
  EXPECT_EQ(b->spec.tags(0), "example.com/app:b");
  EXPECT_EQ(b->result.error(), "partial");

  auto active = (*journal)->ListActive();
  ASSERT_TRUE(active.ok());
  ASSERT_EQ(active->size(), 2u);
  EXPECT_EQ((*active)[0].id, "a");  // Submission order.
  EXPECT_EQ((*active)[1].id, "b");

  auto running = (*journal)->List({longshore::v1::RUNNING}, 0);
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(running->size(), 1u);
  EXPECT_EQ((*running)[0].id, "b");
  auto newest = (*journal)->List({}, 1);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].id, "b");

  EXPECT_TRUE(absl::IsNotFound((*journal)->Get("missing").status()));
  BuildRecord ghost = NewRecord("ghost");
  EXPECT_TRUE(absl::IsNotFound((*journal)->Update(ghost)));
  ASSERT_TRUE(RemoveTree(dir).ok());
}

TEST(BuildJournalTest, EventsAndOutputsSurviveReopen) {
  std::string dir = TempStateDir();
  std::string path = dir + "/journal.db";
  {
    auto journal = BuildJournal::Open(path);
    ASSERT_TRUE(journal.ok());
    for (int seq = 1; seq <= 5; ++seq) {
      longshore::v1::BuildEvent ev;
      ev.set_sequence(seq);
      ev.mutable_log()->set_data(absl::StrCat("line ", seq));
      ASSERT_TRUE((*journal)->AppendEvent("x", ev).ok());
    }
    longshore::v1::BuildEvent dup;
    dup.set_sequence(3);
    EXPECT_TRUE(absl::IsAlreadyExists((*journal)->AppendEvent("x", dup)));
    ASSERT_TRUE((*journal)->PutOutput("x", {0, 1, "sha256:aa", 10}).ok());
    ASSERT_TRUE((*journal)->PutOutput("x", {0, 2, "sha256:bb", 20}).ok());
  }
  auto journal = BuildJournal::Open(path);
  ASSERT_TRUE(journal.ok());
  auto events = (*journal)->ReadEvents("x", 2, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].sequence(), 3u);
  EXPECT_EQ((*events)[0].log().data(), "line 3");
  EXPECT_EQ((*events)[2].sequence(), 5u);
  auto limited = (*journal)->ReadEvents("x", 0, 2);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->size(), 2u);
  auto last = (*journal)->LastEvent("x");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->sequence(), 5u);
  EXPECT_TRUE(absl::IsNotFound((*journal)->LastEvent("y").status()));

  auto outputs = (*journal)->ListOutputs("x");
  ASSERT_TRUE(outputs.ok());
  ASSERT_EQ(outputs->size(), 1u);  // Index 0 replaced by the later attempt.
  EXPECT_EQ((*outputs)[0].attempt, 2);
  EXPECT_EQ((*outputs)[0].digest, "sha256:bb");
  EXPECT_EQ((*outputs)[0].size, 20);
  ASSERT_TRUE(RemoveTree(dir).ok());
}

TEST(BuildJournalTest, UpdateKeepsTheSpecAndGetSpecReadsIt) {
  auto journal = BuildJournal::Open(TempStateDir() + "/journal.db");
  ASSERT_TRUE(journal.ok()) << journal.status();
  BuildRecord r = NewRecord("s");
  ASSERT_TRUE((*journal)->Insert(&r).ok());
  // The coordinator keeps records without their Dockerfile; an update of
  // such a record must not erase the journaled one.
  r.spec.clear_dockerfile();
  r.state = longshore::v1::RUNNING;
  ASSERT_TRUE((*journal)->Update(r).ok());
  auto spec = (*journal)->GetSpec("s");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->dockerfile(), "FROM scratch\n");
  EXPECT_TRUE(absl::IsNotFound((*journal)->GetSpec("absent").status()));
}

TEST(BuildJournalTest, BatchCommitsTogetherAndOthersWaitForTheCommit) {
  std::string path = TempStateDir() + "/journal.db";
  auto journal = BuildJournal::Open(path);
  ASSERT_TRUE(journal.ok()) << journal.status();
  std::atomic<bool> read_done{false};
  std::thread reader;
  {
    BuildJournal::Batch outer(journal->get());
    BuildRecord a = NewRecord("a");
    ASSERT_TRUE((*journal)->Insert(&a).ok());
    {
      BuildJournal::Batch inner(journal->get());  // Nests.
      BuildRecord b = NewRecord("b");
      ASSERT_TRUE((*journal)->Insert(&b).ok());
    }
    // A second connection sees nothing before the outer batch commits.
    auto other = BuildJournal::Open(path);
    ASSERT_TRUE(other.ok()) << other.status();
    EXPECT_TRUE(absl::IsNotFound((*other)->Get("a").status()));
    // Another thread of this journal waits for the commit.
    reader = std::thread([&] {
      auto got = (*journal)->Get("b");
      EXPECT_TRUE(got.ok()) << got.status();
      read_done = true;
    });
    absl::SleepFor(absl::Milliseconds(100));
    EXPECT_FALSE(read_done.load());
  }
  reader.join();
  EXPECT_TRUE(read_done.load());
  auto other = BuildJournal::Open(path);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE((*other)->Get("a").ok());
  EXPECT_TRUE((*other)->Get("b").ok());
}

TEST(BuildJournalTest, AnEndedBatchIsCommittedByTheCommitterOrBySync) {
  std::string path = TempStateDir() + "/journal.db";
  auto journal = BuildJournal::Open(path);
  ASSERT_TRUE(journal.ok()) << journal.status();
  auto other = BuildJournal::Open(path);
  ASSERT_TRUE(other.ok()) << other.status();
  // A window far longer than the test: only Sync can commit in time.
  auto patient = BuildJournal::Open(path, absl::Seconds(60));
  ASSERT_TRUE(patient.ok()) << patient.status();
  {
    BuildJournal::Batch batch(journal->get());
    BuildRecord a = NewRecord("a");
    ASSERT_TRUE((*journal)->Insert(&a).ok());
  }
  // Nobody calls in: the committer commits it after its group window.
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    seen = (*other)->Get("a").ok();
    if (!seen) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(seen);
  {
    BuildJournal::Batch batch(patient->get());
    BuildRecord b = NewRecord("b");
    ASSERT_TRUE((*patient)->Insert(&b).ok());
  }
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE((*other)->Get("b").ok());  // Still open, in its window.
  (*patient)->Sync();  // Durable on return: another connection sees it.
  EXPECT_TRUE((*other)->Get("b").ok());
}

}  // namespace
}  // namespace longshore::scheduler
