// longshore-worker: connects to a scheduler and runs the builds it assigns.
//
// Start-up order matters: flags are parsed, then the process re-executes itself
// inside its user namespace (sandbox/userns.h) and takes a private mount
// namespace, all before the first thread exists; only then do gRPC and the
// metrics server start threads.
#include <stdio.h>

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/flag_names.h"
#include "common/log.h"
#include "common/version.h"
#include "worker/worker_process.h"
#include "worker/worker_setup.h"

ABSL_FLAG(std::string, scheduler, "127.0.0.1:7070",
          "Scheduler address HOST:PORT.");
ABSL_FLAG(std::string, work_dir, "/var/lib/longshore/worker",
          "Directory for the worker's layers, cache and scratch space.");
ABSL_FLAG(int, slots, 1, "Builds this worker runs at once.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Serve Prometheus metrics on this address (HOST:PORT).");
ABSL_FLAG(std::string, health_listen, "",
          "Serve grpc.health.v1 (plaintext) on this address (HOST:PORT): "
          "SERVING while the worker is ready, as /readyz on "
          "--metrics-listen.");
ABSL_FLAG(std::string, worker_id, "",
          "Name of this worker (default: hostname-pid).");
ABSL_FLAG(std::vector<std::string>, labels, {},
          "Labels K=V,K=V the scheduler may place builds by.");
ABSL_FLAG(std::string, sandbox, "",
          "Path of longshore-sandbox (default: beside this binary).");
ABSL_FLAG(int, step_timeout, 3600, "Seconds a RUN step may take.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Minutes(10),
          "On SIGTERM: how long running builds may take to finish (no new "
          "ones are taken) before the rest is given back to the scheduler. "
          "A second SIGTERM gives them back at once.");
ABSL_FLAG(std::string, network_default, "default",
          "Network of a RUN step without --network: default (outbound "
          "through slirp4netns, host loopback and cloud metadata "
          "unreachable) or none.");
ABSL_FLAG(int64_t, step_memory, 0,
          "Memory a RUN step may use, in bytes (0: unlimited).");
ABSL_FLAG(int64_t, step_pids, 4096,
          "Processes a RUN step may have at once (0: unlimited).");
ABSL_FLAG(int64_t, step_disk, 0,
          "Bytes a RUN step may write to its layer (0: unlimited).");
ABSL_FLAG(int64_t, store_budget, 0,
          "Bytes of layers and snapshots to keep; after each build the least "
          "recently used ones no build is using are removed (0: keep all).");
ABSL_FLAG(int64_t, step_nofile, 0,
          "Open files per process of a RUN step (0: the sandbox's default).");
ABSL_FLAG(bool, allow_host_network, false,
          "Allow RUN --network=host (the step shares the worker's network).");
ABSL_FLAG(
    std::string, platform, "",
    "The platform this worker registers and builds for, OS/ARCH[/VARIANT] "
    "(default: this machine's, from uname). Set it when steps of another "
    "architecture run here under emulation (binfmt_misc with "
    "qemu-user); the worker does not check that they can.");
ABSL_FLAG(bool, allow_insecure, false,
          "Grant the security.insecure entitlement: a build submitted with "
          "--allow security.insecure may run RUN --security=insecure steps "
          "with every capability of the step's user namespace and no "
          "seccomp filter.");
ABSL_FLAG(bool, allow_root, false,
          "Run even when started as real root (not recommended: workers "
          "should run as an unprivileged user with a subuid range).");
ABSL_FLAG(std::string, cache_repo, "",
          "REGISTRY/REPO holding the layer cache shared by every worker.");
ABSL_FLAG(std::vector<std::string>, insecure_registry, {},
          "Registries (host[:port]) reached over plain HTTP or without "
          "certificate checks; 127.0.0.1 and localhost always are.");
ABSL_FLAG(std::string, registry_ca, "",
          "PEM CA bundle for registries (default: the system's).");
ABSL_FLAG(std::string, docker_config, "",
          "Docker config.json with registry credentials (default: "
          "~/.docker/config.json).");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA the scheduler's certificate must chain to; setting any "
          "--tls-* flag connects with TLS.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate this worker presents to the scheduler (mutual "
          "TLS), with --tls-key.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, token_file, "",
          "File holding a bearer token with the worker role (`longshore "
          "token NAME --role worker`), for a scheduler with --tokens-file; "
          "sent only over TLS or loopback.");
ABSL_FLAG(bool, no_seccomp, false,
          "Run steps without the seccomp filter (debugging only).");

int main(int argc, char** argv) {
  longshore::SetLogTag("worker");
  absl::SetProgramUsageMessage(
      "longshore-worker --scheduler ADDR --work-dir DIR --slots N "
      "[--metrics-listen ADDR]");
  absl::FlagsUsageConfig usage_config;
  usage_config.version_string = [] {
    return longshore::VersionLine("longshore-worker");
  };
  absl::SetFlagsUsageConfig(usage_config);
  std::vector<std::string> args = longshore::NormalizeFlagNames(argc, argv);
  std::vector<char*> ptrs = longshore::ArgvPointers(args);
  absl::ParseCommandLine(static_cast<int>(args.size()), ptrs.data());

  longshore::worker::WorkerSetupOptions setup;
  setup.work_dir = absl::GetFlag(FLAGS_work_dir);
  setup.allow_root = absl::GetFlag(FLAGS_allow_root);
  setup.sandbox_flag = absl::GetFlag(FLAGS_sandbox);
  setup.no_seccomp = absl::GetFlag(FLAGS_no_seccomp);
  // Returns in the re-executed child only; the original process waits for it.
  auto env = longshore::worker::PrepareWorkerProcess(setup);
  if (!env.ok()) {
    fprintf(stderr, "longshore-worker: %s\n",
            std::string(env.status().message()).c_str());
    return 1;
  }
  longshore::worker::WorkerConfig config;
  config.scheduler_address = absl::GetFlag(FLAGS_scheduler);
  config.worker_id = absl::GetFlag(FLAGS_worker_id);
  config.slots = absl::GetFlag(FLAGS_slots);
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  config.health_listen = absl::GetFlag(FLAGS_health_listen);
  for (const std::string& l : absl::GetFlag(FLAGS_labels)) {
    std::vector<std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    config.labels.emplace_back(kv[0], kv.size() > 1 ? kv[1] : "");
  }
  config.step_timeout_seconds = absl::GetFlag(FLAGS_step_timeout);
  config.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  config.network_default = absl::GetFlag(FLAGS_network_default);
  config.allow_host_network = absl::GetFlag(FLAGS_allow_host_network);
  config.allow_insecure = absl::GetFlag(FLAGS_allow_insecure);
  config.platform = absl::GetFlag(FLAGS_platform);
  config.step_memory_bytes = absl::GetFlag(FLAGS_step_memory);
  config.step_pids = absl::GetFlag(FLAGS_step_pids);
  config.step_disk_bytes = absl::GetFlag(FLAGS_step_disk);
  config.step_nofile = absl::GetFlag(FLAGS_step_nofile);
  config.store_budget_bytes = absl::GetFlag(FLAGS_store_budget);
  config.cache_repo = absl::GetFlag(FLAGS_cache_repo);
  config.insecure_registries = absl::GetFlag(FLAGS_insecure_registry);
  config.registry_ca_file = absl::GetFlag(FLAGS_registry_ca);
  config.docker_config = absl::GetFlag(FLAGS_docker_config);
  config.scheduler_tls.ca = absl::GetFlag(FLAGS_tls_ca);
  config.scheduler_tls.cert = absl::GetFlag(FLAGS_tls_cert);
  config.scheduler_tls.key = absl::GetFlag(FLAGS_tls_key);
  config.token_file = absl::GetFlag(FLAGS_token_file);
  absl::Status s = longshore::worker::ServeWorker(config, *env);
  if (!s.ok()) {
    fprintf(stderr, "longshore-worker: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
