// RUN: the step's mounts, heredoc scripts, network policy and limits, then
// the sandbox, with its output streamed as the build's log.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "worker/build_run.h"
#include "worker/entitlements.h"
#include "worker/run_mounts.h"
#include "worker/sandbox_runner.h"

namespace longshore::worker {
namespace build_internal {

absl::Status BuildRun::ExecRun(const dockerfile::ExpandedStep& step,
                               const StageResult& r, const v1::StepRef& ref,
                               const std::string& step_dir) {
  const dockerfile::RunStep& run = step.run;
  // Stages a bind mount reads from, mounted read-only while the step runs.
  std::vector<OverlayMount> stage_views;
  MountContext mctx;
  mctx.cache_root = opts_.work_dir + "/cache/mounts";
  mctx.scratch_dir = step_dir;
  mctx.context_dir = req_.context_dir;
  for (const auto& secret : req_.spec.secrets()) {
    mctx.secrets[secret.id()] = secret.value();
  }
  mctx.stage_root = [&](int index) -> absl::StatusOr<std::string> {
    StageResult stage;
    {
      absl::MutexLock l(&mu_);
      auto it = results_.find(index);
      if (it == results_.end()) {
        return absl::FailedPreconditionError(
            absl::StrCat("stage ", index, " was not built"));
      }
      stage = it->second;
    }
    std::string dir = absl::StrCat(step_dir, "/stage-", index);
    RETURN_IF_ERROR(MakeDirs(dir, 0755));
    ASSIGN_OR_RETURN(OverlayMount m, OverlayMount::Mount(Lowers(stage), "", "",
                                                         dir, EmptyDir()));
    stage_views.push_back(std::move(m));
    return dir;
  };
  ASSIGN_OR_RETURN(PreparedMounts mounts, PrepareRunMounts(run.mounts, mctx));
  // `RUN <<EOF` whose body starts with "#!": the body is an executable
  // script at /dev/pipes/<name>, bind-mounted read-only for the step.
  std::vector<std::string> heredoc_args;
  for (const auto& h : run.heredoc_files) {
    std::string path = absl::StrCat(step_dir, "/heredoc-", h.name);
    RETURN_IF_ERROR(WriteFileAtomic(path, h.content, 0755));
    heredoc_args.push_back("--bind");
    heredoc_args.push_back(absl::StrCat(path, ":/dev/pipes/", h.name, ":ro"));
  }
  const EntitlementPolicy policy{opts_.allow_host_network,
                                 opts_.allow_insecure};
  ASSIGN_OR_RETURN(
      std::string network,
      StepNetwork(run.network, req_.spec, policy, opts_.default_network));
  ASSIGN_OR_RETURN(bool insecure,
                   StepInsecure(run.security, req_.spec, policy));
  if (opts_.observer != nullptr) opts_.observer->RunStep(network);
  SandboxInvocation inv;
  inv.sandbox_binary = opts_.sandbox_binary;
  // The worker's scratch space (emptied when the worker starts), not /tmp.
  inv.tmp_dir = opts_.work_dir + "/tmp";
  inv.lowers = Lowers(r);
  if (inv.lowers.empty()) inv.lowers.push_back(EmptyDir());
  inv.upper = step_dir + "/upper";
  inv.work = step_dir + "/work";
  // Like a container id: the first 12 hex digits of something unique to the
  // step in this build.
  inv.hostname =
      Sha256Digest(absl::StrCat(req_.build_id, "/", ref.index())).substr(7, 12);
  inv.cwd = run.workdir.empty() ? "/" : run.workdir;
  inv.user = run.user;
  inv.network = network;
  inv.env = run.env;
  inv.argv = run.argv;
  // An insecure step keeps every capability of its user namespace and runs
  // without the seccomp filter (BuildKit's security.insecure).
  inv.seccomp_bpf = insecure ? "" : opts_.seccomp_bpf;
  if (insecure) inv.extra_args.push_back("--insecure");
  inv.timeout_seconds = opts_.step_timeout_seconds;
  auto limit = [&](const char* flag, int64_t value) {
    if (value <= 0) return;
    inv.extra_args.push_back(flag);
    inv.extra_args.push_back(std::to_string(value));
  };
  limit("--memory", opts_.step_memory_bytes);
  limit("--pids", opts_.step_pids);
  limit("--disk", opts_.step_disk_bytes);
  limit("--nofile", opts_.step_nofile);
  if (!opts_.cgroup_parent.empty()) {
    inv.extra_args.insert(inv.extra_args.end(),
                          {"--cgroup-parent", opts_.cgroup_parent});
  }
  // The build's --add-host, --ulimit and --shm-size, checked again by the
  // sandbox.
  for (const auto& h : req_.spec.add_hosts()) {
    inv.extra_args.insert(inv.extra_args.end(), {"--add-host", h});
  }
  for (const auto& u : req_.spec.ulimits()) {
    inv.extra_args.insert(inv.extra_args.end(), {"--ulimit", u});
  }
  if (req_.spec.shm_size() > 0) {
    inv.extra_args.insert(inv.extra_args.end(),
                          {"--shm-size", std::to_string(req_.spec.shm_size())});
  }
  inv.extra_args.insert(inv.extra_args.end(), mounts.sandbox_args.begin(),
                        mounts.sandbox_args.end());
  inv.extra_args.insert(inv.extra_args.end(), heredoc_args.begin(),
                        heredoc_args.end());
  auto on_output = [&](OutputStream stream, absl::string_view data) {
    v1::BuildEvent ev;
    ev.set_time_unix_nanos(NowNanos());
    auto* log = ev.mutable_log();
    *log->mutable_step() = ref;
    log->set_stream(stream == OutputStream::kStdout
                        ? v1::BuildEvent::Log::STDOUT
                        : v1::BuildEvent::Log::STDERR);
    log->set_data(std::string(data));
    sink_->Emit(ev);
  };
  ASSIGN_OR_RETURN(SandboxOutcome o,
                   RunSandbox(inv, on_output, [this] { return Cancelled(); }));
  if (o.setup_seconds >= 0 && opts_.observer != nullptr) {
    opts_.observer->SandboxSetup(o.setup_seconds);
  }
  if (o.cancelled) return absl::CancelledError("build cancelled");
  if (!o.setup_error.empty()) {
    return absl::InternalError(
        absl::StrCat("sandbox setup failed: ", o.setup_error));
  }
  std::string shown = absl::StrJoin(run.argv, " ");
  if (!o.limit_error.empty()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("process \"", shown, "\" was stopped: ", o.limit_error));
  }
  if (o.timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("process \"", shown, "\" did not complete within ",
                     opts_.step_timeout_seconds, "s and was killed"));
  }
  if (o.exit_code != 0) {
    return absl::AbortedError(absl::StrCat(
        "process \"", shown,
        "\" did not complete successfully: exit code: ", o.exit_code));
  }
  return absl::OkStatus();
}

}  // namespace build_internal
}  // namespace longshore::worker
