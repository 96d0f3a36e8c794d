#include "worker/worker_agent.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/unique_fd.h"

namespace longshore::worker {
namespace {

constexpr size_t kChunk = 1 << 20;

const char* ResultName(v1::BuildState s) {
  switch (s) {
    case v1::SUCCEEDED:
      return "succeeded";
    case v1::CANCELLED:
      return "cancelled";
    default:
      return "failed";
  }
}

std::string StepKind(const std::string& instruction) {
  std::string word = instruction.substr(0, instruction.find_first_of(" \t"));
  for (char& c : word) c = static_cast<char>(tolower(c));
  return word;
}

// Forwards a build's events to the scheduler and counts steps for metrics.
class StreamSink : public BuildEventSink {
 public:
  StreamSink(std::function<bool(const v1::WorkerMessage&)> send,
             std::string build_id, int attempt, WorkerMetrics* metrics)
      : send_(std::move(send)),
        build_id_(std::move(build_id)),
        attempt_(attempt),
        metrics_(metrics) {}

  void Emit(const v1::BuildEvent& event) override {
    if (event.has_step_cached()) {
      metrics_->StepFinished(StepKind(event.step_cached().step().instruction()),
                             true, 0);
    } else if (event.has_step_finished()) {
      metrics_->StepFinished(
          StepKind(event.step_finished().step().instruction()), false,
          event.step_finished().duration_ms() / 1000.0);
    }
    v1::WorkerMessage m;
    auto* e = m.mutable_event();
    e->set_build_id(build_id_);
    e->set_attempt(attempt_);
    *e->mutable_event() = event;
    send_(m);
  }

 private:
  std::function<bool(const v1::WorkerMessage&)> send_;
  std::string build_id_;
  int attempt_;
  WorkerMetrics* metrics_;
};

}  // namespace

WorkerAgent::WorkerAgent(AgentOptions opts, BuildExecutor* executor,
                         WorkerMetrics* metrics)
    : opts_(std::move(opts)), executor_(executor), metrics_(metrics) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  channel_ = grpc::CreateCustomChannel(opts_.scheduler_address,
                                       opts_.credentials != nullptr
                                           ? opts_.credentials
                                           : grpc::InsecureChannelCredentials(),
                                       args);
  stub_ = v1::WorkerService::NewStub(channel_);
  contexts_ = std::make_unique<ContextFetcher>(executor_->options().work_dir,
                                               stub_.get());
  metrics_->SetSlots(opts_.slots, 0);
}

WorkerAgent::~WorkerAgent() {
  Shutdown();
  std::map<std::string, std::thread> threads;
  {
    absl::MutexLock l(&mu_);
    threads.swap(threads_);
  }
  for (auto& [id, t] : threads) {
    if (t.joinable()) t.join();
  }
}

void WorkerAgent::Shutdown() {
  stopping_ = true;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, r] : running_) *r.cancel = true;
  }
  absl::MutexLock l(&write_mu_);
  if (stream_ctx_ != nullptr) stream_ctx_->TryCancel();
}

bool WorkerAgent::Send(const v1::WorkerMessage& m) {
  absl::MutexLock l(&write_mu_);
  if (stream_ == nullptr) return false;
  return stream_->Write(m);
}

void WorkerAgent::Run() {
  int backoff_ms = 200;
  while (!stopping_) {
    auto start = std::chrono::steady_clock::now();
    Session();
    metrics_->Connected(false);
    if (stopping_) break;
    // A session that lasted is not a failure streak.
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(30)) {
      backoff_ms = 200;
    }
    LS_LOG(WARNING) << "lost the scheduler at " << opts_.scheduler_address
                    << "; reconnecting in " << backoff_ms << " ms";
    for (int waited = 0; waited < backoff_ms && !stopping_; waited += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff_ms = std::min(backoff_ms * 2, 5000);
  }
}

void WorkerAgent::Session() {
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = stub_->Connect(&ctx);
  {
    absl::MutexLock l(&write_mu_);
    stream_ = stream.get();
    stream_ctx_ = &ctx;
  }
  if (stopping_) ctx.TryCancel();
  v1::WorkerMessage reg;
  auto* r = reg.mutable_register_();
  r->set_worker_id(opts_.worker_id);
  r->set_slots(opts_.slots);
  r->set_version("longshore-worker 0.1");
  r->set_platform(opts_.platform);
  for (const auto& [k, v] : opts_.labels) {
    auto* kv = r->add_labels();
    kv->set_key(k);
    kv->set_value(v);
  }
  std::thread heartbeat;
  std::atomic<bool> session_done{false};
  bool read_to_end = false;
  if (Send(reg)) {
    v1::SchedulerMessage msg;
    while (stream->Read(&msg)) {
      switch (msg.kind_case()) {
        case v1::SchedulerMessage::kRegistered: {
          int interval = msg.registered().heartbeat_interval_ms();
          if (interval <= 0) interval = 2000;
          LS_LOG(INFO) << "registered with " << opts_.scheduler_address
                       << " as " << opts_.worker_id << " (" << opts_.slots
                       << " slots, heartbeat " << interval << " ms)";
          metrics_->Connected(true);
          if (!heartbeat.joinable()) {
            heartbeat = std::thread([this, interval, &session_done] {
              while (!session_done && !stopping_) {
                for (int w = 0; w < interval && !session_done; w += 50) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(50));
                }
                if (session_done) break;
                v1::WorkerMessage hb;
                auto* h = hb.mutable_heartbeat();
                {
                  absl::MutexLock l(&mu_);
                  for (const auto& [id, run] : running_) {
                    h->add_running_build_ids(id);
                  }
                  h->set_free_slots(opts_.slots -
                                    static_cast<int>(running_.size()));
                }
                Send(hb);
              }
            });
          }
          break;
        }
        case v1::SchedulerMessage::kAssignment:
          StartBuild(msg.assignment());
          break;
        case v1::SchedulerMessage::kCancel: {
          absl::MutexLock l(&mu_);
          auto it = running_.find(msg.cancel().build_id());
          if (it != running_.end()) {
            LS_LOG(INFO) << "cancelling build " << it->first << ": "
                         << msg.cancel().reason();
            *it->second.cancel = true;
          }
          break;
        }
        default:
          break;
      }
    }
    read_to_end = true;
  }
  session_done = true;
  {
    absl::MutexLock l(&write_mu_);
    stream_ = nullptr;
    stream_ctx_ = nullptr;
  }
  // Once Read has returned false the scheduler's status is in (a refusal
  // such as a certificate without the worker role, for one): Finish returns
  // it. Otherwise cancel first, so Finish does not wait on a broken stream.
  if (!read_to_end) ctx.TryCancel();
  grpc::Status s = stream->Finish();
  if (heartbeat.joinable()) heartbeat.join();
  if (!s.ok() && !stopping_) {
    LS_LOG(WARNING) << "scheduler stream ended: " << s.error_message();
  }
  // Builds of this session can no longer report; the scheduler re-queues them
  // when their lease expires, so stop them now rather than waste the slot.
  absl::MutexLock l(&mu_);
  for (auto& [id, r] : running_) *r.cancel = true;
}

void WorkerAgent::StartBuild(const v1::Assignment& a) {
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  absl::MutexLock l(&mu_);
  if (running_.count(a.build_id())) {
    LS_LOG(WARNING) << "ignoring duplicate assignment of " << a.build_id();
    return;
  }
  // Reap threads of finished builds (they leave running_ as their last act).
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (running_.count(it->first) == 0) {
      it->second.join();
      it = threads_.erase(it);
    } else {
      ++it;
    }
  }
  running_[a.build_id()] = Running{cancel, a.attempt()};
  metrics_->SetSlots(opts_.slots, static_cast<int>(running_.size()));
  threads_[a.build_id()] =
      std::thread([this, a, cancel] { ExecuteBuild(a, cancel); });
}

void WorkerAgent::ExecuteBuild(v1::Assignment a,
                               std::shared_ptr<std::atomic<bool>> cancel) {
  auto start = std::chrono::steady_clock::now();
  LS_LOG(INFO) << "build " << a.build_id() << " attempt " << a.attempt()
               << " started";
  StreamSink sink([this](const v1::WorkerMessage& m) { return Send(m); },
                  a.build_id(), a.attempt(), metrics_);
  BuildOutcome outcome;
  std::string context_dir;
  auto tar = contexts_->Fetch(a.spec().context_digest());
  if (!tar.ok()) {
    outcome.error = std::string(tar.status().message());
  } else {
    auto dir = MakeTempDir(executor_->options().work_dir + "/tmp",
                           absl::StrCat("context-", a.build_id(), "-"));
    if (!dir.ok()) {
      outcome.error = std::string(dir.status().message());
    } else {
      context_dir = *dir;
      absl::Status s = ExtractContext(*tar, context_dir);
      if (!s.ok()) outcome.error = std::string(s.message());
    }
  }
  if (outcome.error.empty()) {
    BuildRequest req;
    req.build_id = a.build_id();
    req.attempt = a.attempt();
    req.spec = a.spec();
    req.context_dir = context_dir;
    outcome = executor_->Execute(req, &sink, cancel.get());
  } else {
    v1::BuildEvent ev;
    ev.set_time_unix_nanos(absl::ToUnixNanos(absl::Now()));
    ev.mutable_error()->set_message(outcome.error);
    sink.Emit(ev);
  }
  if (!context_dir.empty()) RemoveTree(context_dir).IgnoreError();

  v1::WorkerMessage m;
  auto* r = m.mutable_result();
  r->set_build_id(a.build_id());
  r->set_attempt(a.attempt());
  for (const auto& [index, path] : outcome.output_files) {
    if (outcome.state != v1::SUCCEEDED) break;
    absl::Status s = UploadOutput(a.build_id(), a.attempt(), index, path);
    if (!s.ok()) {
      outcome.state = v1::FAILED;
      outcome.error =
          absl::StrCat("uploading output ", index, ": ", s.message());
      v1::BuildEvent ev;
      ev.set_time_unix_nanos(absl::ToUnixNanos(absl::Now()));
      ev.mutable_error()->set_message(outcome.error);
      sink.Emit(ev);
    } else {
      r->add_uploaded_outputs(index);
    }
  }
  for (const auto& [index, path] : outcome.output_files) unlink(path.c_str());
  r->set_state(outcome.state);
  r->set_image_digest(outcome.image_digest);
  for (const auto& ref : outcome.references) r->add_references(ref);
  r->set_error(outcome.error);
  *r->mutable_failed_step() = outcome.failed_step;
  // Errors before any step (a Dockerfile the worker rejects) still carry
  // their line.
  if (outcome.error_line > 0 && r->failed_step().line() == 0) {
    r->mutable_failed_step()->set_line(outcome.error_line);
  }
  if (!Send(m)) {
    LS_LOG(WARNING) << "build " << a.build_id()
                    << ": result not delivered; the scheduler will retry it";
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  metrics_->BuildFinished(ResultName(outcome.state), seconds);
  LS_LOG(INFO) << "build " << a.build_id() << " " << ResultName(outcome.state)
               << " in " << seconds << "s"
               << (outcome.error.empty() ? "" : ": " + outcome.error);
  absl::MutexLock l(&mu_);
  running_.erase(a.build_id());
  metrics_->SetSlots(opts_.slots, static_cast<int>(running_.size()));
}

absl::Status WorkerAgent::UploadOutput(const std::string& build_id, int attempt,
                                       int index, const std::string& path) {
  auto digest = Sha256File(path);
  if (!digest.ok()) return digest.status();
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  grpc::ClientContext ctx;
  v1::UploadOutputResponse resp;
  auto writer = stub_->UploadOutput(&ctx, &resp);
  v1::UploadOutputRequest header;
  auto* h = header.mutable_header();
  h->set_build_id(build_id);
  h->set_attempt(attempt);
  h->set_output_index(index);
  h->set_digest(*digest);
  bool ok = writer->Write(header);
  std::string buf(kChunk, '\0');
  while (ok) {
    ssize_t n = read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read(%s)", path);
    if (n == 0) break;
    v1::UploadOutputRequest chunk;
    chunk.set_data(buf.data(), n);
    ok = writer->Write(chunk);
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("scheduler refused the output: ", s.error_message()));
  }
  return absl::OkStatus();
}

}  // namespace longshore::worker
