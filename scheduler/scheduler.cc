#include "scheduler/scheduler.h"

#include <algorithm>
#include <exception>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "scheduler/admin_service.h"
#include "scheduler/blob_store.h"
#include "scheduler/build_coordinator.h"
#include "scheduler/build_journal.h"
#include "scheduler/build_service.h"
#include "scheduler/event_log.h"
#include "scheduler/retention.h"
#include "scheduler/scheduler_info_service.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/worker_service.h"

namespace longshore::scheduler {

Scheduler::Scheduler(const SchedulerOptions& options)
    : options_(options), registry_(std::make_shared<prometheus::Registry>()) {}

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(
    const SchedulerOptions& options) {
  if (options.state_dir.empty()) {
    return absl::InvalidArgumentError("scheduler: state_dir is empty");
  }
  if (options.heartbeat_interval <= absl::ZeroDuration() ||
      options.missed_heartbeats_allowed < 1 || options.max_attempts < 1) {
    return absl::InvalidArgumentError(
        "scheduler: heartbeat_interval, missed_heartbeats_allowed and "
        "max_attempts must be positive");
  }
  std::unique_ptr<Scheduler> scheduler(new Scheduler(options));
  RETURN_IF_ERROR(scheduler->Init());
  return scheduler;
}

absl::Status Scheduler::Init() {
  RETURN_IF_ERROR(MakeDirs(options_.state_dir, 0700));
  metrics_ = std::make_unique<SchedulerMetrics>(*registry_);
  RegisterBuildInfo(*registry_, "scheduler");
  metrics_->SetInsecure(options_.insecure);
  ASSIGN_OR_RETURN(journal_,
                   BuildJournal::Open(options_.state_dir + "/journal.db"));
  ASSIGN_OR_RETURN(blobs_, BlobStore::Open(options_.state_dir));
  ASSIGN_OR_RETURN(context_files_, ContextFiles::Open(options_.state_dir));
  journal_->SetCommitObserver([metrics = metrics_.get()](absl::Duration took) {
    metrics->JournalCommit(took);
  });
  events_ = std::make_unique<EventLog>(journal_.get());
  RETURN_IF_ERROR(events_->SetLogDir(options_.state_dir + "/logs"));
  CoordinatorOptions co;
  co.max_attempts = options_.max_attempts;
  co.heartbeat_interval = options_.heartbeat_interval;
  co.missed_heartbeats_allowed = options_.missed_heartbeats_allowed;
  co.max_queued = options_.max_queued;
  co.max_queued_per_submitter = options_.max_queued_per_submitter;
  co.reattach_grace = options_.reattach_grace;
  co.build_timeout = options_.build_timeout;
  co.max_build_timeout = options_.max_build_timeout;
  co.max_context_bytes = options_.max_context_bytes;
  co.max_log_bytes = options_.max_log_bytes;
  if (options_.submitter_quota_bytes > 0) {
    quota_ = std::make_unique<StorageQuota>(options_.submitter_quota_bytes);
    ASSIGN_OR_RETURN(auto usage, CountAllStoredBytes());
    quota_->Reset(std::move(usage));
    co.quota = quota_.get();
  }
  if (!options_.secrets_key_file.empty()) {
    ASSIGN_OR_RETURN(SecretSealer sealer,
                     SecretSealer::FromKeyFile(options_.secrets_key_file));
    sealer_ = std::make_unique<SecretSealer>(std::move(sealer));
    co.sealer = sealer_.get();
  }
  coordinator_ = std::make_unique<BuildCoordinator>(
      co, journal_.get(), events_.get(), blobs_.get(), metrics_.get());
  RETURN_IF_ERROR(coordinator_->Recover());
  AuthorizerOptions auth;
  auth.tls = !options_.tls.cert.empty();
  auth.mutual_tls = auth.tls && !options_.tls.ca.empty();
  auth.worker_names = options_.tls_worker_names;
  auth.operator_names = options_.tls_operator_names;
  if (!options_.tokens_file.empty()) {
    ASSIGN_OR_RETURN(TokenTable tokens, TokenTable::Load(options_.tokens_file));
    tokens_ = std::make_unique<TokenTable>(std::move(tokens));
    auth.tokens = tokens_.get();
    LS_LOG(INFO) << "bearer tokens: " << tokens_->size() << " from "
                 << options_.tokens_file;
  }
  authz_ = std::make_unique<Authorizer>(
      auth, [coordinator = coordinator_.get()](const std::string& build_id) {
        return coordinator->Access(build_id);
      });
  build_service_ = std::make_unique<BuildServiceImpl>(
      coordinator_.get(), events_.get(), blobs_.get(), metrics_.get(),
      &stopping_, authz_.get());
  worker_service_ = std::make_unique<WorkerServiceImpl>(
      coordinator_.get(), blobs_.get(), authz_.get());
  build_service_->EnableContextSync(context_files_.get(), quota_.get(),
                                    options_.max_context_bytes);
  worker_service_->EnableContextSync(context_files_.get(), authz_->open());
  admin_service_ =
      std::make_unique<AdminServiceImpl>(coordinator_.get(), authz_.get());
  info_service_ = std::make_unique<SchedulerInfoServiceImpl>(options_.web_url,
                                                             authz_.get());
  RetentionOptions ro;
  ro.keep = options_.retention;
  retention_ = std::make_unique<Retention>(ro, journal_.get(), blobs_.get(),
                                           events_.get());
  sweeper_ = std::thread([this] { SweepLoop(); });
  return absl::OkStatus();
}

absl::StatusOr<absl::flat_hash_map<std::string, int64_t>>
Scheduler::CountAllStoredBytes() {
  ASSIGN_OR_RETURN(auto usage, CountStoredBytes(journal_.get(), *events_));
  ASSIGN_OR_RETURN(auto files, context_files_->Usage());
  for (const auto& [owner, bytes] : files) {
    if (!owner.empty()) usage[owner] += bytes;  // As UploadContent counts.
  }
  return usage;
}

Scheduler::~Scheduler() { Shutdown(); }

void Scheduler::SweepLoop() {
  // Several checks per heartbeat interval keep expiry within a fraction of an
  // interval of its deadline.
  const absl::Duration period = options_.heartbeat_interval / 4;
  // Retention runs at start and then every 1/24th of the retention period
  // (at most every 10 minutes, at least every minute).
  const absl::Duration retention_period =
      std::clamp(options_.retention / 24, absl::Minutes(1), absl::Minutes(10));
  absl::Time next_retention = absl::Now();
  do {
    coordinator_->ExpireLeases();
    if (options_.retention > absl::ZeroDuration() &&
        absl::Now() >= next_retention) {
      next_retention = absl::Now() + retention_period;
      absl::StatusOr<SweepResult> swept = retention_->Sweep(absl::Now());
      if (!swept.ok()) {
        LS_LOG(WARNING) << "retention: " << swept.status();
      } else if (swept->builds > 0 && quota_ != nullptr) {
        // What retention freed counts again.
        absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> usage =
            CountAllStoredBytes();
        if (usage.ok()) quota_->Reset(std::move(*usage));
      }
      absl::StatusOr<ContentStore::Usage> files =
          context_files_->RemoveUnusedSince(absl::Now() - options_.retention);
      if (!files.ok()) {
        LS_LOG(WARNING) << "retention of context files: " << files.status();
      } else if (files->files > 0) {
        LS_LOG(INFO) << "retention: removed " << files->files
                     << " context files unused for "
                     << absl::FormatDuration(options_.retention) << " ("
                     << files->bytes << " bytes)";
        if (quota_ != nullptr) {
          absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> usage =
              CountAllStoredBytes();
          if (usage.ok()) quota_->Reset(std::move(*usage));
        }
      }
      if (swept.ok() && (swept->builds > 0 || swept->contexts > 0)) {
        LS_LOG(INFO) << "retention: removed " << swept->builds
                     << " builds finished more than "
                     << absl::FormatDuration(options_.retention) << " ago and "
                     << swept->contexts << " unused contexts ("
                     << swept->context_bytes << " bytes)";
      }
    }
  } while (!stop_sweeping_.WaitForNotificationWithTimeout(period));
}

void Scheduler::RegisterServices(grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder->SetMaxSendMessageSize(options_.max_message_bytes);
  builder->RegisterService(build_service_.get());
  builder->RegisterService(worker_service_.get());
  builder->RegisterService(admin_service_.get());
  builder->RegisterService(info_service_.get());
}

absl::StatusOr<int> Scheduler::Start(const std::string& listen_address) {
  absl::MutexLock lock(&mu_);
  if (server_ != nullptr || shut_down_) {
    return absl::FailedPreconditionError(
        "scheduler: Start called twice or after Shutdown");
  }
  TlsFiles tls = options_.tls;
  // With tokens, a client may come without a certificate and present one.
  tls.client_certificate_optional = tokens_ != nullptr;
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                   ServerCredentials(tls));
  // grpc.health.v1.Health: "" and each service SERVING while the server
  // runs; NOT_SERVING from the start of Shutdown.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen_address, credentials, &port);
  RegisterServices(&builder);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("scheduler: cannot listen on ", listen_address));
  }
  for (const char* service :
       {"", "longshore.v1.BuildService", "longshore.v1.WorkerService",
        "longshore.v1.AdminService"}) {
    server_->GetHealthCheckService()->SetServingStatus(service, true);
  }
  serving_ = true;
  LS_LOG(INFO) << "scheduler listening on " << listen_address << " (port "
               << port << "), state in " << options_.state_dir;
  return port;
}

absl::StatusOr<int> Scheduler::StartMetrics(const std::string& listen_address) {
  absl::MutexLock lock(&mu_);
  if (metrics_server_ != nullptr) {
    return absl::FailedPreconditionError(
        "scheduler: metrics are served already");
  }
  auto server =
      MetricsServer::Start(listen_address, registry_, [this]() -> absl::Status {
        if (stopping_) return absl::UnavailableError("stopping");
        if (!serving_) return absl::UnavailableError("gRPC is not served yet");
        return absl::OkStatus();
      });
  if (!server.ok()) {
    return absl::UnavailableError(
        absl::StrCat("scheduler: ", server.status().message()));
  }
  metrics_server_ = std::move(*server);
  const int port = metrics_server_->port();
  LS_LOG(INFO) << "metrics on http://" << listen_address << "/metrics (port "
               << port << "), probes on /healthz and /readyz";
  return port;
}

void Scheduler::Shutdown() {
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<MetricsServer> metrics_server;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    server = std::move(server_);
    metrics_server = std::move(metrics_server_);
  }
  stopping_ = true;
  if (server != nullptr) {
    // Health checkers see NOT_SERVING before connections are refused.
    server->GetHealthCheckService()->Shutdown();
  }
  // Init may have failed part way (a bad key file): stop what exists.
  if (coordinator_ != nullptr) coordinator_->Stop();
  if (events_ != nullptr) events_->WakeAll();
  if (server != nullptr) {
    // Long-lived streams (Connect, Watch) are cancelled at the deadline.
    server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    server->Wait();
  }
  metrics_server.reset();
  stop_sweeping_.Notify();
  if (sweeper_.joinable()) sweeper_.join();
  stopped_.Notify();
  LS_LOG(INFO) << "scheduler stopped";
}

void Scheduler::Wait() { stopped_.WaitForNotification(); }

}  // namespace longshore::scheduler
