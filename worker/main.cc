// longshore-worker: connects to a scheduler and runs the builds it assigns.
//
// Start-up order matters: flags are parsed, then the process re-executes itself
// inside its user namespace (sandbox/userns.h) and takes a private mount
// namespace, all before the first thread exists; only then do gRPC and the
// metrics server start threads.
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/flag_names.h"
#include "common/log.h"
#include "image/content_store.h"
#include "sandbox/userns.h"
#include "worker/build_executor.h"
#include "worker/step_cache.h"
#include "worker/worker_agent.h"
#include "worker/worker_metrics.h"
#include "worker/worker_setup.h"

ABSL_FLAG(std::string, scheduler, "127.0.0.1:7070",
          "Scheduler address HOST:PORT.");
ABSL_FLAG(std::string, work_dir, "/var/lib/longshore/worker",
          "Directory for the worker's layers, cache and scratch space.");
ABSL_FLAG(int, slots, 1, "Builds this worker runs at once.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Serve Prometheus metrics on this address (HOST:PORT).");
ABSL_FLAG(std::string, worker_id, "",
          "Name of this worker (default: hostname-pid).");
ABSL_FLAG(std::vector<std::string>, labels, {},
          "Labels K=V,K=V the scheduler may place builds by.");
ABSL_FLAG(std::string, sandbox, "",
          "Path of longshore-sandbox (default: beside this binary).");
ABSL_FLAG(int, step_timeout, 3600, "Seconds a RUN step may take.");
ABSL_FLAG(std::string, network_default, "none",
          "Network of a RUN step without --network: none or default.");
ABSL_FLAG(bool, allow_host_network, false,
          "Allow RUN --network=host (the step shares the worker's network).");
ABSL_FLAG(bool, allow_root, false,
          "Run even when started as real root (not recommended: workers "
          "should run as an unprivileged user with a subuid range).");
ABSL_FLAG(bool, no_seccomp, false,
          "Run steps without the seccomp filter (debugging only).");

namespace longshore::worker {
namespace {

int Main(int argc, char** argv) {
  SetLogTag("worker");
  absl::SetProgramUsageMessage(
      "longshore-worker --scheduler ADDR --work-dir DIR --slots N "
      "[--metrics-listen ADDR]");
  std::vector<std::string> args = NormalizeFlagNames(argc, argv);
  std::vector<char*> ptrs = ArgvPointers(args);
  absl::ParseCommandLine(static_cast<int>(args.size()), ptrs.data());

  WorkerSetupOptions setup;
  setup.work_dir = absl::GetFlag(FLAGS_work_dir);
  setup.allow_root = absl::GetFlag(FLAGS_allow_root);
  setup.sandbox_flag = absl::GetFlag(FLAGS_sandbox);
  setup.no_seccomp = absl::GetFlag(FLAGS_no_seccomp);
  // Returns in the re-executed child only; the original process waits for it.
  auto env = PrepareWorkerProcess(setup);
  if (!env.ok()) {
    fprintf(stderr, "longshore-worker: %s\n",
            std::string(env.status().message()).c_str());
    return 1;
  }

  // Signals go to one waiting thread, so block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  WorkerMetrics metrics;
  absl::Status s = metrics.Serve(absl::GetFlag(FLAGS_metrics_listen));
  if (!s.ok()) {
    fprintf(stderr, "longshore-worker: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  auto store = image::ContentStore::Open(env->work_dir + "/store");
  if (!store.ok()) {
    fprintf(stderr, "longshore-worker: content store: %s\n",
            std::string(store.status().message()).c_str());
    return 1;
  }
  StepCache cache(env->work_dir + "/cache/steps");
  s = cache.Init();
  if (!s.ok()) {
    fprintf(stderr, "longshore-worker: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  ExecutorOptions eopts;
  eopts.work_dir = env->work_dir;
  eopts.sandbox_binary = env->sandbox_binary;
  eopts.seccomp_bpf = env->seccomp_bpf;
  eopts.step_timeout_seconds = absl::GetFlag(FLAGS_step_timeout);
  eopts.default_network = absl::GetFlag(FLAGS_network_default);
  eopts.allow_host_network = absl::GetFlag(FLAGS_allow_host_network);
  AgentOptions aopts;
  aopts.scheduler_address = absl::GetFlag(FLAGS_scheduler);
  aopts.slots = std::max(1, absl::GetFlag(FLAGS_slots));
  aopts.worker_id = absl::GetFlag(FLAGS_worker_id);
  if (aopts.worker_id.empty()) {
    char host[HOST_NAME_MAX + 1] = {};
    gethostname(host, sizeof(host) - 1);
    aopts.worker_id = absl::StrCat(host, "-", env->original_pid);
  }
  eopts.worker_id = aopts.worker_id;
  for (const std::string& l : absl::GetFlag(FLAGS_labels)) {
    std::vector<std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    aopts.labels.emplace_back(kv[0], kv.size() > 1 ? kv[1] : "");
  }
  BuildExecutor executor(eopts, store->get(), &cache);
  WorkerAgent agent(aopts, &executor, &metrics);
  std::thread signals([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    LS_LOG(INFO) << "signal " << sig << ": cancelling builds and stopping";
    agent.Shutdown();
  });
  signals.detach();
  LS_LOG(INFO) << "worker " << aopts.worker_id << " serving "
               << aopts.scheduler_address << " with " << aopts.slots
               << " slots, work dir " << env->work_dir;
  agent.Run();
  return 0;
}

}  // namespace
}  // namespace longshore::worker

int main(int argc, char** argv) { return longshore::worker::Main(argc, argv); }
