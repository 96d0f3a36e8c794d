#include "client/build_command.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "client/build_metadata.h"
#include "client/context_index.h"
#include "client/context_packer.h"
#include "client/context_sync.h"
#include "client/embedded_farm.h"
#include "client/live_view.h"
#include "client/output_writer.h"
#include "client/platform_index.h"
#include "client/progress.h"
#include "client/scheduler_channel.h"
#include "client/stdin_input.h"
#include "client/web_link.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/platform.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "proto/longshore.grpc.pb.h"

namespace longshore::client {
namespace {

constexpr size_t kChunk = 1 << 20;

// Ctrl-C (SIGINT, or SIGTERM from a CI runner): the first cancels the build
// on the farm and waits for it to end; a second exits at once, saying which
// build is still there. With --detach nothing is cancelled: the client just
// goes. The handler is installed before anything is submitted.
std::atomic<int> g_interrupts{0};
std::atomic<bool> g_detach{false};
// Written once, before g_have_message is set; the handler only reads it.
char g_second_message[512];
std::atomic<bool> g_have_message{false};

void WriteAll(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

void OnInterrupt(int) {
  int n = ++g_interrupts;
  if (n < 2 && !g_detach) return;
  if (g_have_message) {
    WriteAll(2, g_second_message, strlen(g_second_message));
  } else {
    static const char kNothing[] =
        "\ninterrupted: nothing was submitted to the farm\n";
    WriteAll(2, kNothing, sizeof(kNothing) - 1);
  }
  _exit(130);
}

void InstallInterruptHandler(bool detach) {
  g_detach = detach;
  struct sigaction sa = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// What a second Ctrl-C (or any with --detach) prints once `build_id` exists.
void SetInterruptMessage(const std::string& build_id, bool detach) {
  std::string msg =
      detach ? absl::StrCat("\n", build_id, "\n")
             : absl::StrCat(
                   "\ninterrupted again: not waiting for build ", build_id,
                   " to end (see it with: longshore inspect ", build_id, ")\n");
  snprintf(g_second_message, sizeof(g_second_message), "%s", msg.c_str());
  g_have_message = true;
}

void CancelBuild(v1::BuildService::Stub* stub, const std::string& build_id) {
  fprintf(stderr,
          "\ncancelling build %s (Ctrl-C again to stop waiting for it)\n",
          build_id.c_str());
  grpc::ClientContext cancel_cc;
  cancel_cc.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
  v1::CancelRequest creq;
  creq.set_build_id(build_id);
  creq.set_reason("interrupted by the submitter");
  v1::CancelResponse cresp;
  grpc::Status s = stub->Cancel(&cancel_cc, creq, &cresp);
  if (!s.ok()) {
    fprintf(stderr, "ERROR: cancel %s: %s\n", build_id.c_str(),
            DescribeCallError(s).c_str());
  }
}

class SilentPrinter : public ProgressPrinter {
 public:
  void OnEvent(const v1::BuildEvent&) override {}
};

absl::Status FromGrpc(const grpc::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", DescribeCallError(s)));
}

std::string Absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return absl::StrCat(cwd, "/", path);
}

// Where the Dockerfile is on disk and its path inside the context (or just its
// name when it lives outside the context; its bytes travel in the spec anyway).
struct DockerfileLocation {
  std::string path;
  std::string rel;
};

DockerfileLocation LocateDockerfile(const BuildFlags& f) {
  DockerfileLocation loc;
  std::string context = Absolute(f.context);
  while (context.size() > 1 && context.back() == '/') context.pop_back();
  if (f.dockerfile.empty()) {
    loc.path = context + "/Dockerfile";
    loc.rel = "Dockerfile";
    return loc;
  }
  loc.path = Absolute(f.dockerfile);
  if (absl::StartsWith(loc.path, context + "/")) {
    loc.rel = loc.path.substr(context.size() + 1);
  } else {
    loc.rel = loc.path.substr(loc.path.rfind('/') + 1);
  }
  return loc;
}

absl::StatusOr<std::string> Submit(v1::BuildService::Stub* stub,
                                   v1::BuildSpec spec,
                                   const PackedContext& ctx) {
  v1::StatContextRequest stat_req;
  stat_req.set_digest(ctx.digest);
  v1::StatContextResponse stat_resp;
  {
    grpc::ClientContext cc;
    RETURN_IF_ERROR(FromGrpc(stub->StatContext(&cc, stat_req, &stat_resp),
                             "scheduler StatContext"));
  }
  grpc::ClientContext cc;
  v1::SubmitResponse resp;
  auto writer = stub->Submit(&cc, &resp);
  v1::SubmitRequest first;
  *first.mutable_spec() = std::move(spec);
  bool ok = writer->Write(first);
  if (ok && !stat_resp.present() && !ctx.root.empty()) {
    v1::SubmitRequest chunk;
    chunk.mutable_context()->set_data(ctx.root);
    ok = writer->Write(chunk);
  } else if (ok && !stat_resp.present()) {
    UniqueFd fd(open(ctx.tar_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return ErrnoStatus(errno, "open(%s)", ctx.tar_path);
    std::string buf(kChunk, '\0');
    for (;;) {
      ssize_t n = read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(errno, "read(%s)", ctx.tar_path);
      if (n == 0) break;
      if (g_interrupts > 0) {
        // The scheduler queues a build only once its context is whole: an
        // upload cut short leaves nothing on the farm.
        cc.TryCancel();
        (void)writer->Finish();
        return absl::CancelledError(
            "interrupted while uploading the context: nothing was submitted "
            "to the farm");
      }
      v1::SubmitRequest chunk;
      chunk.mutable_context()->set_data(buf.data(), n);
      if (!writer->Write(chunk)) {
        ok = false;
        break;
      }
    }
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  RETURN_IF_ERROR(FromGrpc(s, "submit"));
  if (!ok) return absl::UnavailableError("submit: stream closed early");
  return resp.build_id();
}

// Follows the build's events to its end, reconnecting (with the last sequence
// seen) when the connection drops.
absl::StatusOr<v1::BuildEvent> Follow(v1::BuildService::Stub* stub,
                                      const std::string& build_id,
                                      ProgressPrinter* printer,
                                      v1::BuildEvent* last_error,
                                      bool* cancel_sent) {
  uint64_t after = 0;
  int failures = 0;
  for (;;) {
    grpc::ClientContext cc;
    v1::WatchRequest req;
    req.set_build_id(build_id);
    req.set_after_sequence(after);
    std::atomic<bool> done{false};
    std::thread canceller([&] {
      while (!done) {
        if (g_interrupts > 0 && !*cancel_sent) {
          *cancel_sent = true;
          CancelBuild(stub, build_id);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    auto reader = stub->Watch(&cc, req);
    v1::BuildEvent ev;
    bool finished = false;
    v1::BuildEvent final_event;
    while (reader->Read(&ev)) {
      failures = 0;
      if (ev.sequence() <= after) continue;
      after = ev.sequence();
      printer->OnEvent(ev);
      if (ev.has_error()) *last_error = ev;
      if (ev.has_build_finished()) {
        finished = true;
        final_event = ev;
        break;
      }
    }
    if (finished) cc.TryCancel();
    grpc::Status s = reader->Finish();
    done = true;
    canceller.join();
    if (finished) return final_event;
    if (s.error_code() == grpc::StatusCode::NOT_FOUND ||
        s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return FromGrpc(s, "watch");
    }
    if (++failures > 30) {
      return absl::UnavailableError(
          absl::StrCat("lost the scheduler while following build ", build_id,
                       ": ", s.error_message()));
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min(2000, 100 * failures)));
  }
}

absl::Status FetchOutput(v1::BuildService::Stub* stub,
                         const std::string& build_id, int index,
                         const v1::OutputSpec& out,
                         const std::string& temp_root) {
  const bool to_stdout = out.dest() == "-";
  std::string dest = to_stdout ? "" : Absolute(out.dest());
  std::string parent = to_stdout ? temp_root : dest.substr(0, dest.rfind('/'));
  if (parent.empty()) parent = "/";
  RETURN_IF_ERROR(MakeDirs(parent));
  ASSIGN_OR_RETURN(std::string tmpdir,
                   MakeTempDir(parent, ".longshore-download-"));
  auto cleanup = absl::MakeCleanup([&] { RemoveTree(tmpdir).IgnoreError(); });
  std::string tar_path = tmpdir + "/output.tar";
  {
    UniqueFd fd(
        open(tar_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return ErrnoStatus(errno, "open(%s)", tar_path);
    grpc::ClientContext cc;
    v1::FetchOutputRequest req;
    req.set_build_id(build_id);
    req.set_output_index(index);
    auto reader = stub->FetchOutput(&cc, req);
    v1::OutputChunk chunk;
    while (reader->Read(&chunk)) {
      const std::string& d = chunk.data();
      for (size_t off = 0; off < d.size();) {
        ssize_t w = write(fd.get(), d.data() + off, d.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return ErrnoStatus(errno, "write(%s)", tar_path);
        off += w;
      }
    }
    RETURN_IF_ERROR(
        FromGrpc(reader->Finish(), absl::StrCat("fetch output ", index)));
  }
  if (to_stdout) return CopyToFd(tar_path, STDOUT_FILENO);
  if (out.type() == v1::OutputSpec::LOCAL) {
    return PlaceLocalOutput(tar_path, dest);
  }
  return PlaceOutput(tar_path, dest, out.tar());
}

const char* OutputKind(const v1::OutputSpec& out) {
  switch (out.type()) {
    case v1::OutputSpec::OCI:
      return "OCI image";
    case v1::OutputSpec::DOCKER:
      return "docker image";
    case v1::OutputSpec::LOCAL:
      return "filesystem";
    case v1::OutputSpec::TAR:
      return "filesystem tar";
    default:
      return "output";
  }
}

// The Dockerfile's bytes and the context directory to pack, from disk or
// stdin. `stdin_dir` is set when a temporary directory was made for a context
// read from stdin.
struct BuildInputs {
  std::string dockerfile;
  DockerfileLocation location;
  std::string context_dir;
  std::string stdin_dir;
};

absl::StatusOr<BuildInputs> ReadInputs(const BuildFlags& f,
                                       const std::string& temp_root) {
  BuildInputs in;
  if (f.ContextFromStdin()) {
    ASSIGN_OR_RETURN(StdinContext ctx,
                     ReadStdinContext(STDIN_FILENO, temp_root));
    in.stdin_dir = ctx.dir;
    in.context_dir = ctx.dir;
    if (ctx.dockerfile.has_value()) {
      if (!f.dockerfile.empty()) {
        RemoveTree(ctx.dir).IgnoreError();
        return absl::InvalidArgumentError(absl::StrCat(
            "-f ", f.dockerfile,
            ": stdin holds a Dockerfile, not a context tar, so there is no "
            "context to find it in"));
      }
      in.dockerfile = *std::move(ctx.dockerfile);
      in.location.rel = "Dockerfile";
      return in;
    }
    // Inside the tar: -f names a path relative to its root.
    in.location.rel = f.dockerfile.empty() ? "Dockerfile" : f.dockerfile;
    while (absl::StartsWith(in.location.rel, "./")) {
      in.location.rel.erase(0, 2);
    }
    in.location.path = absl::StrCat(ctx.dir, "/", in.location.rel);
    absl::StatusOr<std::string> df = ReadFile(in.location.path);
    if (!df.ok()) {
      RemoveTree(ctx.dir).IgnoreError();
      return absl::NotFoundError(
          absl::StrCat("the context tar on stdin has no ", in.location.rel,
                       " (name it with -f PATH inside the tar)"));
    }
    in.dockerfile = *std::move(df);
    return in;
  }
  in.context_dir = f.context;
  struct stat st;
  if (stat(f.context.c_str(), &st) != 0) {
    return ErrnoStatus(errno, "build context %s", f.context);
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("build context ", f.context,
                     " is not a directory (use - to read a tar from stdin)"));
  }
  if (f.DockerfileFromStdin()) {
    ASSIGN_OR_RETURN(in.dockerfile, ReadAll(STDIN_FILENO, "stdin (-f -)"));
    in.location.rel = "Dockerfile";
    return in;
  }
  in.location = LocateDockerfile(f);
  absl::StatusOr<std::string> df = ReadFile(in.location.path);
  if (!df.ok()) {
    return absl::Status(
        df.status().code(),
        absl::StrCat("failed to read the Dockerfile: ", df.status().message()));
  }
  in.dockerfile = *std::move(df);
  return in;
}

absl::Status WriteMetadata(const BuildFlags& f, const std::string& build_id,
                           const v1::BuildEvent::BuildFinished* result) {
  BuildMetadata m;
  m.build_id = build_id;
  if (result != nullptr) {
    m.image_digest = result->image_digest();
    m.config_digest = result->config_digest();
  }
  // buildx names the tags as given (the pushed references carry digests).
  m.names = f.tags;
  return WriteFileAtomic(f.metadata_file, MetadataJson(m), 0644);
}

std::unique_ptr<ProgressPrinter> MakePrinter(const BuildFlags& f,
                                             const v1::BuildSpec& spec) {
  ProgressMode mode = f.progress;
  if (mode == ProgressMode::kAuto) {
    mode = isatty(STDERR_FILENO) ? ProgressMode::kTty : ProgressMode::kPlain;
  }
  if (f.quiet) return std::make_unique<SilentPrinter>();
  if (mode != ProgressMode::kTty) return MakeProgressPrinter(mode, stderr);
  LiveViewOptions lopts;
  for (const auto& out : spec.outputs()) {
    if (out.type() == v1::OutputSpec::REGISTRY) {
      lopts.outputs.push_back(
          absl::StrCat("pushing to ", absl::StrJoin(spec.tags(), ", ")));
    } else {
      lopts.outputs.push_back(
          absl::StrCat(OutputKind(out), " to ",
                       out.dest() == "-" ? "stdout" : Absolute(out.dest())));
    }
  }
  return std::make_unique<LiveView>(stderr, std::move(lopts));
}

// The step, line and reason of a build that did not succeed.
void ReportFailure(const std::string& build_id, const v1::BuildSpec& spec,
                   const v1::BuildEvent::BuildFinished& result,
                   const v1::BuildEvent& last_error) {
  if (last_error.has_error()) {
    const auto& e = last_error.error();
    if (e.step().index() > 0) {
      fprintf(stderr, "ERROR: failed to solve: step %d/%d `%s` (%s:%d): %s\n",
              e.step().index(), e.step().total(),
              e.step().instruction().c_str(), spec.dockerfile_path().c_str(),
              e.line() > 0 ? e.line() : e.step().line(), e.message().c_str());
    } else if (e.line() > 0) {
      fprintf(stderr, "ERROR: failed to solve: %s:%d: %s\n",
              spec.dockerfile_path().c_str(), e.line(), e.message().c_str());
    } else {
      fprintf(stderr, "ERROR: failed to solve: %s\n", e.message().c_str());
    }
  } else {
    fprintf(stderr, "ERROR: build %s %s\n", build_id.c_str(),
            result.result() == v1::CANCELLED ? "was cancelled" : "failed");
  }
}

// --platform a,b: one build per platform (each pushed by digest), followed
// one after the other while they all run, then one index under the tags.
int RunPlatformBuilds(const BuildFlags& f, const v1::BuildSpec& spec,
                      const PackedContext& packed,
                      v1::BuildService::Stub* stub) {
  std::vector<std::string> ids;
  auto cancel_all = [&](size_t from) {
    for (size_t j = from; j < ids.size(); ++j) CancelBuild(stub, ids[j]);
  };
  for (const std::string& platform : f.platforms) {
    v1::BuildSpec ps = spec;
    ps.set_platform(platform);
    ps.clear_outputs();
    v1::OutputSpec* out = ps.add_outputs();
    out->set_type(v1::OutputSpec::REGISTRY);
    // The user's registry output attributes (compression...) carry over.
    for (const auto& o : spec.outputs()) {
      for (const auto& kv : o.attrs()) *out->add_attrs() = kv;
    }
    v1::KeyValue* by_digest = out->add_attrs();
    by_digest->set_key("push-by-digest");
    by_digest->set_value("true");
    if (g_interrupts > 0) {
      cancel_all(0);
      fprintf(stderr, "interrupted before every platform was submitted\n");
      return 130;
    }
    auto id = Submit(stub, ps, packed);
    if (!id.ok()) {
      fprintf(stderr, "ERROR: %s: %s\n", platform.c_str(),
              std::string(id.status().message()).c_str());
      cancel_all(0);
      return g_interrupts > 0 ? 130 : 1;
    }
    ids.push_back(*id);
  }
  SetInterruptMessage(absl::StrJoin(ids, ", "), false);
  if (!f.quiet) {
    fprintf(stderr, "submitted one build per platform: %s\n",
            absl::StrJoin(ids, ", ").c_str());
  }
  std::vector<PlatformImage> images;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!f.quiet) {
      fprintf(stderr, "\n[%s] build %s\n", f.platforms[i].c_str(),
              ids[i].c_str());
    }
    auto printer = MakePrinter(f, spec);
    v1::BuildEvent last_error;
    bool cancel_sent = false;
    auto finished =
        Follow(stub, ids[i], printer.get(), &last_error, &cancel_sent);
    printer.reset();
    if (!finished.ok()) {
      fprintf(stderr, "ERROR: %s\n",
              std::string(finished.status().message()).c_str());
      cancel_all(i + 1);
      return 1;
    }
    const auto& result = finished->build_finished();
    if (result.result() != v1::SUCCEEDED) {
      // One platform failing fails the whole image, as with buildx.
      cancel_all(i + 1);
      if (cancel_sent) return 130;
      fprintf(stderr, "[%s] ", f.platforms[i].c_str());
      ReportFailure(ids[i], spec, result, last_error);
      return 1;
    }
    images.push_back({f.platforms[i], result.image_digest()});
  }
  auto index = PushPlatformIndex(f.tags, images);
  if (!index.ok()) {
    fprintf(stderr, "ERROR: %s\n",
            std::string(index.status().message()).c_str());
    return 1;
  }
  if (!f.quiet) {
    fprintf(stderr, "pushed index %s of %s to %s\n", index->c_str(),
            absl::StrJoin(f.platforms, ", ").c_str(),
            absl::StrJoin(f.tags, ", ").c_str());
  }
  if (!f.iidfile.empty()) {
    absl::Status s = WriteFileAtomic(f.iidfile, *index);
    if (!s.ok()) {
      fprintf(stderr, "ERROR: --iidfile: %s\n",
              std::string(s.message()).c_str());
      return 1;
    }
  }
  if (!f.metadata_file.empty()) {
    v1::BuildEvent::BuildFinished combined;
    combined.set_image_digest(*index);
    absl::Status s = WriteMetadata(f, absl::StrJoin(ids, ","), &combined);
    if (!s.ok()) {
      fprintf(stderr, "ERROR: --metadata-file: %s\n",
              std::string(s.message()).c_str());
      return 1;
    }
  }
  if (f.quiet) printf("%s\n", index->c_str());
  return 0;
}

std::string TempRoot() {
  const char* t = getenv("TMPDIR");
  return t != nullptr && *t != '\0' ? t : "/tmp";
}

}  // namespace

int RunBuild(const BuildFlags& flags) {
  BuildFlags f = flags;
  std::unique_ptr<EmbeddedFarm> farm;
  if (f.scheduler.empty() && !PlatformMatches(f.platform, NativePlatform())) {
    fprintf(stderr,
            "ERROR: --platform %s: this machine builds %s only (builds run "
            "natively); pass --scheduler for a farm with a %s worker\n",
            f.platform.c_str(), NativePlatform().c_str(), f.platform.c_str());
    return 2;
  }
  if (f.scheduler.empty() && !f.worker_labels.empty()) {
    fprintf(stderr,
            "ERROR: --worker-label %s=%s: labels choose among a farm's "
            "workers; pass --scheduler (or set LONGSHORE_SCHEDULER)\n",
            f.worker_labels[0].first.c_str(),
            f.worker_labels[0].second.c_str());
    return 2;
  }
  if (f.scheduler.empty() && f.detach) {
    fprintf(stderr,
            "ERROR: --detach: the build would run in this process; pass "
            "--scheduler (or set LONGSHORE_SCHEDULER)\n");
    return 2;
  }
  if (f.scheduler.empty()) {
    // The one-machine default; started before this process has any thread.
    auto started = EmbeddedFarm::Start();
    if (!started.ok()) {
      fprintf(stderr, "ERROR: %s\n",
              std::string(started.status().message()).c_str());
      return 1;
    }
    farm = std::move(*started);
    f.scheduler = farm->address();
  }
  // Before anything reaches the farm: a Ctrl-C from here on is never lost.
  InstallInterruptHandler(f.detach);
  const std::string temp_root = TempRoot();
  auto inputs = ReadInputs(f, temp_root);
  if (!inputs.ok()) {
    fprintf(stderr, "ERROR: %s\n",
            std::string(inputs.status().message()).c_str());
    return 1;
  }
  auto remove_stdin_dir = absl::MakeCleanup([&] {
    if (!inputs->stdin_dir.empty()) RemoveTree(inputs->stdin_dir).IgnoreError();
  });
  PackOptions popts;
  popts.context_dir = inputs->context_dir;
  popts.dockerfile_rel = inputs->location.rel;
  popts.dockerfile_path = inputs->location.path;
  popts.temp_dir = temp_root;
  popts.cancelled = [] { return g_interrupts > 0; };
  // Content-addressed sync by default; LONGSHORE_CONTEXT_UPLOAD=tar sends
  // the whole context as one tar, as before.
  const char* upload = getenv("LONGSHORE_CONTEXT_UPLOAD");
  bool send_tar = upload != nullptr && std::string(upload) == "tar";
  absl::StatusOr<PackedContext> packed;
  if (send_tar) {
    packed = PackContext(popts);
    if (!packed.ok() && g_interrupts > 0) {
      fprintf(stderr, "interrupted: nothing was submitted to the farm\n");
      return 130;
    }
    if (!packed.ok()) {
      fprintf(stderr, "ERROR: packing the build context: %s\n",
              std::string(packed.status().message()).c_str());
      return 1;
    }
    std::move(remove_stdin_dir).Invoke();
  }
  auto remove_tar = absl::MakeCleanup([&] {
    if (packed.ok() && !packed->tar_path.empty()) {
      unlink(packed->tar_path.c_str());
    }
  });

  v1::BuildSpec spec;
  spec.set_dockerfile_path(inputs->location.rel);
  spec.set_dockerfile(inputs->dockerfile);
  for (const auto& t : f.tags) spec.add_tags(t);
  for (const auto& [k, v] : f.build_args) {
    auto* kv = spec.add_build_args();
    kv->set_key(k);
    kv->set_value(v);
  }
  for (const auto& [k, v] : f.labels) {
    auto* kv = spec.add_labels();
    kv->set_key(k);
    kv->set_value(v);
  }
  for (const auto& [id, value] : f.secrets) {
    auto* secret = spec.add_secrets();
    secret->set_id(id);
    secret->set_value(value);
  }
  for (const auto& ref : f.cache_from) spec.add_cache_from(ref);
  for (const auto& ref : f.cache_to) spec.add_cache_to(ref);
  spec.set_target(f.target);
  spec.set_platform(f.platform);
  spec.set_timeout_seconds(f.timeout_seconds);
  for (const auto& [k, v] : f.worker_labels) {
    auto* kv = spec.add_worker_labels();
    kv->set_key(k);
    kv->set_value(v);
  }
  spec.set_no_cache(f.no_cache);
  spec.set_pull(f.pull);
  spec.set_network(f.network);
  for (const auto& e : f.allow) spec.add_entitlements(e);
  for (const auto& h : f.add_hosts) spec.add_add_hosts(h);
  for (const auto& u : f.ulimits) spec.add_ulimits(u);
  spec.set_shm_size(f.shm_size);
  for (const auto& o : f.outputs) *spec.add_outputs() = o;
  if (const char* who = getenv("LONGSHORE_SUBMITTER")) spec.set_submitter(who);

  // The one-machine farm listens on 127.0.0.1 in plaintext; a farm's
  // scheduler with TLS when LONGSHORE_TLS_* say so.
  auto channel =
      DialScheduler(f.scheduler, farm ? TlsFiles() : TlsFilesFromEnvironment());
  if (!channel.ok()) {
    fprintf(stderr, "ERROR: %s\n",
            std::string(channel.status().message()).c_str());
    return 2;
  }
  auto stub = v1::BuildService::NewStub(*channel);
  if (g_interrupts > 0) {
    fprintf(stderr, "interrupted: nothing was submitted to the farm\n");
    return 130;
  }
  if (send_tar) {
    spec.set_context_digest(packed->digest);
    spec.set_context_size(packed->size);
  } else {
    SyncOptions sopts;
    sopts.pack = popts;
    sopts.index_path =
        inputs->stdin_dir.empty()
            ? ContextIndex::PathFor(Absolute(inputs->context_dir))
            : "";  // A context from stdin: no index to keep
    auto synced = SyncContext(stub.get(), sopts);
    if (!synced.ok() && g_interrupts > 0) {
      fprintf(stderr, "interrupted: nothing was submitted to the farm\n");
      return 130;
    }
    if (!synced.ok()) {
      fprintf(stderr, "ERROR: sending the build context: %s\n",
              std::string(synced.status().message()).c_str());
      return 1;
    }
    if (getenv("LONGSHORE_CONTEXT_STATS") != nullptr) {
      fprintf(stderr,
              "context: %lld entries, %lld bytes; hashed %lld bytes; sent "
              "%lld files and chunks, %lld bytes\n",
              static_cast<long long>(synced->entries),
              static_cast<long long>(synced->total_size),
              static_cast<long long>(synced->hashed_bytes),
              static_cast<long long>(synced->files_sent),
              static_cast<long long>(synced->bytes_sent));
    }
    spec.set_context_digest(synced->digest);
    spec.set_context_size(synced->total_size);
    spec.set_context_manifest(true);
    packed = PackedContext();
    packed->digest = synced->digest;
    packed->root = std::move(synced->root);
    std::move(remove_stdin_dir).Invoke();
  }
  if (f.platforms.size() > 1) {
    return RunPlatformBuilds(f, spec, *packed, stub.get());
  }
  auto build_id = Submit(stub.get(), spec, *packed);
  if (!build_id.ok() && g_interrupts > 0) {
    fprintf(stderr, "%s\n", std::string(build_id.status().message()).c_str());
    return 130;
  }
  if (!build_id.ok()) {
    fprintf(stderr, "ERROR: %s\n",
            std::string(build_id.status().message()).c_str());
    return 1;
  }
  SetInterruptMessage(*build_id, f.detach);
  std::move(remove_tar).Invoke();
  if (std::string link = FetchBuildPageUrl(*channel, *build_id);
      !link.empty()) {
    fprintf(stderr, "build %s: %s\n", build_id->c_str(), link.c_str());
  }

  if (f.detach) {
    printf("%s\n", build_id->c_str());
    fflush(stdout);
    if (!f.metadata_file.empty()) {
      absl::Status s = WriteMetadata(f, *build_id, nullptr);
      if (!s.ok()) {
        fprintf(stderr, "ERROR: --metadata-file: %s\n",
                std::string(s.message()).c_str());
        return 1;
      }
    }
    return 0;
  }

  std::unique_ptr<ProgressPrinter> printer = MakePrinter(f, spec);
  v1::BuildEvent last_error;
  bool cancel_sent = false;
  auto finished =
      Follow(stub.get(), *build_id, printer.get(), &last_error, &cancel_sent);
  printer.reset();  // the live view's last frame is gone before more lines
  if (!finished.ok()) {
    fprintf(stderr, "ERROR: %s\n",
            std::string(finished.status().message()).c_str());
    return 1;
  }
  const auto& result = finished->build_finished();
  if (result.result() != v1::SUCCEEDED) {
    if (cancel_sent && result.result() == v1::CANCELLED) {
      fprintf(stderr, "build %s was cancelled\n", build_id->c_str());
      return 130;
    }
    ReportFailure(*build_id, spec, result, last_error);
    return 1;
  }
  for (int i = 0; i < spec.outputs_size(); ++i) {
    const auto& out = spec.outputs(i);
    if (out.type() == v1::OutputSpec::REGISTRY) continue;
    absl::Status s = FetchOutput(stub.get(), *build_id, i, out, temp_root);
    if (!s.ok()) {
      fprintf(stderr, "ERROR: writing output %s: %s\n", out.dest().c_str(),
              std::string(s.message()).c_str());
      return 1;
    }
    if (!f.quiet) {
      fprintf(stderr, "wrote %s to %s\n", OutputKind(out),
              out.dest() == "-" ? "stdout" : Absolute(out.dest()).c_str());
    }
  }
  if (!f.iidfile.empty()) {
    absl::Status s = WriteFileAtomic(f.iidfile, result.image_digest());
    if (!s.ok()) {
      fprintf(stderr, "ERROR: --iidfile: %s\n",
              std::string(s.message()).c_str());
      return 1;
    }
  }
  if (!f.metadata_file.empty()) {
    absl::Status s = WriteMetadata(f, *build_id, &result);
    if (!s.ok()) {
      fprintf(stderr, "ERROR: --metadata-file: %s\n",
              std::string(s.message()).c_str());
      return 1;
    }
  }
  if (f.quiet) printf("%s\n", result.image_digest().c_str());
  return 0;
}

}  // namespace longshore::client
