#include "client/build_command.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdio.h>
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
#include "absl/synchronization/mutex.h"
#include "client/context_index.h"
#include "client/context_packer.h"
#include "client/context_sync.h"
#include "client/embedded_farm.h"
#include "client/output_writer.h"
#include "client/progress.h"
#include "client/scheduler_channel.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/platform.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "proto/longshore.grpc.pb.h"

namespace longshore::client {
namespace {

constexpr size_t kChunk = 1 << 20;
std::atomic<bool> g_interrupted{false};

void OnInterrupt(int) { g_interrupted = true; }

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
                                      v1::BuildEvent* last_error) {
  uint64_t after = 0;
  int failures = 0;
  for (;;) {
    grpc::ClientContext cc;
    v1::WatchRequest req;
    req.set_build_id(build_id);
    req.set_after_sequence(after);
    std::atomic<bool> done{false};
    std::thread canceller([&] {
      bool sent = false;
      while (!done) {
        if (g_interrupted && !sent) {
          sent = true;
          fprintf(stderr, "\ncancelling build %s\n", build_id.c_str());
          grpc::ClientContext cancel_cc;
          v1::CancelRequest creq;
          creq.set_build_id(build_id);
          creq.set_reason("interrupted by the submitter");
          v1::CancelResponse cresp;
          stub->Cancel(&cancel_cc, creq, &cresp);
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
                         const v1::OutputSpec& out) {
  std::string dest = Absolute(out.dest());
  std::string parent = dest.substr(0, dest.rfind('/'));
  RETURN_IF_ERROR(MakeDirs(parent.empty() ? "/" : parent));
  ASSIGN_OR_RETURN(
      std::string tmpdir,
      MakeTempDir(parent.empty() ? "/" : parent, ".longshore-download-"));
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
  return PlaceOutput(tar_path, dest, out.tar());
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
  DockerfileLocation df = LocateDockerfile(f);
  auto dockerfile = ReadFile(df.path);
  if (!dockerfile.ok()) {
    fprintf(stderr, "ERROR: failed to read the Dockerfile: %s\n",
            std::string(dockerfile.status().message()).c_str());
    return 1;
  }
  PackOptions popts;
  popts.context_dir = f.context;
  popts.dockerfile_rel = df.rel;
  popts.dockerfile_path = df.path;
  if (const char* t = getenv("TMPDIR")) popts.temp_dir = t;
  // Content-addressed sync by default; LONGSHORE_CONTEXT_UPLOAD=tar sends
  // the whole context as one tar, as before.
  const char* upload = getenv("LONGSHORE_CONTEXT_UPLOAD");
  bool send_tar = upload != nullptr && std::string(upload) == "tar";
  absl::StatusOr<PackedContext> packed;
  if (send_tar) {
    packed = PackContext(popts);
    if (!packed.ok()) {
      fprintf(stderr, "ERROR: packing the build context: %s\n",
              std::string(packed.status().message()).c_str());
      return 1;
    }
  }
  auto remove_tar = absl::MakeCleanup([&] {
    if (packed.ok() && !packed->tar_path.empty()) {
      unlink(packed->tar_path.c_str());
    }
  });
  v1::BuildSpec spec;
  spec.set_dockerfile_path(df.rel);
  spec.set_dockerfile(*dockerfile);
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
  if (send_tar) {
    spec.set_context_digest(packed->digest);
    spec.set_context_size(packed->size);
  } else {
    SyncOptions sopts;
    sopts.pack = popts;
    sopts.index_path = ContextIndex::PathFor(Absolute(f.context));
    auto synced = SyncContext(stub.get(), sopts);
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
  }
  auto build_id = Submit(stub.get(), spec, *packed);
  if (!build_id.ok()) {
    fprintf(stderr, "ERROR: %s\n",
            std::string(build_id.status().message()).c_str());
    return 1;
  }
  std::move(remove_tar).Invoke();

  struct sigaction sa = {};
  sa.sa_handler = OnInterrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::unique_ptr<ProgressPrinter> printer;
  if (f.quiet) {
    printer = std::make_unique<SilentPrinter>();
  } else {
    printer = MakeProgressPrinter(f.progress, stderr);
  }
  v1::BuildEvent last_error;
  auto finished = Follow(stub.get(), *build_id, printer.get(), &last_error);
  if (!finished.ok()) {
    fprintf(stderr, "ERROR: %s\n",
            std::string(finished.status().message()).c_str());
    return 1;
  }
  const auto& result = finished->build_finished();
  if (result.result() != v1::SUCCEEDED) {
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
      fprintf(stderr, "ERROR: build %s %s\n", build_id->c_str(),
              result.result() == v1::CANCELLED ? "was cancelled" : "failed");
    }
    return 1;
  }
  for (int i = 0; i < spec.outputs_size(); ++i) {
    const auto& out = spec.outputs(i);
    if (out.type() != v1::OutputSpec::OCI &&
        out.type() != v1::OutputSpec::DOCKER) {
      continue;
    }
    absl::Status s = FetchOutput(stub.get(), *build_id, i, out);
    if (!s.ok()) {
      fprintf(stderr, "ERROR: writing output %s: %s\n", out.dest().c_str(),
              std::string(s.message()).c_str());
      return 1;
    }
    if (!f.quiet) {
      fprintf(stderr, "wrote %s image to %s\n",
              out.type() == v1::OutputSpec::OCI ? "OCI" : "docker",
              Absolute(out.dest()).c_str());
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
  if (f.quiet) printf("%s\n", result.image_digest().c_str());
  return 0;
}

}  // namespace longshore::client
