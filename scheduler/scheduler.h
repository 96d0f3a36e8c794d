// Longshore's scheduler: a durable build queue, worker leases over gRPC, event
// relay and Prometheus metrics. `longshore-scheduler` runs one; the CLI embeds
// one for one-machine builds.
//
//   auto scheduler = Scheduler::Create({.state_dir = "/var/lib/longshore"});
//   int port = (*scheduler)->Start("127.0.0.1:0").value();
//   ...
//   (*scheduler)->Shutdown();
#ifndef LONGSHORE_SCHEDULER_SCHEDULER_H_
#define LONGSHORE_SCHEDULER_SCHEDULER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/grpc_tls.h"
#include "common/metrics_server.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "prometheus/registry.h"
#include "scheduler/attempt_policy.h"
#include "scheduler/authorization.h"
#include "scheduler/context_files.h"
#include "scheduler/secret_sealer.h"
#include "scheduler/storage_quota.h"
#include "scheduler/tokens.h"

namespace longshore::scheduler {

class AdminServiceImpl;
class BlobStore;
class BuildCoordinator;
class BuildJournal;
class BuildServiceImpl;
class EventLog;
class SchedulerInfoServiceImpl;
class SchedulerMetrics;
class Retention;
class WorkerServiceImpl;

struct SchedulerOptions {
  // Holds journal.db, contexts/ and outputs/; created when missing.
  std::string state_dir;
  // Workers heartbeat this often and lose their leases after
  // `missed_heartbeats_allowed` intervals without one.
  absl::Duration heartbeat_interval = absl::Seconds(2);
  int missed_heartbeats_allowed = 3;
  // Attempts a build gets before losing its worker fails it.
  int max_attempts = kDefaultMaxAttempts;
  // Largest gRPC message either way; context and output chunks must fit.
  int max_message_bytes = 16 << 20;
  // Finished builds (with their events and outputs) and unused contexts are
  // removed this long after they finished or were last used; zero keeps
  // everything.
  absl::Duration retention = absl::Hours(7 * 24);
  // Queued builds allowed in all and per submitter (0: no limit).
  int64_t max_queued = 100000;
  int64_t max_queued_per_submitter = 0;
  // Plaintext on a non-loopback address (--insecure): exported as
  // longshore_scheduler_insecure 1.
  bool insecure = false;
  // How long a running build waits for its worker to reconnect (after the
  // worker's stream ended or the scheduler restarted) before it runs again.
  absl::Duration reattach_grace = absl::Seconds(20);
  // Default and largest timeout of a build's attempt.
  absl::Duration build_timeout = absl::Hours(3);
  absl::Duration max_build_timeout = absl::Hours(24);
  // The largest build context accepted, in bytes; 0: no limit.
  int64_t max_context_bytes = int64_t{8} << 30;
  // Step output kept per build (0: no limit).
  int64_t max_log_bytes = int64_t{1} << 30;
  // TLS for Start's listener: cert and key, and with ca, mutual TLS (every
  // worker and client presents a certificate chaining to it). None given
  // means plaintext.
  TlsFiles tls = [] {
    TlsFiles t;
    t.ca_name = "--tls-client-ca";
    return t;
  }();
  // With mutual TLS: globs over certificate names (common name, subject
  // alternative names) that WorkerService callers, and callers draining
  // workers, must match; empty lets any certificate from the CA in.
  std::string tls_worker_names;
  std::string tls_operator_names;
  // Bearer tokens (scheduler/tokens.h); empty: none.
  std::string tokens_file;
  // Bytes of logs and outputs each submitter may keep stored; 0: no limit.
  int64_t submitter_quota_bytes = 0;
  // Key that seals secrets into the journal (scheduler/secret_sealer.h);
  // empty keeps them in memory only.
  std::string secrets_key_file;
  // The web page's address that GetSchedulerInfo advertises (--web-url, or
  // the one --web-listen serves); empty when there is none.
  std::string web_url;
};

class Scheduler {
 public:
  // Opens (or creates) the state directory and recovers the queue from the
  // journal.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(
      const SchedulerOptions& options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Adds BuildService, WorkerService, AdminService and SchedulerInfoService
  // and the message size limits to a server the caller builds and runs. Use
  // either this or Start, not both.
  void RegisterServices(grpc::ServerBuilder* builder);

  // Serves the four services on `listen_address` ("127.0.0.1:0" picks a port)
  // and returns the bound port.
  absl::StatusOr<int> Start(const std::string& listen_address);

  // Serves Prometheus text on http://<listen_address>/metrics, with /healthz
  // and /readyz (ready while the gRPC services are up); returns the port.
  absl::StatusOr<int> StartMetrics(const std::string& listen_address);

  // Stops serving. Running builds stay RUNNING in the journal, so the next
  // start queues them again. Idempotent.
  void Shutdown();
  // Blocks until Shutdown has been called.
  void Wait();

  // Who may call what; the web view asks it too.
  const Authorizer* authorizer() const { return authz_.get(); }
  // What the web page (scheduler/web/) reads: builds, workers and events.
  BuildCoordinator* coordinator() const { return coordinator_.get(); }
  EventLog* event_log() const { return events_.get(); }
  BlobStore* blob_store() const { return blobs_.get(); }
  const SchedulerOptions& options() const { return options_; }

  std::shared_ptr<prometheus::Registry> metrics_registry() const {
    return registry_;
  }

 private:
  explicit Scheduler(const SchedulerOptions& options);
  absl::Status Init();
  void SweepLoop();
  // Logs and outputs (CountStoredBytes) plus context files, per submitter.
  absl::StatusOr<absl::flat_hash_map<std::string, int64_t>>
  CountAllStoredBytes();

  const SchedulerOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<SchedulerMetrics> metrics_;
  std::unique_ptr<BuildJournal> journal_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<BuildCoordinator> coordinator_;
  std::unique_ptr<TokenTable> tokens_;
  std::unique_ptr<SecretSealer> sealer_;
  std::unique_ptr<StorageQuota> quota_;
  std::unique_ptr<Authorizer> authz_;
  std::unique_ptr<ContextFiles> context_files_;
  std::unique_ptr<BuildServiceImpl> build_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<SchedulerInfoServiceImpl> info_service_;
  std::unique_ptr<Retention> retention_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> serving_{false};

  absl::Mutex mu_;
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<MetricsServer> metrics_server_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification stop_sweeping_;
  absl::Notification stopped_;
  std::thread sweeper_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_SCHEDULER_H_
