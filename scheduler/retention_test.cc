#include "scheduler/retention.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "gtest/gtest.h"

namespace longshore::scheduler {
namespace {

using longshore::v1::BuildState;

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    auto dir = MakeTempDir(tmp != nullptr ? tmp : "/tmp", "retention-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    auto journal = BuildJournal::Open(dir_ + "/journal.db");
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
    auto blobs = BlobStore::Open(dir_);
    ASSERT_TRUE(blobs.ok()) << blobs.status();
    blobs_ = std::move(*blobs);
    events_ = std::make_unique<EventLog>(journal_.get());
  }
  void TearDown() override { RemoveTree(dir_).IgnoreError(); }

  // A stored context last used at `used`; returns its digest.
  std::string Context(const std::string& content, absl::Time used) {
    const std::string digest = Sha256Digest(content);
    auto path = blobs_->ContextPath(digest);
    EXPECT_TRUE(path.ok());
    EXPECT_TRUE(WriteFileAtomic(*path, content).ok());
    struct timespec times[2] = {absl::ToTimespec(used), absl::ToTimespec(used)};
    EXPECT_EQ(utimensat(AT_FDCWD, path->c_str(), times, 0), 0);
    return digest;
  }

  // A build in `state`, finished at `finished` (unless queued or running),
  // with one event and one output file.
  void Build(const std::string& id, BuildState state, absl::Time finished,
             const std::string& context) {
    BuildRecord r;
    r.id = id;
    r.spec.set_dockerfile("FROM scratch\n");
    r.spec.set_context_digest(context);
    r.state = state;
    r.created_ns = r.queued_ns = absl::ToUnixNanos(finished - absl::Hours(1));
    if (state != longshore::v1::QUEUED && state != longshore::v1::RUNNING) {
      r.finished_ns = absl::ToUnixNanos(finished);
    }
    ASSERT_TRUE(journal_->Insert(&r).ok());
    longshore::v1::BuildEvent event;
    event.mutable_log()->set_data("hello from " + id);
    ASSERT_TRUE(events_->Append(id, event).ok());
    OutputRecord out;
    out.index = 0;
    out.attempt = 1;
    out.digest = Sha256Digest(id);
    out.size = static_cast<int64_t>(id.size());
    ASSERT_TRUE(journal_->PutOutput(id, out).ok());
    auto writer = blobs_->NewOutputWriter(id);
    ASSERT_TRUE(writer.ok());
    auto path = blobs_->OutputPath(id, 0);
    ASSERT_TRUE(path.ok());
    ASSERT_TRUE(WriteFileAtomic(*path, id).ok());
  }

  bool Gone(const std::string& id) {
    auto outputs = journal_->ListOutputs(id);
    auto events = events_->Read(id, 0, 10);
    auto path = blobs_->OutputPath(id, 0);
    return absl::IsNotFound(journal_->Get(id).status()) && outputs.ok() &&
           outputs->empty() && events.ok() && events->empty() &&
           !PathExists(*path);
  }
  bool Kept(const std::string& id) {
    auto outputs = journal_->ListOutputs(id);
    auto events = events_->Read(id, 0, 10);
    auto path = blobs_->OutputPath(id, 0);
    return journal_->Get(id).ok() && outputs.ok() && outputs->size() == 1 &&
           events.ok() && events->size() == 1 && PathExists(*path);
  }
  bool Stored(const std::string& digest) {
    return blobs_->ContextPath(digest).ok() &&
           PathExists(*blobs_->ContextPath(digest));
  }

  std::string dir_;
  std::unique_ptr<BuildJournal> journal_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<EventLog> events_;
};

TEST_F(RetentionTest, RemovesWhatIsOlderThanTheRetentionAndNothingElse) {
  const absl::Time now = absl::Now();
  const std::string old_only =
      Context("used by old builds only", now - absl::Hours(50));
  const std::string shared =
      Context("used by an old and a recent build", now - absl::Hours(50));
  const std::string queued_ctx =
      Context("used by a queued build", now - absl::Hours(200));
  const std::string fresh =
      Context("uploaded an hour ago, never submitted", now - absl::Hours(1));
  const std::string asked =
      Context("stat'ed by a client just now", now - absl::Hours(90));
  Build("old-ok", longshore::v1::SUCCEEDED, now - absl::Hours(48), old_only);
  Build("old-failed", longshore::v1::FAILED, now - absl::Hours(30), old_only);
  Build("old-cancelled", longshore::v1::CANCELLED, now - absl::Hours(25),
        shared);
  Build("recent", longshore::v1::SUCCEEDED, now - absl::Hours(1), shared);
  Build("queued", longshore::v1::QUEUED, now - absl::Hours(100), queued_ctx);
  Build("running", longshore::v1::RUNNING, now - absl::Hours(100), queued_ctx);
  // A client is told the context is held: it must survive the sweep.
  ASSERT_TRUE(blobs_->StatContext(asked).ok());

  RetentionOptions options;
  options.keep = absl::Hours(24);
  options.batch = 2;  // three builds go: two transactions and a short one
  Retention retention(options, journal_.get(), blobs_.get(), events_.get());
  auto swept = retention.Sweep(now);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(swept->builds, 3);
  EXPECT_EQ(swept->contexts, 1);
  EXPECT_EQ(
      swept->context_bytes,
      static_cast<int64_t>(std::string("used by old builds only").size()));

  EXPECT_TRUE(Gone("old-ok"));
  EXPECT_TRUE(Gone("old-failed"));
  EXPECT_TRUE(Gone("old-cancelled"));
  EXPECT_TRUE(Kept("recent"));
  EXPECT_TRUE(Kept("queued"));
  EXPECT_TRUE(Kept("running"));
  EXPECT_FALSE(Stored(old_only));
  EXPECT_TRUE(Stored(shared));      // "recent" uses it
  EXPECT_TRUE(Stored(queued_ctx));  // queued and running builds use it
  EXPECT_TRUE(Stored(fresh));       // younger than the retention
  EXPECT_TRUE(Stored(asked));       // StatContext counts as a use

  // Nothing more to do the second time.
  swept = retention.Sweep(now);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(swept->builds, 0);
  EXPECT_EQ(swept->contexts, 0);
}

TEST_F(RetentionTest, ZeroKeepsEverything) {
  const absl::Time now = absl::Now();
  const std::string ctx = Context("old", now - absl::Hours(1000));
  Build("ancient", longshore::v1::SUCCEEDED, now - absl::Hours(1000), ctx);
  const std::string orphan = Context("orphan", now - absl::Hours(1000));
  RetentionOptions options;
  options.keep = absl::ZeroDuration();
  Retention retention(options, journal_.get(), blobs_.get(), events_.get());
  auto swept = retention.Sweep(now);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(swept->builds, 0);
  EXPECT_TRUE(Kept("ancient"));
  EXPECT_TRUE(Stored(orphan));
}

}  // namespace
}  // namespace longshore::scheduler
