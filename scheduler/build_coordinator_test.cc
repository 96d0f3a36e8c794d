#include "scheduler/build_coordinator.h"

#include <memory>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace longshore::scheduler {
namespace {

using longshore::v1::BuildEvent;
using longshore::v1::SchedulerMessage;
using ::testing::HasSubstr;

class RecordingChannel : public WorkerChannel {
 public:
  void Send(const SchedulerMessage& m) override {
    absl::MutexLock lock(&mu_);
    sent_.push_back(m);
  }
  void Close() override {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  std::vector<SchedulerMessage> sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  std::vector<longshore::v1::Assignment> assignments() {
    std::vector<longshore::v1::Assignment> out;
    for (const auto& m : sent()) {
      if (m.has_assignment()) out.push_back(m.assignment());
    }
    return out;
  }
  bool closed() {
    absl::MutexLock lock(&mu_);
    return closed_;
  }

 private:
  absl::Mutex mu_;
  std::vector<SchedulerMessage> sent_;
  bool closed_ = false;
};

// The coordinator and everything it writes to, opened on one state directory;
// Restart() drops them all and opens them again, as a scheduler restart does.
class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    auto dir = MakeTempDir(tmp != nullptr ? tmp : "/tmp", "coordinator-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    Open();
  }
  void TearDown() override {
    Close();
    ASSERT_TRUE(RemoveTree(dir_).ok());
  }
  void Open() {
    registry_ = std::make_shared<prometheus::Registry>();
    metrics_ = std::make_unique<SchedulerMetrics>(*registry_);
    auto journal = BuildJournal::Open(dir_ + "/journal.db");
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
    auto blobs = BlobStore::Open(dir_);
    ASSERT_TRUE(blobs.ok()) << blobs.status();
    blobs_ = std::move(*blobs);
    events_ = std::make_unique<EventLog>(journal_.get());
    CoordinatorOptions options;
    options.heartbeat_interval = absl::Milliseconds(50);
    options.missed_heartbeats_allowed = 2;
    options.reattach_grace = reattach_grace_;
    options.sealer = sealer_.get();
    coordinator_ = std::make_unique<BuildCoordinator>(
        options, journal_.get(), events_.get(), blobs_.get(), metrics_.get());
    ASSERT_TRUE(coordinator_->Recover().ok());
  }
  void Close() {
    coordinator_.reset();
    events_.reset();
    blobs_.reset();
    journal_.reset();
    metrics_.reset();
  }
  void Restart() {
    Close();
    Open();
  }

  // A build of its own: specs differ (a build arg), so none is merged.
  std::string Submit(const std::string& submitter = "ci") {
    longshore::v1::BuildSpec spec = Spec(submitter);
    auto* arg = spec.add_build_args();
    arg->set_key("N");
    arg->set_value(std::to_string(++submitted_));
    auto id = coordinator_->Submit(spec);
    EXPECT_TRUE(id.ok()) << id.status();
    return *id;
  }
  longshore::v1::BuildSpec Spec(const std::string& submitter = "ci") {
    longshore::v1::BuildSpec spec;
    spec.set_dockerfile("FROM scratch\n");
    spec.set_submitter(submitter);
    spec.add_outputs()->set_type(longshore::v1::OutputSpec::OCI);
    return spec;
  }
  std::string SubmitSpec(const longshore::v1::BuildSpec& spec) {
    auto id = coordinator_->Submit(spec);
    EXPECT_TRUE(id.ok()) << id.status();
    return *id;
  }
  std::pair<uint64_t, std::shared_ptr<RecordingChannel>> Connect(
      const std::string& id, int slots,
      const std::vector<std::pair<std::string, int>>& held = {}) {
    auto channel = std::make_shared<RecordingChannel>();
    longshore::v1::Register reg;
    reg.set_worker_id(id);
    reg.set_slots(slots);
    for (const auto& [build, attempt] : held) {
      auto* h = reg.add_held();
      h->set_build_id(build);
      h->set_attempt(attempt);
    }
    auto conn = coordinator_->ConnectWorker(reg, channel);
    EXPECT_TRUE(conn.ok()) << conn.status();
    return {*conn, channel};
  }
  BuildRecord Record(const std::string& id) {
    auto r = journal_->Get(id);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }
  std::vector<BuildEvent> Events(const std::string& id) {
    auto evs = events_->Read(id, 0, 0);
    EXPECT_TRUE(evs.ok()) << evs.status();
    return *evs;
  }
  void SendResult(uint64_t conn, const std::string& id, int attempt,
                  longshore::v1::BuildState state,
                  const std::string& error = "") {
    longshore::v1::WorkerMessage m;
    m.mutable_result()->set_build_id(id);
    m.mutable_result()->set_attempt(attempt);
    m.mutable_result()->set_state(state);
    m.mutable_result()->set_error(error);
    coordinator_->HandleWorkerMessage(conn, m);
  }

  // Orphaned builds are queued again at the next ExpireLeases unless a test
  // gives their workers time to come back.
  absl::Duration reattach_grace_ = absl::ZeroDuration();
  // Set (then Restart) to seal secrets into the journal.
  std::unique_ptr<SecretSealer> sealer_;
  int submitted_ = 0;
  std::string dir_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<SchedulerMetrics> metrics_;
  std::unique_ptr<BuildJournal> journal_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<BuildCoordinator> coordinator_;
};

TEST_F(CoordinatorTest,
       RestartKeepsQueuedAndRequeuesRunningWhenTheWorkerIsGone) {
  std::string a = Submit();
  std::string b = Submit();
  auto [conn, channel] = Connect("w1", 1);
  ASSERT_EQ(channel->assignments().size(), 1u);
  EXPECT_EQ(channel->assignments()[0].build_id(), a);
  EXPECT_EQ(Record(a).state, longshore::v1::RUNNING);

  Restart();
  // Its worker may come back holding it; until the grace ends it stays.
  EXPECT_EQ(Record(a).state, longshore::v1::RUNNING);
  coordinator_->ExpireLeases();

  BuildRecord ra = Record(a);
  EXPECT_EQ(ra.state, longshore::v1::QUEUED);
  EXPECT_EQ(ra.attempt, 2);
  EXPECT_TRUE(ra.worker_id.empty());
  BuildRecord rb = Record(b);
  EXPECT_EQ(rb.state, longshore::v1::QUEUED);
  EXPECT_EQ(rb.attempt, 1);
  auto info = coordinator_->GetBuild(a);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->attempts(), 1);  // One attempt started so far.

  // Queued, assigned, then queued again by the restart.
  auto evs = Events(a);
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_TRUE(evs[0].has_queued());
  EXPECT_TRUE(evs[1].has_assigned());
  EXPECT_EQ(evs[1].assigned().worker_id(), "w1");
  EXPECT_TRUE(evs[2].has_queued());
  EXPECT_EQ(evs[2].sequence(), 3u);

  // Still FIFO after the restart: a (older) goes before b.
  auto [conn2, channel2] = Connect("w2", 1);
  ASSERT_EQ(channel2->assignments().size(), 1u);
  EXPECT_EQ(channel2->assignments()[0].build_id(), a);
  EXPECT_EQ(channel2->assignments()[0].attempt(), 2);
}

TEST_F(CoordinatorTest, AQueuedBuildThatLostItsSecretsFailsNamingThem) {
  longshore::v1::BuildSpec spec = Spec();
  auto* secret = spec.add_secrets();
  secret->set_id("npm-token");
  secret->set_value("s3cret-value");
  const std::string id = SubmitSpec(spec);
  const std::string plain = Submit();
  // The journal keeps the id, never the value.
  BuildRecord stored = Record(id);
  ASSERT_EQ(stored.spec.secrets_size(), 1);
  EXPECT_EQ(stored.spec.secrets(0).id(), "npm-token");
  EXPECT_TRUE(stored.spec.secrets(0).value().empty());
  EXPECT_TRUE(stored.spec.secrets(0).sealed().empty());

  Restart();
  BuildRecord failed = Record(id);
  EXPECT_EQ(failed.state, longshore::v1::FAILED);
  EXPECT_THAT(failed.error, HasSubstr("secret \"npm-token\" was lost"));
  EXPECT_THAT(failed.error, HasSubstr("Resubmit"));
  // It never reaches a worker; the build without secrets still runs.
  auto [conn, channel] = Connect("w1", 2);
  ASSERT_EQ(channel->assignments().size(), 1u);
  EXPECT_EQ(channel->assignments()[0].build_id(), plain);
  bool error_event = false;
  for (const BuildEvent& ev : Events(id)) {
    error_event =
        error_event || (ev.has_error() &&
                        absl::StrContains(ev.error().message(), "npm-token"));
  }
  EXPECT_TRUE(error_event) << "the submitter's watch says why";
}

TEST_F(CoordinatorTest, SealedSecretsSurviveARestart) {
  sealer_ = std::make_unique<SecretSealer>(
      *SecretSealer::FromKey(std::string(32, 'k')));
  Restart();
  longshore::v1::BuildSpec spec = Spec();
  auto* secret = spec.add_secrets();
  secret->set_id("npm-token");
  secret->set_value("s3cret-value");
  const std::string id = SubmitSpec(spec);
  BuildRecord stored = Record(id);
  ASSERT_EQ(stored.spec.secrets_size(), 1);
  EXPECT_TRUE(stored.spec.secrets(0).value().empty());
  EXPECT_FALSE(stored.spec.secrets(0).sealed().empty());
  EXPECT_EQ(stored.spec.secrets(0).sealed().find("s3cret-value"),
            std::string::npos);

  Restart();
  EXPECT_EQ(Record(id).state, longshore::v1::QUEUED);
  auto [conn, channel] = Connect("w1", 1);
  ASSERT_EQ(channel->assignments().size(), 1u);
  const longshore::v1::BuildSpec sent = channel->assignments()[0].spec();
  ASSERT_EQ(sent.secrets_size(), 1);
  EXPECT_EQ(sent.secrets(0).id(), "npm-token");
  EXPECT_EQ(sent.secrets(0).value(), "s3cret-value");
  EXPECT_TRUE(sent.secrets(0).sealed().empty());
  // Clients see which secrets a build uses, not their values.
  auto info = coordinator_->GetBuild(id);
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->spec().secrets_size(), 1);
  EXPECT_TRUE(info->spec().secrets(0).value().empty());
  EXPECT_TRUE(info->spec().secrets(0).sealed().empty());

  // Under another key the sealed copy does not open: the build fails.
  longshore::v1::BuildSpec other = spec;
  other.add_build_args()->set_key("X");
  const std::string queued = SubmitSpec(other);
  sealer_ = std::make_unique<SecretSealer>(
      *SecretSealer::FromKey(std::string(32, 'z')));
  Restart();
  EXPECT_EQ(Record(queued).state, longshore::v1::FAILED);
  EXPECT_THAT(Record(queued).error, HasSubstr("did not open"));
}

TEST_F(CoordinatorTest, AttemptsAreBounded) {
  std::string a = Submit();
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto [conn, channel] = Connect("w", 1);
    ASSERT_EQ(channel->assignments().size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(channel->assignments()[0].attempt(), attempt);
    Restart();
    coordinator_->ExpireLeases();
  }
  BuildRecord r = Record(a);
  EXPECT_EQ(r.state, longshore::v1::FAILED);
  EXPECT_EQ(r.attempt, 3);
  EXPECT_NE(r.error.find("gave up after 3 attempts"), std::string::npos)
      << r.error;
  auto evs = Events(a);
  ASSERT_GE(evs.size(), 2u);
  EXPECT_TRUE(evs[evs.size() - 2].has_error());
  EXPECT_EQ(evs[evs.size() - 2].error().message(), r.error);
  EXPECT_TRUE(evs.back().has_build_finished());
  EXPECT_EQ(evs.back().build_finished().result(), longshore::v1::FAILED);
  // Nothing is offered any more.
  auto [conn, channel] = Connect("w", 1);
  EXPECT_TRUE(channel->assignments().empty());
}

TEST_F(CoordinatorTest, PendingCancelSurvivesRestart) {
  std::string a = Submit();
  auto [conn, channel] = Connect("w", 1);
  auto state = coordinator_->Cancel(a, "superseded");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, longshore::v1::RUNNING);
  ASSERT_TRUE(channel->sent().back().has_cancel());
  Restart();
  coordinator_->ExpireLeases();
  BuildRecord r = Record(a);
  EXPECT_EQ(r.state, longshore::v1::CANCELLED);
  EXPECT_EQ(r.error, "cancelled: superseded");
}

TEST_F(CoordinatorTest, StaleResultsAndEventsAreIgnored) {
  std::string a = Submit();
  auto [c1, ch1] = Connect("w1", 1);
  ASSERT_EQ(ch1->assignments().size(), 1u);
  coordinator_->DisconnectWorker(c1);
  coordinator_->ExpireLeases();  // w1 did not come back: attempt 1 lost.
  auto [c2, ch2] = Connect("w2", 1);
  ASSERT_EQ(ch2->assignments().size(), 1u);
  EXPECT_EQ(ch2->assignments()[0].attempt(), 2);

  size_t before = Events(a).size();
  // The old connection and the old attempt no longer count.
  SendResult(c1, a, 1, longshore::v1::SUCCEEDED);
  SendResult(c2, a, 1, longshore::v1::SUCCEEDED);
  longshore::v1::WorkerMessage log;
  log.mutable_event()->set_build_id(a);
  log.mutable_event()->set_attempt(1);
  log.mutable_event()->mutable_event()->mutable_log()->set_data("old");
  coordinator_->HandleWorkerMessage(c2, log);
  EXPECT_EQ(Record(a).state, longshore::v1::RUNNING);
  EXPECT_EQ(Events(a).size(), before);

  log.mutable_event()->set_attempt(2);
  coordinator_->HandleWorkerMessage(c2, log);
  SendResult(c2, a, 2, longshore::v1::FAILED, "RUN exited with 1");
  BuildRecord r = Record(a);
  EXPECT_EQ(r.state, longshore::v1::FAILED);
  EXPECT_EQ(r.error, "RUN exited with 1");
  auto evs = Events(a);
  ASSERT_EQ(evs.size(), before + 3);
  EXPECT_EQ(evs[before].log().data(), "old");
  EXPECT_TRUE(evs[before + 1].has_error());
  EXPECT_TRUE(evs[before + 2].has_build_finished());
}

TEST_F(CoordinatorTest, MissedHeartbeatsExpireTheLease) {
  std::string a = Submit();
  auto [c1, ch1] = Connect("w1", 1);
  ASSERT_EQ(ch1->assignments().size(), 1u);
  // Lease is 2 x 50 ms; stay silent for longer.
  absl::SleepFor(absl::Milliseconds(150));
  coordinator_->ExpireLeases();
  EXPECT_TRUE(ch1->closed());
  BuildRecord r = Record(a);
  EXPECT_EQ(r.state, longshore::v1::QUEUED);
  EXPECT_EQ(r.attempt, 2);
}

TEST_F(CoordinatorTest, HeartbeatsKeepTheLease) {
  std::string a = Submit();
  auto [c1, ch1] = Connect("w1", 1);
  longshore::v1::WorkerMessage hb;
  hb.mutable_heartbeat()->add_running_build_ids(a);
  for (int i = 0; i < 6; ++i) {
    absl::SleepFor(absl::Milliseconds(30));
    coordinator_->HandleWorkerMessage(c1, hb);
    coordinator_->ExpireLeases();
  }
  EXPECT_FALSE(ch1->closed());
  EXPECT_EQ(Record(a).state, longshore::v1::RUNNING);
}

TEST_F(CoordinatorTest, DrainStopsAssignmentsAndUndrainResumes) {
  auto [c1, ch1] = Connect("w1", 2);
  auto drained = coordinator_->SetDraining("w1", true);
  ASSERT_TRUE(drained.ok());
  EXPECT_TRUE(drained->draining());
  std::string a = Submit();
  EXPECT_TRUE(ch1->assignments().empty());
  EXPECT_EQ(Record(a).state, longshore::v1::QUEUED);
  auto undrained = coordinator_->SetDraining("w1", false);
  ASSERT_TRUE(undrained.ok());
  ASSERT_EQ(ch1->assignments().size(), 1u);
  EXPECT_EQ(ch1->assignments()[0].build_id(), a);
  auto missing = coordinator_->SetDraining("nope", true);
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
}

TEST_F(CoordinatorTest, ASubmittersBacklogDoesNotHoldOthersBack) {
  // Team A queues three builds, then team B one; a worker with one slot.
  std::string a1 = Submit("team-a");
  std::string a2 = Submit("team-a");
  std::string a3 = Submit("team-a");
  std::string b1 = Submit("team-b");
  auto [conn, ch] = Connect("w1", 1);
  ASSERT_EQ(ch->assignments().size(), 1u);
  EXPECT_EQ(ch->assignments()[0].build_id(), a1);
  // When a1 finishes, B (nothing running) comes before A's older a2.
  SendResult(conn, a1, 1, longshore::v1::SUCCEEDED);
  ASSERT_EQ(ch->assignments().size(), 2u);
  EXPECT_EQ(ch->assignments()[1].build_id(), b1);
  SendResult(conn, b1, 1, longshore::v1::SUCCEEDED);
  ASSERT_EQ(ch->assignments().size(), 3u);
  EXPECT_EQ(ch->assignments()[2].build_id(), a2);
  EXPECT_EQ(Record(a3).state, longshore::v1::QUEUED);
}

TEST_F(CoordinatorTest, AWorkerBackWithItsBuildAfterARestartKeepsIt) {
  reattach_grace_ = absl::Seconds(60);
  Restart();
  std::string a = Submit();
  std::string b = Submit();
  auto [c1, ch1] = Connect("w1", 2);
  ASSERT_EQ(ch1->assignments().size(), 2u);
  size_t events_before = Events(a).size();

  Restart();  // The scheduler is killed; w1 goes on building a and b.
  coordinator_->ExpireLeases();
  EXPECT_EQ(Record(a).state, longshore::v1::RUNNING);

  // w1 comes back holding a only (b did not survive on it): a is
  // re-attached and not assigned again; b runs again, as attempt 2.
  auto [c2, ch2] = Connect("w1", 2, {{a, 1}});
  auto assigned = ch2->assignments();
  ASSERT_EQ(assigned.size(), 1u);
  EXPECT_EQ(assigned[0].build_id(), b);
  EXPECT_EQ(assigned[0].attempt(), 2);
  longshore::v1::WorkerMessage log;
  log.mutable_event()->set_build_id(a);
  log.mutable_event()->set_attempt(1);
  log.mutable_event()->mutable_event()->mutable_log()->set_data("while away");
  coordinator_->HandleWorkerMessage(c2, log);
  SendResult(c2, a, 1, longshore::v1::SUCCEEDED);
  BuildRecord r = Record(a);
  EXPECT_EQ(r.state, longshore::v1::SUCCEEDED);
  EXPECT_EQ(r.attempt, 1);
  auto evs = Events(a);
  ASSERT_EQ(evs.size(), events_before + 2);  // the log, then the end
  EXPECT_EQ(evs[events_before].log().data(), "while away");
  // A result applies once: the same result again changes nothing.
  SendResult(c2, a, 1, longshore::v1::FAILED, "late duplicate");
  EXPECT_EQ(Record(a).state, longshore::v1::SUCCEEDED);
}

TEST_F(CoordinatorTest, AWorkerHoldingAStaleBuildIsToldToStopIt) {
  std::string a = Submit();
  auto [c1, ch1] = Connect("w1", 1);
  ASSERT_EQ(ch1->assignments().size(), 1u);
  coordinator_->DisconnectWorker(c1);
  coordinator_->ExpireLeases();  // Grace 0: a is queued again.
  auto [c2, ch2] = Connect("w2", 1);
  ASSERT_EQ(ch2->assignments().size(), 1u);
  // w1 returns, still running attempt 1, which is w2's now (attempt 2).
  auto [c3, ch3] = Connect("w1", 1, {{a, 1}});
  bool told = false;
  for (const auto& m : ch3->sent()) {
    told = told || (m.has_cancel() && m.cancel().build_id() == a);
  }
  EXPECT_TRUE(told);
  EXPECT_EQ(Record(a).worker_id, "w2");
}

TEST_F(CoordinatorTest, AReleasedBuildRunsAgainWithoutUsingAnAttempt) {
  std::string a = Submit();
  auto [c1, ch1] = Connect("w1", 1);
  ASSERT_EQ(ch1->assignments().size(), 1u);
  longshore::v1::WorkerMessage draining;
  draining.mutable_heartbeat()->set_draining(true);
  coordinator_->HandleWorkerMessage(c1, draining);
  longshore::v1::WorkerMessage release;
  release.mutable_release()->set_build_id(a);
  release.mutable_release()->set_attempt(1);
  release.mutable_release()->set_reason("drain timed out");
  coordinator_->HandleWorkerMessage(c1, release);
  BuildRecord r = Record(a);
  EXPECT_EQ(r.state, longshore::v1::QUEUED);
  EXPECT_EQ(r.attempt, 1);
  // The draining worker gets nothing more; another one takes it, attempt 1.
  EXPECT_EQ(ch1->assignments().size(), 1u);
  auto [c2, ch2] = Connect("w2", 1);
  ASSERT_EQ(ch2->assignments().size(), 1u);
  EXPECT_EQ(ch2->assignments()[0].attempt(), 1);
}

TEST_F(CoordinatorTest, ADrainedWorkerStaysDrainedAcrossRestarts) {
  auto [c1, ch1] = Connect("w1", 1);
  ASSERT_TRUE(coordinator_->SetDraining("w1", true).ok());
  Restart();
  std::string a = Submit();
  auto [c2, ch2] = Connect("w1", 1);
  EXPECT_TRUE(ch2->assignments().empty());
  auto workers = coordinator_->ListWorkers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_TRUE(workers[0].draining());
  ASSERT_TRUE(coordinator_->SetDraining("w1", false).ok());
  Restart();
  auto [c3, ch3] = Connect("w1", 1);
  ASSERT_EQ(ch3->assignments().size(), 1u);
  EXPECT_EQ(ch3->assignments()[0].build_id(), a);
}

TEST_F(CoordinatorTest, HeartbeatsReconcileLeasesBothWays) {
  std::string a = Submit();
  auto [c1, ch1] = Connect("w1", 1);
  ASSERT_EQ(ch1->assignments().size(), 1u);
  // Just assigned: a heartbeat without it may predate the assignment.
  longshore::v1::WorkerMessage hb;
  hb.mutable_heartbeat()->set_free_slots(1);
  coordinator_->HandleWorkerMessage(c1, hb);
  EXPECT_EQ(Record(a).state, longshore::v1::RUNNING);
  // Two intervals (2 x 50 ms) later the worker still does not run it.
  absl::SleepFor(absl::Milliseconds(120));
  coordinator_->HandleWorkerMessage(c1, hb);
  BuildRecord r = Record(a);
  EXPECT_EQ(r.state, longshore::v1::RUNNING);  // Leased again, attempt 2...
  EXPECT_EQ(r.attempt, 2);
  ASSERT_EQ(ch1->assignments().size(), 2u);  // ...to the same free worker.
  EXPECT_EQ(ch1->assignments()[1].attempt(), 2);

  // A build the worker runs without a lease is told to stop.
  longshore::v1::WorkerMessage stray;
  stray.mutable_heartbeat()->add_running_build_ids(a);
  stray.mutable_heartbeat()->add_running_build_ids("not-leased");
  coordinator_->HandleWorkerMessage(c1, stray);
  bool told = false;
  for (const auto& m : ch1->sent()) {
    told = told || (m.has_cancel() && m.cancel().build_id() == "not-leased");
  }
  EXPECT_TRUE(told);
  EXPECT_EQ(Record(a).state, longshore::v1::RUNNING);
}

TEST_F(CoordinatorTest, IdenticalSubmissionsShareOneExecution) {
  longshore::v1::BuildSpec spec = Spec();
  spec.mutable_outputs(0)->set_dest("/ci/job-1/out.tar");
  std::string a = SubmitSpec(spec);
  spec.mutable_outputs(0)->set_dest("/ci/job-2/out.tar");  // Client-side only.
  std::string b = SubmitSpec(spec);
  ASSERT_NE(a, b);
  // Another submitter, or another secret, is another execution.
  std::string other = SubmitSpec(Spec("someone-else"));
  longshore::v1::BuildSpec with_secret = Spec();
  auto* secret = with_secret.add_secrets();
  secret->set_id("token");
  secret->set_value("one");
  std::string s1 = SubmitSpec(with_secret);
  with_secret.mutable_secrets(0)->set_value("two");
  std::string s2 = SubmitSpec(with_secret);

  auto [conn, ch] = Connect("w1", 8);
  std::set<std::string> leased;
  for (const auto& asg : ch->assignments()) leased.insert(asg.build_id());
  EXPECT_EQ(leased, (std::set<std::string>{a, other, s1, s2}));
  EXPECT_EQ(coordinator_->GetBuild(b)->state(), longshore::v1::RUNNING);
  EXPECT_EQ(coordinator_->GetBuild(b)->worker_id(), "w1");

  // The execution's events and its end reach both; outputs are shared.
  longshore::v1::WorkerMessage log;
  log.mutable_event()->set_build_id(a);
  log.mutable_event()->set_attempt(1);
  log.mutable_event()->mutable_event()->mutable_log()->set_data("step output");
  coordinator_->HandleWorkerMessage(conn, log);
  auto tmp = blobs_->NewOutputWriter(a);
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  ASSERT_TRUE((*tmp)->Append("layout").ok());
  ASSERT_TRUE(
      coordinator_->CommitOutput(a, 1, 0, Sha256Digest("layout"), tmp->get())
          .ok());
  SendResult(conn, a, 1, longshore::v1::SUCCEEDED);
  for (const std::string& id : {a, b}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(Record(id).state, longshore::v1::SUCCEEDED);
    auto evs = Events(id);
    ASSERT_FALSE(evs.empty());
    EXPECT_TRUE(evs.back().has_build_finished());
    bool saw_log = false;
    for (const auto& ev : evs) {
      saw_log = saw_log || (ev.has_log() && ev.log().data() == "step output");
    }
    EXPECT_TRUE(saw_log);
    auto owner = coordinator_->CheckOutputReady(id, 0);
    ASSERT_TRUE(owner.ok()) << owner.status();
    EXPECT_EQ(*owner, a);
  }
}

TEST_F(CoordinatorTest, CancellingOneMergedSubmissionDetachesOnlyIt) {
  std::string a = SubmitSpec(Spec());
  std::string b = SubmitSpec(Spec());
  std::string c = SubmitSpec(Spec());
  auto [conn, ch] = Connect("w1", 1);
  ASSERT_EQ(ch->assignments().size(), 1u);
  // A follower leaves: the execution goes on.
  ASSERT_EQ(*coordinator_->Cancel(b, "not needed"), longshore::v1::CANCELLED);
  EXPECT_EQ(Record(b).state, longshore::v1::CANCELLED);
  for (const auto& m : ch->sent()) EXPECT_FALSE(m.has_cancel());
  // The leader's own submitter cancels: its view ends, the execution goes
  // on for c.
  ASSERT_EQ(*coordinator_->Cancel(a, "superseded"), longshore::v1::CANCELLED);
  EXPECT_EQ(coordinator_->GetBuild(a)->state(), longshore::v1::CANCELLED);
  EXPECT_TRUE(Events(a).back().has_build_finished());
  for (const auto& m : ch->sent()) EXPECT_FALSE(m.has_cancel());
  SendResult(conn, a, 1, longshore::v1::SUCCEEDED);
  EXPECT_EQ(Record(c).state, longshore::v1::SUCCEEDED);
  EXPECT_EQ(Record(a).state, longshore::v1::CANCELLED);
  EXPECT_EQ(Record(a).error, "cancelled: superseded");
  // When the last one leaves, the execution is stopped.
  std::string d = SubmitSpec(Spec("team"));
  std::string e = SubmitSpec(Spec("team"));
  ASSERT_EQ(ch->assignments().size(), 2u);
  ASSERT_TRUE(coordinator_->Cancel(d, "").ok());
  ASSERT_TRUE(coordinator_->Cancel(e, "").ok());
  ASSERT_TRUE(ch->sent().back().has_cancel());
  EXPECT_EQ(ch->sent().back().cancel().build_id(), d);
}

TEST_F(CoordinatorTest, RejectsBadRegistrations) {
  longshore::v1::Register reg;
  reg.set_slots(1);
  auto empty_id =
      coordinator_->ConnectWorker(reg, std::make_shared<RecordingChannel>());
  EXPECT_TRUE(absl::IsInvalidArgument(empty_id.status()));
  reg.set_worker_id("w");
  reg.set_slots(0);
  auto no_slots =
      coordinator_->ConnectWorker(reg, std::make_shared<RecordingChannel>());
  EXPECT_TRUE(absl::IsInvalidArgument(no_slots.status()));
}

}  // namespace
}  // namespace longshore::scheduler
