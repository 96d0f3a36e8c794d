// longshore-scheduler: serves BuildService, WorkerService and AdminService, and
// Prometheus metrics, until SIGINT or SIGTERM.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/flag_names.h"
#include "common/log.h"
#include "common/version.h"
#include "scheduler/listen_policy.h"
#include "scheduler/scheduler.h"
#include "scheduler/web/web_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "Address for the gRPC services (host:port; port 0 picks one).");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Address for Prometheus metrics on /metrics; empty disables them.");
ABSL_FLAG(std::string, state_dir, "/var/lib/longshore/scheduler",
          "Directory for the journal, build contexts and outputs.");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(2),
          "How often workers must send a heartbeat.");
ABSL_FLAG(int, missed_heartbeats, 3,
          "Heartbeat intervals a worker may miss before losing its leases.");
ABSL_FLAG(int, max_attempts, 3,
          "Attempts a build gets before losing its worker fails it.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate (chain) to serve gRPC with TLS; needs --tls-key.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA that workers' and clients' certificates must chain to "
          "(mutual TLS); with --tls-cert.");
ABSL_FLAG(std::string, tls_worker_names, "",
          "With --tls-client-ca: a glob (e.g. worker-*) a certificate's "
          "common name or subject alternative name must match to act as a "
          "worker.");
ABSL_FLAG(std::string, tls_operator_names, "",
          "With --tls-client-ca: a glob a certificate name must match to "
          "drain or undrain workers.");
ABSL_FLAG(std::string, tokens_file, "",
          "Bearer tokens for CI systems: lines of \"sha256:<hex of the "
          "token> NAME ROLE\" (ROLE: submitter, operator or worker); "
          "`longshore token NAME --role ROLE` makes one. Tokens are refused "
          "over plaintext from non-loopback addresses.");
ABSL_FLAG(std::string, secrets_key_file, "",
          "File of 64 hex digits (`openssl rand -hex 32`, mode 600): build "
          "secrets are sealed with it (AES-256-GCM) in the journal and "
          "survive a restart. Without it they live in memory only, and a "
          "queued build that loses them in a restart fails, naming the "
          "secret.");
ABSL_FLAG(absl::Duration, retention, absl::Hours(7 * 24),
          "How long finished builds (status, events, outputs) and unused "
          "build contexts are kept; 0 keeps everything.");

ABSL_FLAG(int64_t, max_queued, 100000,
          "Builds the queue holds in all; past it Submit fails with "
          "RESOURCE_EXHAUSTED. 0: no limit.");
ABSL_FLAG(int64_t, max_queued_per_submitter, 0,
          "Builds one submitter may have queued; past it their Submit fails "
          "with RESOURCE_EXHAUSTED. 0: no limit.");

ABSL_FLAG(absl::Duration, reattach_grace, absl::Seconds(20),
          "How long a running build waits for its worker to come back (after "
          "its stream ended or this scheduler restarted) before it is queued "
          "again with its next attempt. Workers keep building meanwhile.");

ABSL_FLAG(absl::Duration, build_timeout, absl::Hours(3),
          "How long a build's attempt may run when the build asks for no "
          "timeout of its own (longshore build --timeout); past it the build "
          "is stopped and fails saying so.");
ABSL_FLAG(absl::Duration, max_build_timeout, absl::Hours(24),
          "The longest timeout a build may ask for.");

ABSL_FLAG(int64_t, max_context_bytes, int64_t{8} << 30,
          "The largest build context a Submit may carry, in bytes (default 8 "
          "GiB); a larger one is refused before it is received. 0: no "
          "limit.");
ABSL_FLAG(int64_t, max_log_bytes, int64_t{1} << 30,
          "Step output kept per build, in bytes (default 1 GiB); past it the "
          "output is dropped with a line saying so and the build goes on. 0: "
          "no limit.");
ABSL_FLAG(int64_t, submitter_quota_bytes, 0,
          "Bytes of build logs and client-side outputs one submitter may keep "
          "on the scheduler (until retention removes its old builds); at it, "
          "Submit is refused and further output dropped, naming the limit. "
          "0: no limit.");
ABSL_FLAG(bool, insecure, false,
          "Serve plaintext gRPC on a non-loopback --listen address (without "
          "TLS anyone who reaches it may submit, read every build and "
          "register as a worker). Warned at start and exported as "
          "longshore_scheduler_insecure 1.");

ABSL_FLAG(std::string, web_listen, "",
          "Address (host:port) for the read-only web page of builds, queue "
          "and workers; empty serves none. It uses the gRPC API's TLS "
          "(--tls-cert, --tls-key, --tls-client-ca) and identities (client "
          "certificates, --tokens-file tokens), and like --listen is "
          "refused in plaintext off loopback unless --insecure.");
ABSL_FLAG(std::string, web_url, "",
          "The web page's address as users reach it (e.g. "
          "https://farm.example:8443, behind a proxy); clients print "
          "WEB_URL/builds/ID. Default: the --web-listen address.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "longshore-scheduler --listen ADDR --metrics-listen ADDR --state-dir "
      "DIR");
  absl::FlagsUsageConfig usage_config;
  usage_config.version_string = [] {
    return longshore::VersionLine("longshore-scheduler");
  };
  absl::SetFlagsUsageConfig(usage_config);
  std::vector<std::string> args = longshore::NormalizeFlagNames(argc, argv);
  std::vector<char*> arg_ptrs = longshore::ArgvPointers(args);
  absl::ParseCommandLine(static_cast<int>(args.size()), arg_ptrs.data());
  longshore::SetLogTag("scheduler");

  longshore::scheduler::SchedulerOptions options;
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  options.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  options.missed_heartbeats_allowed = absl::GetFlag(FLAGS_missed_heartbeats);
  options.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  options.retention = absl::GetFlag(FLAGS_retention);
  options.max_queued = absl::GetFlag(FLAGS_max_queued);
  options.reattach_grace = absl::GetFlag(FLAGS_reattach_grace);
  options.build_timeout = absl::GetFlag(FLAGS_build_timeout);
  options.max_build_timeout = absl::GetFlag(FLAGS_max_build_timeout);
  options.max_context_bytes = absl::GetFlag(FLAGS_max_context_bytes);
  options.max_log_bytes = absl::GetFlag(FLAGS_max_log_bytes);
  options.submitter_quota_bytes = absl::GetFlag(FLAGS_submitter_quota_bytes);
  if (options.build_timeout <= absl::ZeroDuration() ||
      options.build_timeout > options.max_build_timeout) {
    LS_LOG(ERROR) << "--build-timeout "
                  << absl::FormatDuration(options.build_timeout)
                  << " must be positive and at most --max-build-timeout "
                  << absl::FormatDuration(options.max_build_timeout);
    return 2;
  }
  options.max_queued_per_submitter =
      absl::GetFlag(FLAGS_max_queued_per_submitter);
  if (options.max_queued < 0 || options.max_queued_per_submitter < 0) {
    LS_LOG(ERROR) << "--max-queued and --max-queued-per-submitter must be 0 "
                     "(no limit) or more";
    return 2;
  }
  options.tls.cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key = absl::GetFlag(FLAGS_tls_key);
  options.tls.ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.tls_worker_names = absl::GetFlag(FLAGS_tls_worker_names);
  options.tls_operator_names = absl::GetFlag(FLAGS_tls_operator_names);
  options.tokens_file = absl::GetFlag(FLAGS_tokens_file);
  options.secrets_key_file = absl::GetFlag(FLAGS_secrets_key_file);
  if ((!options.tls_worker_names.empty() ||
       !options.tls_operator_names.empty()) &&
      options.tls.ca.empty()) {
    LS_LOG(ERROR) << "--tls-worker-names and --tls-operator-names need "
                     "--tls-client-ca: without client certificates there "
                     "are no names to check";
    return 2;
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (absl::Status st = longshore::scheduler::CheckPlaintextListen(
          listen, !options.tls.cert.empty(), absl::GetFlag(FLAGS_insecure));
      !st.ok()) {
    LS_LOG(ERROR) << st.message();
    return 2;
  }
  options.insecure = options.tls.cert.empty() &&
                     !longshore::scheduler::IsLoopbackListen(listen);
  if (options.insecure) {
    LS_LOG(WARNING) << "--insecure: serving plaintext gRPC on " << listen
                    << "; every caller who reaches it is trusted";
  }
  const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  const std::string web_listen = absl::GetFlag(FLAGS_web_listen);
  options.web_url = absl::GetFlag(FLAGS_web_url);
  if (!web_listen.empty()) {
    if (absl::Status st = longshore::scheduler::CheckPlaintextListen(
            web_listen, !options.tls.cert.empty(),
            absl::GetFlag(FLAGS_insecure));
        !st.ok()) {
      LS_LOG(ERROR) << "--web-listen: " << st.message();
      return 2;
    }
    if (options.web_url.empty()) {
      options.web_url = absl::StrCat(
          options.tls.cert.empty() ? "http://" : "https://", web_listen);
    }
  }
  if (!options.web_url.empty() &&
      !absl::StartsWith(options.web_url, "http://") &&
      !absl::StartsWith(options.web_url, "https://")) {
    LS_LOG(ERROR) << "--web-url \"" << options.web_url
                  << "\" must start with http:// or https://";
    return 2;
  }

  // Block the stop signals before any thread starts, so every thread inherits
  // the mask and sigwait below is the only receiver.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto scheduler = longshore::scheduler::Scheduler::Create(options);
  if (!scheduler.ok()) {
    LS_LOG(ERROR) << scheduler.status();
    return 1;
  }
  absl::StatusOr<int> port = (*scheduler)->Start(listen);
  if (!port.ok()) {
    LS_LOG(ERROR) << port.status();
    return 1;
  }
  if (!metrics_listen.empty()) {
    absl::StatusOr<int> metrics_port =
        (*scheduler)->StartMetrics(metrics_listen);
    if (!metrics_port.ok()) {
      LS_LOG(ERROR) << metrics_port.status();
      return 1;
    }
  }
  std::unique_ptr<longshore::scheduler::web::WebServer> web;
  if (!web_listen.empty()) {
    longshore::scheduler::web::WebOptions web_options;
    web_options.listen = web_listen;
    web_options.tls = options.tls;
    web_options.tls.client_certificate_optional = !options.tokens_file.empty();
    web = std::make_unique<longshore::scheduler::web::WebServer>(
        web_options, (*scheduler)->coordinator(), (*scheduler)->event_log(),
        (*scheduler)->blob_store(), (*scheduler)->authorizer());
    absl::StatusOr<int> web_port = web->Start();
    if (!web_port.ok()) {
      LS_LOG(ERROR) << web_port.status();
      return 1;
    }
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LS_LOG(INFO) << "signal " << signal_number << ": stopping";
  // The page reads the scheduler's state: it stops first.
  if (web != nullptr) web->Stop();
  (*scheduler)->Shutdown();
  return 0;
}
