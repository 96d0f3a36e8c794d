// The worker's side of the scheduler protocol: one long-lived Connect stream
// (register, heartbeats, assignments, cancellations, events, results), builds
// run on their own threads up to the slot count, reconnection with backoff.
#ifndef LONGSHORE_WORKER_WORKER_AGENT_H_
#define LONGSHORE_WORKER_WORKER_AGENT_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
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

 private:
  struct Running {
    std::shared_ptr<std::atomic<bool>> cancel;
    int attempt = 0;
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
  bool Send(const v1::WorkerMessage& m);
  void Heartbeats(int interval_ms);

  AgentOptions opts_;
  BuildExecutor* executor_;
  WorkerMetrics* metrics_;
  std::atomic<bool> stopping_{false};

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::unique_ptr<ContextFetcher> contexts_;

  absl::Mutex write_mu_;
  Stream* stream_ ABSL_GUARDED_BY(write_mu_) = nullptr;
  grpc::ClientContext* stream_ctx_ ABSL_GUARDED_BY(write_mu_) = nullptr;

  absl::Mutex mu_;
  std::map<std::string, Running> running_ ABSL_GUARDED_BY(mu_);
  // Build threads by build id; joined once their build left running_.
  std::map<std::string, std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_WORKER_AGENT_H_
