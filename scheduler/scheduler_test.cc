// The scheduler over real gRPC on 127.0.0.1:0, driven by a fake CI client and
// fake workers that speak WorkerService.
#include "scheduler/scheduler.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/unique_fd.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/longshore.grpc.pb.h"

namespace longshore::scheduler {
namespace {

namespace v1 = longshore::v1;

constexpr absl::Duration kWait = absl::Seconds(5);

// A worker holding one Connect stream. Received messages are collected by a
// reader thread; with `heartbeats` a second thread sends a heartbeat every 50
// ms.
class FakeWorker {
 public:
  FakeWorker(std::shared_ptr<grpc::Channel> channel, const std::string& id,
             int slots, bool heartbeats)
      : id_(id), stub_(v1::WorkerService::NewStub(channel)) {
    stream_ = stub_->Connect(&context_);
    v1::WorkerMessage reg;
    reg.mutable_register_()->set_worker_id(id);
    reg.mutable_register_()->set_slots(slots);
    reg.mutable_register_()->set_version("test");
    Write(reg);
    reader_ = std::thread([this] {
      v1::SchedulerMessage m;
      while (stream_->Read(&m)) {
        absl::MutexLock lock(&mu_);
        received_.push_back(m);
      }
      absl::MutexLock lock(&mu_);
      ended_ = true;
    });
    if (heartbeats) {
      heartbeat_ = std::thread([this] {
        while (!stop_heartbeats_.WaitForNotificationWithTimeout(
            absl::Milliseconds(50))) {
          // Like a real worker, it reports what it was assigned and has
          // not finished (reconciliation interrupts leases it leaves out).
          v1::WorkerMessage hb;
          hb.mutable_heartbeat();
          {
            absl::MutexLock lock(&mu_);
            for (const auto& m : received_) {
              if (m.has_assignment() &&
                  finished_.count(m.assignment().build_id()) == 0) {
                hb.mutable_heartbeat()->add_running_build_ids(
                    m.assignment().build_id());
              }
            }
          }
          Write(hb);
        }
      });
    }
  }
  ~FakeWorker() { Stop(); }

  bool Write(const v1::WorkerMessage& m) {
    absl::MutexLock lock(&write_mu_);
    return stream_->Write(m);
  }

  // The first received message after `skip` matches of `pred`, within kWait.
  std::optional<v1::SchedulerMessage> WaitFor(
      std::function<bool(const v1::SchedulerMessage&)> pred, int skip = 0,
      absl::Duration timeout = kWait) {
    std::optional<v1::SchedulerMessage> found;
    auto match = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      int seen = 0;
      for (const auto& m : received_) {
        if (pred(m) && seen++ == skip) {
          found = m;
          return true;
        }
      }
      return ended_;
    };
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&match), timeout);
    return found;
  }
  std::optional<v1::Assignment> WaitForAssignment(
      int skip = 0, absl::Duration timeout = kWait) {
    auto m = WaitFor([](const auto& m) { return m.has_assignment(); }, skip,
                     timeout);
    if (!m) return std::nullopt;
    return m->assignment();
  }
  int CountAssignments() {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const auto& m : received_) n += m.has_assignment();
    return n;
  }
  bool WaitEnded(absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ended_; };
    return mu_.AwaitWithTimeout(absl::Condition(&ended), timeout);
  }

  void SendEvent(const std::string& build, int attempt, v1::BuildEvent ev) {
    v1::WorkerMessage m;
    m.mutable_event()->set_build_id(build);
    m.mutable_event()->set_attempt(attempt);
    *m.mutable_event()->mutable_event() = std::move(ev);
    ASSERT_TRUE(Write(m));
  }
  void SendResult(v1::BuildResult result) {
    {
      absl::MutexLock lock(&mu_);
      finished_.insert(result.build_id());
    }
    v1::WorkerMessage m;
    *m.mutable_result() = std::move(result);
    ASSERT_TRUE(Write(m));
  }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    stop_heartbeats_.Notify();
    if (heartbeat_.joinable()) heartbeat_.join();
    context_.TryCancel();
    reader_.join();
    stream_->Finish();
  }

 private:
  std::string id_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::WorkerMessage, v1::SchedulerMessage>>
      stream_;
  absl::Mutex write_mu_;
  absl::Mutex mu_;
  std::deque<v1::SchedulerMessage> received_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::string> finished_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_heartbeats_;
  std::thread reader_;
  std::thread heartbeat_;
  bool stopped_ = false;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    auto dir = MakeTempDir(tmp != nullptr ? tmp : "/tmp", "scheduler-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    state_dir_ = *dir;
    StartScheduler();
  }
  void TearDown() override {
    if (scheduler_ != nullptr) scheduler_->Shutdown();
    scheduler_.reset();
    ASSERT_TRUE(RemoveTree(state_dir_).ok());
  }

  void StartScheduler() {
    SchedulerOptions options;
    options.state_dir = state_dir_;
    options.heartbeat_interval = absl::Milliseconds(100);
    options.missed_heartbeats_allowed = 3;
    auto scheduler = Scheduler::Create(options);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = std::move(*scheduler);
    auto port = scheduler_->Start("127.0.0.1:0");
    ASSERT_TRUE(port.ok()) << port.status();
    ASSERT_GT(*port, 0);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(16 << 20);
    args.SetMaxSendMessageSize(16 << 20);
    channel_ =
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", *port),
                                  grpc::InsecureChannelCredentials(), args);
    builds_ = v1::BuildService::NewStub(channel_);
    workers_ = v1::WorkerService::NewStub(channel_);
    admin_ = v1::AdminService::NewStub(channel_);
  }

  static v1::BuildSpec Spec(const std::string& context) {
    v1::BuildSpec spec;
    spec.set_dockerfile_path("Dockerfile");
    spec.set_dockerfile("FROM scratch\nCOPY busybox /bin/busybox\n");
    spec.add_tags("registry.example/app:1");
    spec.set_context_digest(Sha256Digest(context));
    spec.set_context_size(static_cast<int64_t>(context.size()));
    spec.set_submitter("ci-job-1");
    auto* out = spec.add_outputs();
    out->set_type(v1::OutputSpec::OCI);
    out->set_dest("/tmp/out.tar");
    out->set_tar(true);
    return spec;
  }

  // Submits `spec`, streaming `upload` in 1 MiB chunks when given.
  grpc::Status Submit(const v1::BuildSpec& spec,
                      const std::optional<std::string>& upload,
                      std::string* build_id) {
    grpc::ClientContext ctx;
    v1::SubmitResponse resp;
    auto writer = builds_->Submit(&ctx, &resp);
    v1::SubmitRequest first;
    *first.mutable_spec() = spec;
    writer->Write(first);
    if (upload) {
      for (size_t off = 0; off < upload->size(); off += 1 << 20) {
        v1::SubmitRequest chunk;
        chunk.mutable_context()->set_data(upload->substr(off, 1 << 20));
        if (!writer->Write(chunk)) break;
      }
    }
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    if (st.ok() && build_id != nullptr) *build_id = resp.build_id();
    return st;
  }
  std::string SubmitOk(const std::string& context, bool upload = true) {
    std::string id;
    grpc::Status st = Submit(
        Spec(context),
        upload ? std::optional<std::string>(context) : std::nullopt, &id);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_FALSE(id.empty());
    return id;
  }

  // Every event of a Watch from `after` until the server ends the stream.
  std::vector<v1::BuildEvent> WatchAll(const std::string& id, uint64_t after,
                                       grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
    v1::WatchRequest req;
    req.set_build_id(id);
    req.set_after_sequence(after);
    auto reader = builds_->Watch(&ctx, req);
    std::vector<v1::BuildEvent> events;
    v1::BuildEvent ev;
    while (reader->Read(&ev)) events.push_back(ev);
    grpc::Status st = reader->Finish();
    if (status != nullptr) *status = st;
    EXPECT_TRUE(st.ok() || status != nullptr) << st.error_message();
    return events;
  }

  v1::BuildInfo GetBuild(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetBuildRequest req;
    req.set_build_id(id);
    v1::BuildInfo info;
    grpc::Status st = builds_->GetBuild(&ctx, req, &info);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return info;
  }
  // Polls GetBuild until the build reaches `state`.
  bool WaitForState(const std::string& id, v1::BuildState state) {
    absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      if (GetBuild(id).state() == state) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  std::unique_ptr<FakeWorker> NewWorker(const std::string& id, int slots,
                                        bool heartbeats = true) {
    auto w = std::make_unique<FakeWorker>(channel_, id, slots, heartbeats);
    auto registered =
        w->WaitFor([](const auto& m) { return m.has_registered(); });
    EXPECT_TRUE(registered.has_value()) << "worker " << id << " not registered";
    if (registered) {
      EXPECT_EQ(registered->registered().worker_id(), id);
      EXPECT_EQ(registered->registered().heartbeat_interval_ms(), 100);
    }
    return w;
  }

  std::string state_dir_;
  std::unique_ptr<Scheduler> scheduler_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::BuildService::Stub> builds_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

v1::StepRef Step(int index, const std::string& text) {
  v1::StepRef s;
  s.set_stage("0");
  s.set_index(index);
  s.set_total(2);
  s.set_instruction(text);
  s.set_line(index);
  return s;
}

TEST_F(SchedulerTest, ContextUploadIsVerifiedAndDeduplicated) {
  const std::string context(3 * (1 << 20) + 17, 'c');  // Several 1 MiB chunks.
  const std::string digest = Sha256Digest(context);
  {
    grpc::ClientContext ctx;
    v1::StatContextRequest req;
    req.set_digest(digest);
    v1::StatContextResponse resp;
    ASSERT_TRUE(builds_->StatContext(&ctx, req, &resp).ok());
    EXPECT_FALSE(resp.present());
  }
  // Missing context, nothing uploaded: rejected.
  std::string id;
  grpc::Status st = Submit(Spec(context), std::nullopt, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find(digest), std::string::npos);
  // Bytes that do not match the digest: rejected, nothing stored.
  st = Submit(Spec(context), std::string("tampered"), &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("digest mismatch"), std::string::npos);
  // First message without a spec.
  {
    grpc::ClientContext ctx;
    v1::SubmitResponse resp;
    auto writer = builds_->Submit(&ctx, &resp);
    v1::SubmitRequest chunk;
    chunk.mutable_context()->set_data("x");
    writer->Write(chunk);
    writer->WritesDone();
    EXPECT_EQ(writer->Finish().error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  // An empty Dockerfile is rejected before anything is queued.
  v1::BuildSpec empty = Spec(context);
  empty.clear_dockerfile();
  st = Submit(empty, context, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A Dockerfile that does not parse is rejected with the parser's location.
  v1::BuildSpec broken = Spec(context);
  broken.set_dockerfile("FROM scratch\nFROBNICATE now\n");
  st = Submit(broken, context, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("Dockerfile:2"), std::string::npos)
      << st.error_message();
  {
    grpc::ClientContext ctx;
    v1::ListBuildsRequest req;
    v1::ListBuildsResponse resp;
    ASSERT_TRUE(builds_->ListBuilds(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.builds_size(), 0) << "a rejected spec must not be queued";
  }

  std::string first = SubmitOk(context, /*upload=*/true);
  {
    grpc::ClientContext ctx;
    v1::StatContextRequest req;
    req.set_digest(digest);
    v1::StatContextResponse resp;
    ASSERT_TRUE(builds_->StatContext(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.present());
    EXPECT_EQ(resp.size(), static_cast<int64_t>(context.size()));
  }
  // The second build reuses the stored context without uploading it.
  std::string second = SubmitOk(context, /*upload=*/false);
  EXPECT_NE(first, second);
  // A wrong size for a held context is caught too.
  v1::BuildSpec wrong_size = Spec(context);
  wrong_size.set_context_size(5);
  st = Submit(wrong_size, std::nullopt, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext ctx;
  v1::ListBuildsRequest req;
  v1::ListBuildsResponse resp;
  ASSERT_TRUE(builds_->ListBuilds(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.builds_size(), 2);
  EXPECT_EQ(resp.builds(0).build_id(), second);  // Newest first.
  EXPECT_EQ(resp.builds(0).state(), v1::QUEUED);
  EXPECT_TRUE(resp.builds(0).spec().dockerfile().empty());
  EXPECT_EQ(GetBuild(first).spec().dockerfile(), Spec(context).dockerfile());
}

TEST_F(SchedulerTest, AssignmentEventsAndWatchReconnect) {
  const std::string context = "context tar bytes";
  auto worker = NewWorker("w1", 1);
  std::string id = SubmitOk(context);

  // A watcher that joins before anything happens sees the whole stream live.
  std::vector<v1::BuildEvent> live;
  std::thread live_watcher([&] { live = WatchAll(id, 0); });

  auto assignment = worker->WaitForAssignment();
  ASSERT_TRUE(assignment.has_value());
  EXPECT_EQ(assignment->build_id(), id);
  EXPECT_EQ(assignment->attempt(), 1);
  EXPECT_EQ(assignment->spec().context_digest(), Sha256Digest(context));
  EXPECT_EQ(assignment->spec().tags(0), "registry.example/app:1");

  // The worker fetches the context of its lease by digest.
  {
    grpc::ClientContext ctx;
    v1::FetchContextRequest req;
    req.set_digest(Sha256Digest(context));
    req.set_build_id(id);
    auto reader = workers_->FetchContext(&ctx, req);
    std::string got;
    v1::ContextChunk chunk;
    while (reader->Read(&chunk)) got += chunk.data();
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(got, context);
    // Another digest is not this build's context; no build is not a lease.
    grpc::ClientContext other_ctx;
    req.set_digest(Sha256Digest("absent"));
    auto other = workers_->FetchContext(&other_ctx, req);
    while (other->Read(&chunk)) {
    }
    EXPECT_EQ(other->Finish().error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    grpc::ClientContext missing_ctx;
    req.set_build_id("no-such-build");
    auto missing = workers_->FetchContext(&missing_ctx, req);
    while (missing->Read(&chunk)) {
    }
    EXPECT_EQ(missing->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
    grpc::ClientContext unnamed_ctx;
    req.clear_build_id();
    auto unnamed = workers_->FetchContext(&unnamed_ctx, req);
    while (unnamed->Read(&chunk)) {
    }
    EXPECT_EQ(unnamed->Finish().error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }

  v1::BuildEvent started;
  *started.mutable_step_started()->mutable_step() = Step(1, "COPY busybox /");
  worker->SendEvent(id, 1, started);
  v1::BuildEvent log;
  *log.mutable_log()->mutable_step() = Step(1, "COPY busybox /");
  log.mutable_log()->set_stream(v1::BuildEvent::Log::STDOUT);
  log.mutable_log()->set_data("copied\n");
  worker->SendEvent(id, 1, log);
  v1::BuildEvent done;
  *done.mutable_step_finished()->mutable_step() = Step(1, "COPY busybox /");
  done.mutable_step_finished()->set_duration_ms(12);
  done.mutable_step_finished()->set_layer_digest(Sha256Digest("layer"));
  worker->SendEvent(id, 1, done);
  // A worker-sent lifecycle event is not relayed: the scheduler writes those.
  v1::BuildEvent bogus;
  bogus.mutable_build_finished()->set_result(v1::FAILED);
  worker->SendEvent(id, 1, bogus);
  v1::BuildResult result;
  result.set_build_id(id);
  result.set_attempt(1);
  result.set_state(v1::SUCCEEDED);
  result.set_image_digest(Sha256Digest("manifest"));
  result.add_references("registry.example/app:1");
  worker->SendResult(result);

  live_watcher.join();
  ASSERT_EQ(live.size(), 6u);
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(live[i].sequence(), i + 1);
    EXPECT_GT(live[i].time_unix_nanos(), 0);
  }
  EXPECT_TRUE(live[0].has_queued());
  EXPECT_EQ(live[0].queued().position(), 1);
  EXPECT_TRUE(live[1].has_assigned());
  EXPECT_EQ(live[1].assigned().worker_id(), "w1");
  EXPECT_EQ(live[1].assigned().attempt(), 1);
  EXPECT_EQ(live[2].step_started().step().instruction(), "COPY busybox /");
  EXPECT_EQ(live[3].log().data(), "copied\n");
  EXPECT_EQ(live[4].step_finished().layer_digest(), Sha256Digest("layer"));
  ASSERT_TRUE(live[5].has_build_finished());
  EXPECT_EQ(live[5].build_finished().result(), v1::SUCCEEDED);
  EXPECT_EQ(live[5].build_finished().image_digest(), Sha256Digest("manifest"));
  EXPECT_EQ(live[5].build_finished().references(0), "registry.example/app:1");

  // A client that saw up to #3 reconnects and gets exactly #4..#6.
  auto missed = WatchAll(id, 3);
  ASSERT_EQ(missed.size(), 3u);
  EXPECT_EQ(missed[0].sequence(), 4u);
  EXPECT_EQ(missed[0].log().data(), "copied\n");
  EXPECT_EQ(missed[2].sequence(), 6u);
  // One that saw everything gets nothing and the stream ends.
  EXPECT_TRUE(WatchAll(id, 6).empty());

  v1::BuildInfo info = GetBuild(id);
  EXPECT_EQ(info.state(), v1::SUCCEEDED);
  EXPECT_EQ(info.worker_id(), "w1");
  EXPECT_EQ(info.attempts(), 1);
  EXPECT_EQ(info.image_digest(), Sha256Digest("manifest"));
  EXPECT_GT(info.finished_unix_nanos(), 0);

  grpc::Status st;
  WatchAll("no-such-build", 0, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SchedulerTest, FailedResultWritesErrorBeforeFinished) {
  auto worker = NewWorker("w1", 1);
  std::string id = SubmitOk("ctx");
  auto assignment = worker->WaitForAssignment();
  ASSERT_TRUE(assignment.has_value());
  v1::BuildResult result;
  result.set_build_id(id);
  result.set_attempt(1);
  result.set_state(v1::FAILED);
  result.set_error("RUN exited with status 2");
  *result.mutable_failed_step() = Step(2, "RUN make");
  worker->SendResult(result);
  auto events = WatchAll(id, 2);  // After queued and assigned.
  ASSERT_EQ(events.size(), 2u);
  ASSERT_TRUE(events[0].has_error());
  EXPECT_EQ(events[0].error().message(), "RUN exited with status 2");
  EXPECT_EQ(events[0].error().line(), 2);
  EXPECT_EQ(events[0].error().step().instruction(), "RUN make");
  EXPECT_EQ(events[1].build_finished().result(), v1::FAILED);
  EXPECT_EQ(GetBuild(id).error(), "RUN exited with status 2");
}

TEST_F(SchedulerTest, CancelQueuedAndRunning) {
  std::string queued = SubmitOk("ctx");
  {
    grpc::ClientContext ctx;
    v1::CancelRequest req;
    req.set_build_id(queued);
    req.set_reason("not needed");
    v1::CancelResponse resp;
    ASSERT_TRUE(builds_->Cancel(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.state(), v1::CANCELLED);
  }
  auto events = WatchAll(queued, 0);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].build_finished().result(), v1::CANCELLED);

  auto worker = NewWorker("w1", 1);
  std::string running = SubmitOk("ctx");
  auto assignment = worker->WaitForAssignment();
  ASSERT_TRUE(assignment.has_value());
  EXPECT_EQ(assignment->build_id(), running);  // The cancelled one never runs.
  {
    grpc::ClientContext ctx;
    v1::CancelRequest req;
    req.set_build_id(running);
    req.set_reason("new commit");
    v1::CancelResponse resp;
    ASSERT_TRUE(builds_->Cancel(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.state(), v1::RUNNING);  // Until the worker confirms.
  }
  auto cancel = worker->WaitFor([](const auto& m) { return m.has_cancel(); });
  ASSERT_TRUE(cancel.has_value());
  EXPECT_EQ(cancel->cancel().build_id(), running);
  EXPECT_EQ(cancel->cancel().reason(), "new commit");
  v1::BuildResult result;
  result.set_build_id(running);
  result.set_attempt(1);
  result.set_state(v1::CANCELLED);
  worker->SendResult(result);
  ASSERT_TRUE(WaitForState(running, v1::CANCELLED));
  EXPECT_EQ(GetBuild(running).error(), "cancelled: new commit");

  grpc::ClientContext ctx;
  v1::CancelRequest req;
  req.set_build_id("missing");
  v1::CancelResponse resp;
  EXPECT_EQ(builds_->Cancel(&ctx, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(SchedulerTest, LeaseExpiryRequeuesToAnotherWorker) {
  // w1 never sends heartbeats: its lease lapses after 3 x 100 ms.
  auto silent = NewWorker("w1", 1, /*heartbeats=*/false);
  std::string id = SubmitOk("ctx");
  auto first = silent->WaitForAssignment();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->attempt(), 1);
  auto healthy = NewWorker("w2", 1);
  auto second = healthy->WaitForAssignment();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->build_id(), id);
  EXPECT_EQ(second->attempt(), 2);
  EXPECT_TRUE(silent->WaitEnded()) << "the expired stream should be closed";

  // The expired attempt's result does not count.
  v1::BuildResult stale;
  stale.set_build_id(id);
  stale.set_attempt(1);
  stale.set_state(v1::FAILED);
  FakeWorker reconnected(channel_, "w1", 1, true);
  reconnected.SendResult(stale);
  v1::BuildResult result;
  result.set_build_id(id);
  result.set_attempt(2);
  result.set_state(v1::SUCCEEDED);
  healthy->SendResult(result);
  ASSERT_TRUE(WaitForState(id, v1::SUCCEEDED));
  v1::BuildInfo info = GetBuild(id);
  EXPECT_EQ(info.worker_id(), "w2");
  EXPECT_EQ(info.attempts(), 2);

  auto events = WatchAll(id, 0);
  ASSERT_GE(events.size(), 5u);
  EXPECT_TRUE(events[2].has_queued());  // Queued again after the expiry.
  EXPECT_EQ(events[3].assigned().worker_id(), "w2");
  EXPECT_EQ(events[3].assigned().attempt(), 2);
}

TEST_F(SchedulerTest, UploadOutputThenFetchOutput) {
  auto worker = NewWorker("w1", 1);
  std::string id = SubmitOk("ctx");
  auto assignment = worker->WaitForAssignment();
  ASSERT_TRUE(assignment.has_value());

  std::string output;
  for (int i = 0; output.size() < (5u << 19); ++i) {
    output += absl::StrCat("layer-bytes-", i, "\n");
  }
  auto upload = [&](int attempt, int index, const std::string& digest) {
    grpc::ClientContext ctx;
    v1::UploadOutputResponse resp;
    auto writer = workers_->UploadOutput(&ctx, &resp);
    v1::UploadOutputRequest header;
    header.mutable_header()->set_build_id(id);
    header.mutable_header()->set_attempt(attempt);
    header.mutable_header()->set_output_index(index);
    header.mutable_header()->set_digest(digest);
    writer->Write(header);
    for (size_t off = 0; off < output.size(); off += 1 << 20) {
      v1::UploadOutputRequest data;
      data.set_data(output.substr(off, 1 << 20));
      if (!writer->Write(data)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  };
  EXPECT_EQ(upload(1, 0, Sha256Digest("something else")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(upload(2, 0, Sha256Digest(output)).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(upload(1, 7, Sha256Digest(output)).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status st = upload(1, 0, Sha256Digest(output));
  ASSERT_TRUE(st.ok()) << st.error_message();

  v1::BuildResult result;
  result.set_build_id(id);
  result.set_attempt(1);
  result.set_state(v1::SUCCEEDED);
  result.add_uploaded_outputs(0);
  worker->SendResult(result);
  ASSERT_TRUE(WaitForState(id, v1::SUCCEEDED));
  v1::BuildInfo info = GetBuild(id);
  ASSERT_EQ(info.ready_outputs_size(), 1);
  EXPECT_EQ(info.ready_outputs(0), 0);

  grpc::ClientContext ctx;
  v1::FetchOutputRequest req;
  req.set_build_id(id);
  req.set_output_index(0);
  auto reader = builds_->FetchOutput(&ctx, req);
  std::string fetched;
  v1::OutputChunk chunk;
  int chunks = 0;
  while (reader->Read(&chunk)) {
    fetched += chunk.data();
    ++chunks;
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(fetched.size(), output.size());
  EXPECT_TRUE(fetched == output);
  EXPECT_GT(chunks, 1);

  grpc::ClientContext missing_ctx;
  req.set_output_index(1);
  auto missing = builds_->FetchOutput(&missing_ctx, req);
  while (missing->Read(&chunk)) {
  }
  EXPECT_EQ(missing->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SchedulerTest, DrainStopsAssignments) {
  auto worker = NewWorker("w1", 2);
  {
    grpc::ClientContext ctx;
    v1::DrainRequest req;
    req.set_worker_id("w1");
    v1::DrainResponse resp;
    ASSERT_TRUE(admin_->Drain(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.worker().draining());
  }
  std::string id = SubmitOk("ctx");
  EXPECT_FALSE(
      worker->WaitForAssignment(0, absl::Milliseconds(400)).has_value());
  EXPECT_EQ(GetBuild(id).state(), v1::QUEUED);
  {
    grpc::ClientContext ctx;
    v1::ListWorkersRequest req;
    v1::ListWorkersResponse resp;
    ASSERT_TRUE(admin_->ListWorkers(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.workers_size(), 1);
    EXPECT_EQ(resp.workers(0).worker_id(), "w1");
    EXPECT_TRUE(resp.workers(0).draining());
    EXPECT_TRUE(resp.workers(0).connected());
    EXPECT_EQ(resp.workers(0).slots(), 2);
    EXPECT_GT(resp.workers(0).last_heartbeat_unix_nanos(), 0);
  }
  {
    grpc::ClientContext ctx;
    v1::DrainRequest req;
    req.set_worker_id("w1");
    v1::DrainResponse resp;
    ASSERT_TRUE(admin_->Undrain(&ctx, req, &resp).ok());
    EXPECT_FALSE(resp.worker().draining());
  }
  auto assignment = worker->WaitForAssignment();
  ASSERT_TRUE(assignment.has_value());
  EXPECT_EQ(assignment->build_id(), id);

  grpc::ClientContext ctx;
  v1::DrainRequest req;
  req.set_worker_id("ghost-7");
  v1::DrainResponse resp;
  grpc::Status st = admin_->Drain(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(st.error_message().find("ghost-7"), std::string::npos);
}

TEST_F(SchedulerTest, ConnectRequiresRegisterFirst) {
  grpc::ClientContext ctx;
  auto stream = workers_->Connect(&ctx);
  v1::WorkerMessage hb;
  hb.mutable_heartbeat();
  stream->Write(hb);
  stream->WritesDone();
  v1::SchedulerMessage m;
  EXPECT_FALSE(stream->Read(&m));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

std::string HttpGet(int port, const std::string& path) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return "socket failed";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    return "connect failed";
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd.get(), req.data(), req.size()) !=
      static_cast<ssize_t>(req.size())) {
    return "write failed";
  }
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd.get(), buf, sizeof(buf))) > 0) resp.append(buf, n);
  return resp;
}

TEST_F(SchedulerTest, MetricsShowQueueDepth) {
  auto port = scheduler_->StartMetrics("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status();
  SubmitOk("one");
  SubmitOk("two");
  std::string body = HttpGet(*port, "/metrics");
  EXPECT_NE(body.find("200 OK"), std::string::npos) << body;
  EXPECT_NE(body.find("\nlongshore_scheduler_queue_depth 2"), std::string::npos)
      << body;
  EXPECT_NE(body.find("\nlongshore_scheduler_builds_submitted_total 2"),
            std::string::npos);
  EXPECT_NE(body.find("longshore_scheduler_context_bytes_received_total 6"),
            std::string::npos);

  auto worker = NewWorker("w1", 1);
  ASSERT_TRUE(worker->WaitForAssignment().has_value());
  body = HttpGet(*port, "/metrics");
  EXPECT_NE(body.find("\nlongshore_scheduler_queue_depth 1"), std::string::npos)
      << body;
  EXPECT_NE(body.find("\nlongshore_scheduler_builds_running 1"),
            std::string::npos);
  EXPECT_NE(body.find("longshore_scheduler_workers{state=\"busy\"} 1"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("longshore_scheduler_queue_wait_seconds_count 1"),
            std::string::npos);
}

TEST_F(SchedulerTest, RestartKeepsQueueAndEvents) {
  std::string id = SubmitOk("ctx");
  scheduler_->Shutdown();
  scheduler_.reset();
  StartScheduler();
  EXPECT_EQ(GetBuild(id).state(), v1::QUEUED);
  // Queued before the restart; a worker that connects now gets it.
  auto worker = NewWorker("w1", 1);
  auto assignment = worker->WaitForAssignment();
  ASSERT_TRUE(assignment.has_value());
  EXPECT_EQ(assignment->build_id(), id);
  v1::BuildResult result;
  result.set_build_id(id);
  result.set_attempt(1);
  result.set_state(v1::SUCCEEDED);
  worker->SendResult(result);
  auto events = WatchAll(id, 0);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_TRUE(events[0].has_queued());
  EXPECT_TRUE(events[1].has_assigned());
  EXPECT_TRUE(events[2].has_build_finished());
}

}  // namespace
}  // namespace longshore::scheduler
