#include "worker/worker_process.h"

#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/bearer_token.h"
#include "common/log.h"
#include "common/platform.h"
#include "common/status_macros.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "image/content_store.h"
#include "image/layer_cache.h"
#include "image/reference.h"
#include "image/registry_client.h"
#include "worker/build_executor.h"
#include "worker/counted_layer_cache.h"
#include "worker/sandbox_self_test.h"
#include "worker/worker_agent.h"
#include "worker/worker_metrics.h"

namespace longshore::worker {

absl::Status ServeWorker(const WorkerConfig& config,
                         const WorkerEnvironment& env,
                         const std::function<void()>& on_ready) {
  // Signals go to one waiting thread, so block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  WorkerMetrics metrics;
  absl::Status s = metrics.Serve(config.metrics_listen);
  if (!s.ok()) return s;
  // grpc.health.v1 for gRPC probes: "" is SERVING exactly while /readyz
  // answers 200.
  std::unique_ptr<grpc::Server> health;
  // gRPC serves its health service synchronously only beside a synchronous
  // service: the WorkerService base, whose every method answers
  // UNIMPLEMENTED, is that anchor (the worker serves no RPC of its own).
  v1::WorkerService::Service anchor;
  if (!config.health_listen.empty()) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.RegisterService(&anchor);
    int port = 0;
    builder.AddListeningPort(config.health_listen,
                             grpc::InsecureServerCredentials(), &port);
    health = builder.BuildAndStart();
    if (health == nullptr || port == 0) {
      return absl::UnavailableError(absl::StrCat(
          "--health-listen ", config.health_listen, ": cannot listen there"));
    }
    grpc::HealthCheckServiceInterface* checks = health->GetHealthCheckService();
    metrics.OnReadyChange(
        [checks](bool ready) { checks->SetServingStatus(ready); });
  }
  auto store = image::ContentStore::Open(env.work_dir + "/store");
  if (!store.ok()) {
    return absl::Status(
        store.status().code(),
        absl::StrCat("content store: ", store.status().message()));
  }
  image::RegistryOptions ropts;
  ropts.insecure_registries = config.insecure_registries;
  ropts.ca_file = config.registry_ca_file;
  ropts.on_blob_pulled = [&metrics](int64_t b) { metrics.LayerPulled(b); };
  ropts.on_blob_pushed = [&metrics](int64_t b) { metrics.LayerPushed(b); };
  std::string docker_config = config.docker_config.empty()
                                  ? image::DefaultDockerConfigPath()
                                  : config.docker_config;
  s = image::LoadDockerConfigCredentials(docker_config, &ropts.credentials);
  if (!s.ok()) {
    // A missing file is normal; one that does not parse is the operator's
    // to fix, but builds from public images still work without it.
    LS_LOG(WARNING) << "registry credentials: " << s;
  }
  image::RegistryClient registry(ropts);
  auto local = image::LocalLayerCache::Open(env.work_dir + "/cache/steps");
  if (!local.ok()) return local.status();
  std::unique_ptr<image::RegistryLayerCache> remote;
  if (!config.cache_repo.empty()) {
    auto repo = image::ParseReference(config.cache_repo);
    if (!repo.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--cache-repo ", config.cache_repo, ": ", repo.status().message()));
    }
    remote = std::make_unique<image::RegistryLayerCache>(&registry, *repo);
    LS_LOG(INFO) << "shared layer cache: " << repo->Name();
  }
  // Lookups are counted per tier for longshore_worker_cache_lookups_total.
  CountedLayerCache counted_local(local->get(), "local", &metrics);
  std::unique_ptr<CountedLayerCache> counted_remote;
  if (remote != nullptr) {
    counted_remote =
        std::make_unique<CountedLayerCache>(remote.get(), "remote", &metrics);
  }
  image::TieredLayerCache cache(&counted_local, counted_remote.get());

  ExecutorOptions eopts;
  eopts.work_dir = env.work_dir;
  eopts.sandbox_binary = env.sandbox_binary;
  eopts.seccomp_bpf = env.seccomp_bpf;
  eopts.step_timeout_seconds = config.step_timeout_seconds;
  eopts.default_network = config.network_default;
  eopts.allow_host_network = config.allow_host_network;
  eopts.allow_insecure = config.allow_insecure;
  eopts.platform = config.platform.empty() ? NativePlatform() : config.platform;
  eopts.step_memory_bytes = config.step_memory_bytes;
  eopts.step_pids = config.step_pids;
  eopts.step_disk_bytes = config.step_disk_bytes;
  eopts.step_nofile = config.step_nofile;
  eopts.cgroup_parent = env.cgroup_parent;
  eopts.store_budget_bytes = config.store_budget_bytes;
  eopts.observer = &metrics;
  metrics.StoreUsage((*store)->TotalBytes(), config.store_budget_bytes);
  AgentOptions aopts;
  aopts.scheduler_address = config.scheduler_address;
  ASSIGN_OR_RETURN(aopts.credentials, ClientCredentials(config.scheduler_tls));
  if (!config.token_file.empty()) {
    ASSIGN_OR_RETURN(aopts.token,
                     ReadTokenFile(config.token_file, "--token-file"));
    RETURN_IF_ERROR(CheckTokenTransport(config.scheduler_address,
                                        config.scheduler_tls.any()));
  }
  aopts.slots = std::max(1, config.slots);
  aopts.worker_id = config.worker_id;
  if (aopts.worker_id.empty()) {
    char host[HOST_NAME_MAX + 1] = {};
    gethostname(host, sizeof(host) - 1);
    aopts.worker_id = absl::StrCat(host, "-", env.original_pid);
  }
  eopts.worker_id = aopts.worker_id;
  aopts.labels = config.labels;
  aopts.platform = config.platform.empty() ? NativePlatform() : config.platform;
  BuildExecutor executor(eopts, store->get(), &cache, &registry);
  // Before the scheduler hears of this worker: one sandbox end to end. A
  // worker whose sandbox cannot start takes no builds; it stays up, not
  // ready (/readyz says why), until stopped.
  SelfTestOptions st;
  st.sandbox_binary = env.sandbox_binary;
  st.seccomp_bpf = env.seccomp_bpf;
  st.scratch_dir = env.work_dir + "/tmp";
  st.cgroup_parent = env.cgroup_parent;
  absl::StatusOr<double> self_test = SandboxSelfTest(st);
  metrics.SetSandboxChecked(self_test.ok());
  if (!self_test.ok()) {
    LS_LOG(ERROR) << self_test.status() << "; taking no builds until restarted";
    int sig = 0;
    sigwait(&sigs, &sig);
    return self_test.status();
  }
  metrics.SandboxSetup(*self_test);
  LS_LOG(INFO) << "sandbox self-test passed (setup " << *self_test << " s)";
  WorkerAgent agent(aopts, &executor, &metrics);
  // First SIGTERM or SIGINT: drain (finish what runs, take nothing new,
  // deliver the results) for up to --drain-timeout, then stop. A second one
  // ends the wait: what still runs is given back to the scheduler, which
  // queues it again without using an attempt.
  std::thread signals([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    LS_LOG(INFO) << "signal " << sig << ": draining, then stopping";
    std::thread second([&] {
      int again = 0;
      sigwait(&sigs, &again);
      LS_LOG(INFO) << "signal " << again << ": giving running builds back";
      agent.Drain(absl::ZeroDuration());
    });
    second.detach();
    metrics.Connected(false);
    agent.Drain(config.drain_timeout);
    agent.Shutdown();
  });
  signals.detach();
  LS_LOG(INFO) << "worker " << aopts.worker_id << " serving "
               << aopts.scheduler_address << " with " << aopts.slots
               << " slots, work dir " << env.work_dir;
  if (on_ready) on_ready();
  agent.Run();
  metrics.OnReadyChange(nullptr);
  if (health != nullptr) {
    health->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }
  return absl::OkStatus();
}

}  // namespace longshore::worker
