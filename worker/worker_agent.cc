#include "worker/worker_agent.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/bearer_token.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/unique_fd.h"
#include "dockerfile/affinity_keys.h"

namespace longshore::worker {
namespace {

constexpr size_t kChunk = 1 << 20;
// Messages kept while the scheduler is unreachable; past it log output is
// dropped (and counted), never results or step boundaries.
constexpr size_t kMaxOutbox = 20000;
// Affinity keys a heartbeat carries at most.
constexpr size_t kMaxWarmKeys = 128;
// How long an output upload keeps retrying while the scheduler is away.
constexpr absl::Duration kUploadPatience = absl::Minutes(10);

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
  StreamSink(std::function<void(const v1::WorkerMessage&)> send,
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
  std::function<void(const v1::WorkerMessage&)> send_;
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
  channel_ = CreateChannelWithToken(opts_.scheduler_address,
                                    opts_.credentials != nullptr
                                        ? opts_.credentials
                                        : grpc::InsecureChannelCredentials(),
                                    args, opts_.token);
  stub_ = v1::WorkerService::NewStub(channel_);
  contexts_ = std::make_unique<ContextFetcher>(executor_->options().work_dir,
                                               stub_.get());
  contexts_->set_on_fetched(
      [metrics](int64_t bytes) { metrics->ContextFetched(bytes); });
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

void WorkerAgent::Send(const v1::WorkerMessage& m) {
  absl::MutexLock l(&write_mu_);
  if (stream_ != nullptr && outbox_.empty() && dropped_logs_.empty()) {
    if (stream_->Write(m)) return;
    // The stream broke under this write: the session ends shortly, and the
    // message waits for the next one.
    stream_ = nullptr;
  }
  EnqueueLocked(m);
}

void WorkerAgent::Drain(absl::Duration timeout) {
  if (draining_.exchange(true)) {
    // Second call: stop waiting.
    absl::MutexLock l(&mu_);
    drain_deadline_ = absl::Now();
    return;
  }
  {
    absl::MutexLock l(&mu_);
    drain_deadline_ = absl::Now() + timeout;
  }
  LS_LOG(INFO) << "draining: no new builds; waiting up to "
               << absl::FormatDuration(timeout)
               << " for the running ones to finish";
  SendHeartbeat();
  {
    absl::MutexLock l(&mu_);
    auto done_or_late = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return running_.empty() || absl::Now() >= drain_deadline_;
    };
    while (!done_or_late()) {
      mu_.AwaitWithTimeout(absl::Condition(&done_or_late),
                           absl::Milliseconds(200));
    }
    if (!running_.empty()) {
      LS_LOG(WARNING) << "drain: " << running_.size()
                      << " builds still running; giving them back";
      for (auto& [id, run] : running_) {
        run.released = true;
        *run.cancel = true;
      }
      auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return running_.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&stopped), absl::Seconds(30));
    }
  }
  // Results and releases reach the scheduler before the stream closes.
  for (int i = 0; i < 100; ++i) {
    {
      absl::MutexLock l(&write_mu_);
      if (outbox_.empty() && dropped_logs_.empty() && stream_ != nullptr) {
        break;
      }
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  LS_LOG(INFO) << "drained";
}

bool WorkerAgent::SendNow(const v1::WorkerMessage& m) {
  absl::MutexLock l(&write_mu_);
  if (stream_ == nullptr) return false;
  return stream_->Write(m);
}

void WorkerAgent::EnqueueLocked(const v1::WorkerMessage& m) {
  const bool is_log = m.has_event() && m.event().event().has_log();
  const std::string build_id =
      m.has_event() ? m.event().build_id()
                    : (m.has_result() ? m.result().build_id() : "");
  if (is_log && outbox_.size() >= kMaxOutbox) {
    auto& [attempt, count] = dropped_logs_[build_id];
    attempt = m.event().attempt();
    ++count;
    return;
  }
  // Output lost before this message is said, where it was lost.
  NoteDroppedLocked(build_id);
  outbox_.push_back(m);
}

void WorkerAgent::NoteDroppedLocked(const std::string& build_id) {
  auto lost = dropped_logs_.find(build_id);
  if (lost == dropped_logs_.end()) return;
  v1::WorkerMessage note;
  auto* e = note.mutable_event();
  e->set_build_id(build_id);
  e->set_attempt(lost->second.first);
  e->mutable_event()->set_time_unix_nanos(absl::ToUnixNanos(absl::Now()));
  e->mutable_event()->mutable_log()->set_data(absl::StrCat(
      "[longshore] ", lost->second.second,
      " lines of output were dropped while the scheduler was unreachable "
      "(the worker keeps at most ",
      kMaxOutbox, " messages)\n"));
  outbox_.push_back(std::move(note));
  dropped_logs_.erase(lost);
}

void WorkerAgent::FlushLocked() {
  // Builds whose dropped lines had nothing after them get their note now.
  std::vector<std::string> noted;
  for (const auto& [build_id, lost] : dropped_logs_) noted.push_back(build_id);
  for (const std::string& build_id : noted) NoteDroppedLocked(build_id);
  while (stream_ != nullptr && !outbox_.empty()) {
    if (!stream_->Write(outbox_.front())) {
      stream_ = nullptr;
      return;
    }
    outbox_.pop_front();
  }
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

void WorkerAgent::SendHeartbeat() {
  v1::WorkerMessage hb;
  auto* h = hb.mutable_heartbeat();
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, run] : running_) h->add_running_build_ids(id);
    h->set_free_slots(opts_.slots - static_cast<int>(running_.size()));
    if (warm_keys_changed_) {
      h->set_warm_keys_updated(true);
      for (const std::string& key : warm_keys_) h->add_warm_keys(key);
      warm_keys_changed_ = false;
    }
  }
  h->set_draining(draining_.load());
  SendNow(hb);
}

void WorkerAgent::Session() {
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = stub_->Connect(&ctx);
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
  std::map<std::string, int> held;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, run] : running_) held[id] = run.attempt;
    warm_keys_changed_ = true;  // A restarted scheduler knows none.
  }
  bool registered = false;
  {
    // Register, then whatever waited in the outbox, before any new message:
    // the scheduler re-attaches the held builds on Register, so what they
    // produced meanwhile lands on their leases, in order.
    absl::MutexLock l(&write_mu_);
    for (const v1::WorkerMessage& m : outbox_) {
      if (m.has_result()) held[m.result().build_id()] = m.result().attempt();
    }
    for (const auto& [id, attempt] : held) {
      auto* h = r->add_held();
      h->set_build_id(id);
      h->set_attempt(attempt);
    }
    stream_ctx_ = &ctx;
    if (stream->Write(reg)) {
      registered = true;
      stream_ = stream.get();
      FlushLocked();
    }
  }
  if (!held.empty()) {
    LS_LOG(INFO) << "registering with " << held.size()
                 << " builds held from before";
  }
  std::thread heartbeat;
  std::atomic<bool> session_done{false};
  bool read_to_end = false;
  if (registered) {
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
          connected_ = true;
          if (draining_) SendHeartbeat();  // Say so at once.
          if (!heartbeat.joinable()) {
            heartbeat = std::thread([this, interval, &session_done] {
              while (!session_done && !stopping_) {
                for (int w = 0; w < interval && !session_done; w += 50) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(50));
                }
                if (session_done) break;
                SendHeartbeat();
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
  connected_ = false;
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
  // Running builds go on: the next session reports them held, and their
  // events and results wait in the outbox until then.
}

void WorkerAgent::StartBuild(const v1::Assignment& a) {
  if (draining_) {
    // Assigned as the drain began: give it back, it runs elsewhere.
    v1::WorkerMessage m;
    m.mutable_release()->set_build_id(a.build_id());
    m.mutable_release()->set_attempt(a.attempt());
    m.mutable_release()->set_reason("the worker is draining");
    Send(m);
    return;
  }
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
  StreamSink sink([this](const v1::WorkerMessage& m) { Send(m); }, a.build_id(),
                  a.attempt(), metrics_);
  BuildOutcome outcome;
  std::string context_dir;
  auto dir = MakeTempDir(executor_->options().work_dir + "/tmp",
                         absl::StrCat("context-", a.build_id(), "-"));
  if (!dir.ok()) {
    outcome.error = std::string(dir.status().message());
  } else {
    context_dir = *dir;
    int64_t fetched = 0;
    absl::Status s =
        contexts_->Materialize(a.spec(), a.build_id(), context_dir, &fetched);
    if (!s.ok()) {
      outcome.error = std::string(s.message());
    } else if (a.spec().context_manifest()) {
      LS_LOG(INFO) << "build " << a.build_id()
                   << ": context files fetched: " << fetched << " bytes";
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
  r->set_config_digest(outcome.config_digest);
  for (const auto& ref : outcome.references) r->add_references(ref);
  r->set_error(outcome.error);
  *r->mutable_failed_step() = outcome.failed_step;
  // Errors before any step (a Dockerfile the worker rejects) still carry
  // their line.
  if (outcome.error_line > 0 && r->failed_step().line() == 0) {
    r->mutable_failed_step()->set_line(outcome.error_line);
  }
  bool released = false;
  {
    absl::MutexLock l(&mu_);
    auto it = running_.find(a.build_id());
    released = it != running_.end() && it->second.released;
  }
  if (released) {
    v1::WorkerMessage give_back;
    give_back.mutable_release()->set_build_id(a.build_id());
    give_back.mutable_release()->set_attempt(a.attempt());
    give_back.mutable_release()->set_reason(
        "the worker's drain timed out while it ran");
    Send(give_back);
  } else {
    Send(m);
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
  // Its layers are in this worker's cache now: say so to placement.
  for (std::string& key : dockerfile::AffinityKeys(
           a.spec().dockerfile(), a.spec().target(), a.spec().platform())) {
    auto old = std::find(warm_keys_.begin(), warm_keys_.end(), key);
    if (old != warm_keys_.end()) warm_keys_.erase(old);
    warm_keys_.push_back(std::move(key));
  }
  while (warm_keys_.size() > kMaxWarmKeys) warm_keys_.pop_front();
  warm_keys_changed_ = true;
}

absl::Status WorkerAgent::UploadOutput(const std::string& build_id, int attempt,
                                       int index, const std::string& path) {
  // While the scheduler is away (restarting), wait for it rather than fail
  // a build that is done.
  absl::Time give_up = absl::Now() + kUploadPatience;
  while (true) {
    absl::Status s = UploadOutputOnce(build_id, attempt, index, path);
    if (s.ok() || stopping_ || absl::Now() > give_up) return s;
    if (connected_ && !absl::IsUnavailable(s)) return s;
    LS_LOG(WARNING) << "build " << build_id << ": output " << index
                    << " not uploaded (" << s.message()
                    << "); retrying when the scheduler is back";
    for (int i = 0; i < 20 && !stopping_; ++i) {
      absl::SleepFor(absl::Milliseconds(100));
      if (connected_ && i >= 4) break;
    }
  }
}

absl::Status WorkerAgent::UploadOutputOnce(const std::string& build_id,
                                           int attempt, int index,
                                           const std::string& path) {
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
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(
        absl::StrCat("scheduler unreachable: ", s.error_message()));
  }
  if (!s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("scheduler refused the output: ", s.error_message()));
  }
  return absl::OkStatus();
}

}  // namespace longshore::worker
