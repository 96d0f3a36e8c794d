// The worker's side of the scheduler protocol: one long-lived Connect stream
// (register, heartbeats, assignments, cancellations, events, results), builds
// run on their own threads up to the slot count, reconnection with backoff.
// Builds outlive the stream: while it is down their events and results wait
// in a bounded, ordered outbox, and the next Register names the builds held,
// so the scheduler re-attaches them instead of running them again.
#ifndef LONGSHORE_WORKER_WORKER_AGENT_H_
#define LONGSHORE_WORKER_WORKER_AGENT_H_

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "proto/longshore.grpc.pb.h"
#include "worker/build_executor.h"
#include "worker/context_fetcher.h"
#include "worker/worker_metrics.h"

namespace longshore::worker {

struct AgentOptions {
  std::string scheduler_address;
  // TLS (or plaintext) toward the scheduler; null means plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Bearer token sent with every call; empty: none.
  std::string token;
  std::string worker_id;
  int slots = 1;
  std::vector<std::pair<std::string, std::string>> labels;
  std::string platform;  // what it builds for, e.g. "linux/amd64"
};

class WorkerAgent {
 public:
  WorkerAgent(AgentOptions opts, BuildExecutor* executor,
              WorkerMetrics* metrics);
  ~WorkerAgent();

  // Connects and serves assignments until Shutdown(); reconnects when the
  // stream drops.
  void Run();
  // Cancels running builds, closes the stream and makes Run() return.
  void Shutdown();
  // Graceful stop (SIGTERM): takes no new builds (the scheduler is told, and
  // an assignment racing with that is released back), lets the running ones
  // finish and deliver their results for up to `timeout`, then releases what
  // still runs (the scheduler queues it again without using an attempt),
  // and returns. A second call, or `timeout`, ends the wait at once.
  void Drain(absl::Duration timeout);

 private:
  struct Running {
    std::shared_ptr<std::atomic<bool>> cancel;
    int attempt = 0;
    // Stopped by a drain: given back to the scheduler instead of reported.
    bool released = false;
  };
  using Stream = grpc::ClientReaderWriterInterface<v1::WorkerMessage,
                                                   v1::SchedulerMessage>;

  // One connection's life; returns when the stream ends.
  void Session();
  void StartBuild(const v1::Assignment& a);
  void ExecuteBuild(v1::Assignment a,
                    std::shared_ptr<std::atomic<bool>> cancel);
  absl::Status UploadOutput(const std::string& build_id, int attempt, int index,
                            const std::string& path);
  absl::Status UploadOutputOnce(const std::string& build_id, int attempt,
                                int index, const std::string& path);
  // Delivers `m` in order, or keeps it in the outbox until a stream is up
  // (bounded: past kMaxOutbox, log output is dropped and counted, and a line
  // saying so is delivered in its place; nothing else is dropped).
  void Send(const v1::WorkerMessage& m);
  // Writes now or not at all (heartbeats: a stale one is worthless).
  bool SendNow(const v1::WorkerMessage& m);
  void EnqueueLocked(const v1::WorkerMessage& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Puts the "N lines dropped" line of a build in the outbox, if any were.
  void NoteDroppedLocked(const std::string& build_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Writes the outbox in order while the stream takes it.
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void SendHeartbeat();
  void Heartbeats(int interval_ms);

  AgentOptions opts_;
  BuildExecutor* executor_;
  WorkerMetrics* metrics_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> connected_{false};

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::unique_ptr<ContextFetcher> contexts_;

  absl::Mutex write_mu_;
  Stream* stream_ ABSL_GUARDED_BY(write_mu_) = nullptr;
  grpc::ClientContext* stream_ctx_ ABSL_GUARDED_BY(write_mu_) = nullptr;
  std::deque<v1::WorkerMessage> outbox_ ABSL_GUARDED_BY(write_mu_);
  // Log events dropped from the outbox, by build, not yet reported.
  std::map<std::string, std::pair<int, int64_t>> dropped_logs_
      ABSL_GUARDED_BY(write_mu_);  // build -> (attempt, count)

  absl::Mutex mu_;
  std::map<std::string, Running> running_ ABSL_GUARDED_BY(mu_);
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Affinity keys of the builds run most recently, newest last (bounded), and
  // whether the scheduler has yet to hear of the current set.
  std::deque<std::string> warm_keys_ ABSL_GUARDED_BY(mu_);
  bool warm_keys_changed_ ABSL_GUARDED_BY(mu_) = true;
  // Build threads by build id; joined once their build left running_.
  std::map<std::string, std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_WORKER_AGENT_H_
