// A whole worker inside one process: metrics, content store, cache, executor
// and agent, served until SIGTERM or SIGINT. Used by longshore-worker's main()
// and by the `longshore` CLI's one-machine farm.
#ifndef LONGSHORE_WORKER_WORKER_PROCESS_H_
#define LONGSHORE_WORKER_WORKER_PROCESS_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/grpc_tls.h"
#include "worker/worker_setup.h"

namespace longshore::worker {

struct WorkerConfig {
  std::string scheduler_address;
  std::string worker_id;  // empty: hostname-pid
  int slots = 1;
  std::string metrics_listen;  // empty: no metrics endpoint
  // grpc.health.v1 (plaintext) on this address; empty: none.
  std::string health_listen;
  std::vector<std::pair<std::string, std::string>> labels;
  int step_timeout_seconds = 3600;
  // On SIGTERM, how long running builds may take to finish before they are
  // given back to the scheduler.
  absl::Duration drain_timeout = absl::Minutes(10);
  std::string network_default = "default";
  int64_t step_memory_bytes = 0;
  int64_t step_pids = 0;
  int64_t step_disk_bytes = 0;
  int64_t step_nofile = 0;
  int64_t store_budget_bytes = 0;
  bool allow_host_network = false;
  bool allow_insecure = false;
  // --platform; empty: NativePlatform().
  std::string platform;
  // REGISTRY/REPO of the layer cache shared by every worker of the farm;
  // empty keeps the cache local.
  std::string cache_repo;
  // Registries reached over plain HTTP or without certificate checks (besides
  // 127.0.0.1 and localhost, which always are).
  std::vector<std::string> insecure_registries;
  std::string registry_ca_file;  // PEM bundle; empty: the system's
  // Docker-style credentials (`auths`); empty: ~/.docker/config.json.
  std::string docker_config;
  // TLS toward the scheduler (--tls-ca, --tls-cert, --tls-key); none given
  // means plaintext.
  TlsFiles scheduler_tls;
  // A bearer token with the worker role, read from this file; empty: none.
  std::string token_file;
};

// Blocks SIGTERM and SIGINT in the calling thread (call before any thread
// starts, so every thread inherits the mask), then serves until one arrives.
// `on_ready` runs once the worker is set up, before it connects.
absl::Status ServeWorker(const WorkerConfig& config,
                         const WorkerEnvironment& env,
                         const std::function<void()>& on_ready = nullptr);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_WORKER_PROCESS_H_
