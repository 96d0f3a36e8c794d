#include "worker/build_executor.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/platform.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "dockerfile/build_plan.h"
#include "dockerfile/parser.h"
#include "dockerfile/stage_evaluator.h"
#include "image/image_pull.h"
#include "image/image_push.h"
#include "image/layer_apply.h"
#include "image/layer_commit.h"
#include "image/oci.h"
#include "image/oci_layout.h"
#include "image/reference.h"
#include "nlohmann/json.hpp"
#include "worker/copy_files.h"
#include "worker/image_assembly.h"
#include "worker/in_root.h"
#include "worker/output_compression.h"
#include "worker/overlay_mount.h"
#include "worker/passwd.h"
#include "worker/run_mounts.h"
#include "worker/sandbox_runner.h"
#include "worker/url_fetch.h"

namespace longshore::worker {
namespace {

using Clock = std::chrono::steady_clock;

// A layer of a stage's filesystem, in image order (bottom first).
struct Layer {
  image::Descriptor blob;
  std::string diff_id;
  // The extracted directory (usable as an overlay lower), held from garbage
  // collection while any stage of the build still uses it.
  std::shared_ptr<image::ContentStore::Lease> snapshot;
};

struct StageResult {
  dockerfile::ImageConfig config;
  std::vector<Layer> layers;
  std::vector<image::HistoryEntry> history;
  std::string cache_key;
};

// A failure with the step and line it belongs to.
struct StepFailure {
  absl::Status status;
  v1::StepRef step;
  int line = 0;
};

int64_t NowNanos() { return absl::ToUnixNanos(absl::Now()); }

std::string KeyOf(const std::vector<std::string>& parts) {
  Sha256 h;
  for (const auto& p : parts) {
    h.Update(p);
    h.Update("\0", 1);
  }
  return h.Digest();
}

// "Dockerfile:12: unknown instruction: RUNN" -> 12.
int LineFromMessage(absl::string_view message) {
  static const std::regex kLine(R"(^[^:\s]*:(\d+)(:\d+)?: )");
  std::cmatch m;
  std::string s(message);
  if (std::regex_search(s.c_str(), m, kLine)) {
    int line = 0;
    if (absl::SimpleAtoi(m[1].str(), &line)) return line;
  }
  return 0;
}

class BuildRun {
 public:
  BuildRun(const ExecutorOptions& opts, image::ContentStore* store,
           image::LayerCache* cache, image::RegistryClient* registry,
           const BuildRequest& req, BuildEventSink* sink,
           const std::atomic<bool>* cancel)
      : opts_(opts),
        store_(store),
        cache_(cache),
        registry_(registry),
        req_(req),
        sink_(sink),
        cancel_(cancel) {}

  BuildOutcome Run() {
    BuildOutcome out;
    auto tmp = MakeTempDir(opts_.work_dir + "/tmp",
                           absl::StrCat("build-", req_.build_id, "-"));
    if (!tmp.ok()) {
      out.error = std::string(tmp.status().message());
      return out;
    }
    tmp_ = *tmp;
    auto cleanup = absl::MakeCleanup([&] {
      absl::Status s = RemoveTree(tmp_);
      if (!s.ok()) LS_LOG(WARNING) << "cleanup of " << tmp_ << ": " << s;
    });
    absl::Status s = Build(&out);
    if (!s.ok()) {
      out.state = (cancel_ != nullptr && *cancel_) ? v1::CANCELLED : v1::FAILED;
      out.error = std::string(s.message());
      out.failed_step = failure_.step;
      out.error_line = failure_.line;
      for (const auto& [index, path] : out.output_files) unlink(path.c_str());
      out.output_files.clear();
      v1::BuildEvent ev;
      ev.set_time_unix_nanos(NowNanos());
      auto* e = ev.mutable_error();
      e->set_message(out.error);
      *e->mutable_step() = failure_.step;
      e->set_line(failure_.line);
      sink_->Emit(ev);
      return out;
    }
    out.state = v1::SUCCEEDED;
    return out;
  }

 private:
  // Records the build's failure (the first one wins when stages run in
  // parallel) and stops the other stages.
  absl::Status Fail(absl::Status s, const v1::StepRef& step, int line) {
    absl::MutexLock l(&mu_);
    if (failure_.status.ok()) {
      failure_.status = s;
      failure_.step = step;
      failure_.line = line;
    }
    stop_ = true;
    return s;
  }

  bool Cancelled() const { return stop_ || (cancel_ != nullptr && *cancel_); }

  absl::Status Build(BuildOutcome* out) {
    const v1::BuildSpec& spec = req_.spec;
    std::string filename =
        spec.dockerfile_path().empty() ? "Dockerfile" : spec.dockerfile_path();
    auto parsed = dockerfile::Parse(spec.dockerfile(), filename);
    if (!parsed.ok()) {
      return Fail(parsed.status(), {},
                  LineFromMessage(parsed.status().message()));
    }
    df_ = std::move(*parsed);
    dockerfile::PlanOptions popts;
    for (const auto& kv : spec.build_args()) {
      popts.build_args.emplace_back(kv.key(), kv.value());
      if (kv.key() == "SOURCE_DATE_EPOCH") {
        int64_t v;
        if (absl::SimpleAtoi(kv.value(), &v)) source_date_epoch_ = v;
      }
    }
    popts.target = spec.target();
    // Workers build natively: a build for another platform was sent here by
    // mistake (the scheduler places by platform).
    const std::string native = NativePlatform();
    if (!spec.platform().empty() && !PlatformMatches(spec.platform(), native)) {
      return Fail(absl::FailedPreconditionError(
                      absl::StrCat("--platform ", spec.platform(),
                                   ": this worker builds ", native, " only")),
                  {}, 0);
    }
    popts.build_platform = native;
    popts.target_platform = spec.platform().empty() ? native : spec.platform();
    auto plan = dockerfile::Plan(df_, popts);
    if (!plan.ok()) {
      return Fail(plan.status(), {}, LineFromMessage(plan.status().message()));
    }
    plan_ = std::move(*plan);
    CountSteps();

    RETURN_IF_ERROR(BuildStages());
    StageResult final_stage;
    {
      absl::MutexLock l(&mu_);
      final_stage = results_.at(plan_.target);
    }
    return Export(final_stage, out);
  }

  // Runs every needed stage as soon as the stages it reads from are built, so
  // independent stages run in parallel. Returns the first failure.
  absl::Status BuildStages() {
    std::map<int, std::set<int>> waits_for;
    std::set<int> needed(plan_.order.begin(), plan_.order.end());
    for (int i : plan_.order) {
      const dockerfile::Stage& st = plan_.stages[i];
      std::set<int>& deps = waits_for[i];
      if (st.base.kind == dockerfile::BaseRef::kStage)
        deps.insert(st.base.stage);
      for (int d : st.depends_on) {
        if (needed.count(d)) deps.insert(d);
      }
    }
    std::set<int> started, finished;
    std::map<int, absl::Status> statuses;
    std::vector<std::thread> threads;
    absl::Mutex done_mu;
    absl::CondVar done_cv;
    absl::MutexLock l(&done_mu);
    while (finished.size() < plan_.order.size()) {
      bool stopping = Cancelled();
      if (!stopping) {
        for (int i : plan_.order) {
          if (started.count(i)) continue;
          bool ready = true;
          for (int d : waits_for[i]) ready = ready && finished.count(d) > 0;
          if (!ready) continue;
          started.insert(i);
          threads.emplace_back(
              [this, i, &done_mu, &done_cv, &finished, &statuses] {
                absl::Status s = BuildStage(i);
                absl::MutexLock dl(&done_mu);
                statuses[i] = s;
                finished.insert(i);
                done_cv.SignalAll();
              });
        }
      }
      if (started.size() == finished.size()) break;  // nothing left to wait for
      done_cv.Wait(&done_mu);
    }
    done_mu.Unlock();
    for (auto& t : threads) t.join();
    done_mu.Lock();
    {
      absl::MutexLock fl(&mu_);
      if (!failure_.status.ok()) return failure_.status;
    }
    for (const auto& [i, s] : statuses) {
      if (!s.ok()) return s;
    }
    if (finished.size() < plan_.order.size()) {
      return absl::CancelledError("build cancelled");
    }
    return absl::OkStatus();
  }

  // Numbers the steps in plan order up front, so parallel stages show the
  // same numbers on every run.
  void CountSteps() {
    total_ = 0;
    for (int i : plan_.order) {
      const auto& st = plan_.stages[i];
      if (st.base.kind == dockerfile::BaseRef::kImage) {
        step_numbers_[st.from] = ++total_;
      }
      for (const auto* n : st.instructions) {
        if (n->cmd == "run" || n->cmd == "copy" || n->cmd == "add" ||
            n->cmd == "workdir") {
          step_numbers_[n] = ++total_;
        }
      }
    }
    index_ = total_;
  }

  v1::StepRef MakeStep(const dockerfile::Stage& st, const dockerfile::Node& n) {
    v1::StepRef ref;
    // BuildKit's labels: no stage in a single-stage build, else the stage's
    // name or "stage-N".
    if (plan_.stages.size() > 1) {
      ref.set_stage(st.name.empty() ? absl::StrCat("stage-", st.index)
                                    : st.name);
    }
    auto number = step_numbers_.find(&n);
    if (number != step_numbers_.end()) {
      ref.set_index(number->second);
    } else {
      // A base image's ONBUILD trigger: numbered after the planned steps.
      absl::MutexLock l(&mu_);
      ref.set_index(++index_);
    }
    ref.set_total(total_);
    ref.set_instruction(n.original);
    // As BuildKit, a base image by the name it resolved to: `FROM ${BASE}`
    // with --build-arg BASE=reg/py:3.11 reads `FROM reg/py:3.11`.
    if (&n == st.from && st.base.kind == dockerfile::BaseRef::kImage) {
      ref.set_instruction(absl::StrCat("FROM ", st.base.image));
    }
    ref.set_line(n.start_line);
    return ref;
  }

  void EmitStarted(const v1::StepRef& ref) {
    v1::BuildEvent ev;
    ev.set_time_unix_nanos(NowNanos());
    *ev.mutable_step_started()->mutable_step() = ref;
    sink_->Emit(ev);
  }

  void EmitFinished(const v1::StepRef& ref, Clock::time_point start,
                    const std::string& layer_digest) {
    v1::BuildEvent ev;
    ev.set_time_unix_nanos(NowNanos());
    auto* fin = ev.mutable_step_finished();
    *fin->mutable_step() = ref;
    fin->set_duration_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                             Clock::now() - start)
                             .count());
    fin->set_layer_digest(layer_digest);
    sink_->Emit(ev);
  }

  // A warning for the submitter, shown among the build's output.
  void Warn(const std::string& message) {
    LS_LOG(WARNING) << "build " << req_.build_id << ": " << message;
    v1::BuildEvent ev;
    ev.set_time_unix_nanos(NowNanos());
    ev.mutable_log()->set_stream(v1::BuildEvent::Log::STDERR);
    ev.mutable_log()->set_data(absl::StrCat("WARNING: ", message, "\n"));
    sink_->Emit(ev);
  }

  // Pulls `ref` (once per build) and returns it as a stage's starting point.
  absl::StatusOr<StageResult> BaseImage(const std::string& ref_text,
                                        const std::string& platform) {
    {
      absl::MutexLock l(&mu_);
      auto cached = base_images_.find(ref_text + "|" + platform);
      if (cached != base_images_.end()) return cached->second;
    }
    ASSIGN_OR_RETURN(image::Reference ref, image::ParseReference(ref_text));
    image::PullOptions popts;
    std::vector<std::string> parts = absl::StrSplit(platform, '/');
    if (parts.size() >= 2) {
      popts.platform.os = parts[0];
      popts.platform.architecture = parts[1];
      if (parts.size() >= 3) popts.platform.variant = parts[2];
    }
    ASSIGN_OR_RETURN(image::PulledImage pulled,
                     image::PullImage(*registry_, ref, *store_, popts));
    StageResult r;
    r.config = FromOciConfig(pulled.config);
    r.history = pulled.config.history;
    r.cache_key = KeyOf({"image", pulled.manifest.digest, platform});
    for (size_t i = 0; i < pulled.layers.size(); ++i) {
      Layer layer;
      layer.blob = pulled.layers[i];
      layer.diff_id = pulled.diff_ids[i];
      ASSIGN_OR_RETURN(layer.snapshot, EnsureSnapshot(layer));
      r.layers.push_back(std::move(layer));
    }
    absl::MutexLock l(&mu_);
    for (const auto& layer : pulled.layers) {
      // Pushing to the same registry can mount these instead of uploading.
      blob_sources_.emplace(layer.digest, pulled.ref);
    }
    base_images_[ref_text + "|" + platform] = r;
    return r;
  }

  absl::Status BuildStage(int stage_index) {
    const dockerfile::Stage& st = plan_.stages[stage_index];
    StageResult r;
    switch (st.base.kind) {
      case dockerfile::BaseRef::kScratch:
        r.cache_key = KeyOf({"scratch", st.platform});
        break;
      case dockerfile::BaseRef::kStage: {
        absl::MutexLock l(&mu_);
        r = results_.at(st.base.stage);
        break;
      }
      case dockerfile::BaseRef::kImage: {
        v1::StepRef ref = MakeStep(st, *st.from);
        EmitStarted(ref);
        Clock::time_point start = Clock::now();
        auto base = BaseImage(st.base.image, st.platform);
        if (!base.ok()) {
          return Fail(absl::Status(base.status().code(),
                                   absl::StrCat("FROM ", st.base.image, ": ",
                                                base.status().message())),
                      ref, st.from->start_line);
        }
        r = std::move(*base);
        EmitFinished(ref, start, "");
        break;
      }
    }
    dockerfile::StageEvaluator eval(plan_, stage_index, r.config);
    auto triggers = eval.BaseTriggers();
    if (!triggers.ok()) {
      return Fail(triggers.status(), {}, st.from ? st.from->start_line : 0);
    }
    std::vector<const dockerfile::Node*> nodes;
    for (const auto& t : *triggers) nodes.push_back(&t);
    nodes.insert(nodes.end(), st.instructions.begin(), st.instructions.end());
    for (const dockerfile::Node* node : nodes) {
      if (Cancelled()) return absl::CancelledError("build cancelled");
      auto step = eval.Next(*node);
      if (!step.ok()) {
        return Fail(step.status(), {}, node->start_line);
      }
      RETURN_IF_ERROR(RunStep(st, *node, *step, &r));
      r.config = eval.config();
    }
    absl::MutexLock l(&mu_);
    results_[stage_index] = std::move(r);
    return absl::OkStatus();
  }

  // The date recorded with a cache entry; now for entries that have none.
  std::string CreatedOf(const image::CacheEntry& hit) const {
    auto j = nlohmann::json::parse(hit.config_change, nullptr, false);
    if (j.is_object() && j.contains("created") && j["created"].is_string()) {
      return j["created"].get<std::string>();
    }
    return Created();
  }

  // The latest date in a stage's history ("" when it has none).
  static std::string LastCreated(const StageResult& r) {
    std::string last;
    for (const auto& h : r.history) last = std::max(last, h.created);
    return last;
  }

  std::string Created() const {
    if (source_date_epoch_) return image::FormatRfc3339(*source_date_epoch_);
    return image::FormatRfc3339(absl::ToUnixSeconds(absl::Now()));
  }

  absl::Status RunStep(const dockerfile::Stage& st,
                       const dockerfile::Node& node,
                       const dockerfile::ExpandedStep& step, StageResult* r) {
    image::HistoryEntry hist;
    hist.created_by = step.created_by;
    hist.comment = "buildkit.dockerfile.v0";
    if (step.kind == dockerfile::ExpandedStep::kConfigOnly) {
      // Config-only steps are dated by the step before them, so a rebuild
      // served from the cache gives the same config, and the same digest.
      hist.created = LastCreated(*r);
      r->cache_key = KeyOf({r->cache_key, step.cache_text});
      hist.empty_layer = true;
      r->history.push_back(hist);
      return absl::OkStatus();
    }
    v1::StepRef ref = MakeStep(st, node);
    EmitStarted(ref);
    Clock::time_point start = Clock::now();

    // The key covers the parent, the expanded instruction and everything the
    // step's result depends on.
    std::vector<std::string> parts{r->cache_key, step.cache_text};
    switch (step.kind) {
      case dockerfile::ExpandedStep::kRun:
        parts.push_back("run");
        parts.push_back(absl::StrJoin(step.run.argv, "\x1f"));
        parts.push_back(absl::StrJoin(step.run.env, "\x1f"));
        parts.push_back(step.run.user);
        parts.push_back(step.run.workdir);
        parts.push_back(step.run.network);
        break;
      case dockerfile::ExpandedStep::kCopy: {
        parts.push_back(step.copy.add ? "add" : "copy");
        parts.push_back(step.copy.dest);
        parts.push_back(step.copy.chown);
        parts.push_back(step.copy.chmod);
        auto sum = SourceChecksum(step.copy, *r);
        if (!sum.ok()) return Fail(sum.status(), ref, node.start_line);
        parts.push_back(*sum);
        break;
      }
      case dockerfile::ExpandedStep::kWorkdir:
        parts.push_back("workdir");
        parts.push_back(step.workdir);
        parts.push_back(r->config.user);
        break;
      default:
        break;
    }
    std::string key = KeyOf(parts);

    if (!req_.spec.no_cache()) {
      auto hit = cache_->Lookup(key, *store_);
      if (!hit.ok()) {
        Warn(absl::StrCat("cache lookup for step ", ref.index(),
                          " failed, building it: ", hit.status().message()));
      } else if (hit->has_value()) {
        absl::Status s = UseCached(**hit, r, hist);
        if (s.ok()) {
          r->cache_key = key;
          v1::BuildEvent ev;
          ev.set_time_unix_nanos(NowNanos());
          *ev.mutable_step_cached()->mutable_step() = ref;
          if ((*hit)->layer) {
            ev.mutable_step_cached()->set_layer_digest((*hit)->layer->digest);
          }
          sink_->Emit(ev);
          return absl::OkStatus();
        }
        Warn(absl::StrCat("cache entry for step ", ref.index(),
                          " unusable, building it: ", s.message()));
      }
    }

    std::string step_dir = absl::StrCat(tmp_, "/step-", ref.index());
    RETURN_IF_ERROR(MakeDirs(step_dir + "/upper", 0755));
    RETURN_IF_ERROR(MakeDirs(step_dir + "/work", 0700));
    absl::Status s;
    switch (step.kind) {
      case dockerfile::ExpandedStep::kRun:
        s = ExecRun(step, *r, ref, step_dir);
        break;
      case dockerfile::ExpandedStep::kCopy:
        s = ExecCopy(step.copy, *r, step_dir);
        break;
      case dockerfile::ExpandedStep::kWorkdir:
        s = ExecWorkdir(step.workdir, *r, step_dir);
        break;
      default:
        break;
    }
    if (!s.ok()) return Fail(s, ref, node.start_line);
    if (Cancelled()) return absl::CancelledError("build cancelled");

    auto committed = Commit(step_dir + "/upper");
    if (!committed.ok()) return Fail(committed.status(), ref, node.start_line);
    hist.created = Created();
    image::CacheEntry record;
    record.config_change = nlohmann::json({{"created", hist.created}}).dump();
    std::string layer_digest;
    if (committed->has_value()) {
      const Layer& layer = **committed;
      record.layer = layer.blob;
      record.diff_id = layer.diff_id;
      layer_digest = layer.blob.digest;
      r->layers.push_back(layer);
      hist.empty_layer = false;
    } else {
      hist.empty_layer = true;
    }
    r->history.push_back(hist);
    r->cache_key = key;
    absl::Status cs = cache_->Store(key, record, *store_);
    if (!cs.ok()) Warn(absl::StrCat("cache write: ", cs.message()));
    EmitFinished(ref, start, layer_digest);
    return absl::OkStatus();
  }

  absl::Status UseCached(const image::CacheEntry& hit, StageResult* r,
                         image::HistoryEntry hist) {
    // The step keeps the date it was first built at (recorded with the cache
    // entry): the image is then the same wherever and whenever it is rebuilt.
    hist.created = source_date_epoch_ ? Created() : CreatedOf(hit);
    if (hit.layer) {
      Layer layer;
      layer.blob = *hit.layer;
      layer.diff_id = hit.diff_id;
      ASSIGN_OR_RETURN(layer.snapshot, EnsureSnapshot(layer));
      r->layers.push_back(layer);
      hist.empty_layer = false;
    } else {
      hist.empty_layer = true;
    }
    r->history.push_back(hist);
    return absl::OkStatus();
  }

  // The extracted form of `layer`, extracting its blob when no snapshot exists.
  absl::StatusOr<std::shared_ptr<image::ContentStore::Lease>> EnsureSnapshot(
      const Layer& layer) {
    auto fill = [&](const std::string& dir) -> absl::Status {
      image::ApplyOptions aopts;
      ASSIGN_OR_RETURN(image::AppliedLayer applied,
                       image::ApplyLayer(store_->BlobPath(layer.blob.digest),
                                         layer.blob.media_type, dir, aopts));
      if (applied.diff_id != layer.diff_id) {
        return absl::DataLossError(absl::StrCat("layer ", layer.blob.digest,
                                                " has diffID ", applied.diff_id,
                                                ", expected ", layer.diff_id));
      }
      return absl::OkStatus();
    };
    ASSIGN_OR_RETURN(image::ContentStore::Lease lease,
                     store_->GetOrCreateSnapshot(layer.diff_id, fill));
    return std::make_shared<image::ContentStore::Lease>(std::move(lease));
  }

  // Commits an upper dir to a layer; nullopt when the step changed nothing.
  absl::StatusOr<std::optional<Layer>> Commit(const std::string& upper) {
    ASSIGN_OR_RETURN(bool empty, IsEmptyDir(upper));
    if (empty) return std::optional<Layer>();
    image::CommitOptions copts;
    copts.source_date_epoch = source_date_epoch_;
    ASSIGN_OR_RETURN(std::string blob_tmp, store_->NewTempPath("layer"));
    auto committed = image::CommitLayer(upper, blob_tmp, copts);
    if (!committed.ok()) {
      unlink(blob_tmp.c_str());
      return committed.status();
    }
    RETURN_IF_ERROR(store_->CommitTemp(blob_tmp, committed->digest));
    Layer layer;
    layer.blob = committed->descriptor();
    layer.diff_id = committed->diff_id;
    // The upper dir is already the layer in overlay form: it becomes the
    // snapshot as it is, without extracting the blob again.
    ASSIGN_OR_RETURN(image::ContentStore::Lease lease,
                     store_->CommitSnapshot(committed->diff_id, upper));
    layer.snapshot =
        std::make_shared<image::ContentStore::Lease>(std::move(lease));
    return std::optional<Layer>(layer);
  }

  static absl::StatusOr<bool> IsEmptyDir(const std::string& dir) {
    UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return ErrnoStatus(errno, "open(%s)", dir);
    DIR* d = fdopendir(fd.release());
    if (d == nullptr) return ErrnoStatus(errno, "fdopendir(%s)", dir);
    bool empty = true;
    while (struct dirent* e = readdir(d)) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
        empty = false;
        break;
      }
    }
    closedir(d);
    return empty;
  }

  std::vector<std::string> Lowers(const StageResult& r) const {
    std::vector<std::string> lowers;
    for (auto it = r.layers.rbegin(); it != r.layers.rend(); ++it) {
      lowers.push_back(it->snapshot->path());
    }
    return lowers;
  }

  std::string EmptyDir() {
    std::string d = tmp_ + "/empty";
    MakeDirs(d, 0755).IgnoreError();
    return d;
  }

  absl::Status ExecRun(const dockerfile::ExpandedStep& step,
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
      ASSIGN_OR_RETURN(
          OverlayMount m,
          OverlayMount::Mount(Lowers(stage), "", "", dir, EmptyDir()));
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
    std::string network =
        run.network.empty() ? opts_.default_network : run.network;
    if (network == "host" && !opts_.allow_host_network) {
      return absl::PermissionDeniedError(
          "RUN --network=host is not allowed by this worker's policy");
    }
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
    inv.hostname = Sha256Digest(absl::StrCat(req_.build_id, "/", ref.index()))
                       .substr(7, 12);
    inv.cwd = run.workdir.empty() ? "/" : run.workdir;
    inv.user = run.user;
    inv.network = network;
    inv.env = run.env;
    inv.argv = run.argv;
    inv.seccomp_bpf = opts_.seccomp_bpf;
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
    ASSIGN_OR_RETURN(SandboxOutcome o, RunSandbox(inv, on_output, [this] {
                       return Cancelled();
                     }));
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

  absl::StatusOr<std::pair<uid_t, gid_t>> ResolveChown(const std::string& chown,
                                                       int root_fd) {
    if (chown.empty()) return std::make_pair(uid_t{0}, gid_t{0});
    // Docker: a user without a group uses the user's number as the group.
    ASSIGN_OR_RETURN(sandbox::ResolvedUser u,
                     ResolveUserInRoot(root_fd, chown));
    bool group_given = chown.find(':') != std::string::npos;
    return std::make_pair(u.uid, group_given ? u.gid : u.uid);
  }

  // Source root for a COPY: the context, or a read-only view of another stage.
  struct SourceRoot {
    UniqueFd fd;
    std::optional<OverlayMount> mount;
  };

  absl::StatusOr<SourceRoot> OpenSource(const dockerfile::CopyStep& c,
                                        const std::string& mount_dir) {
    SourceRoot src;
    if (c.from.empty()) {
      src.fd.reset(
          open(req_.context_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!src.fd) return ErrnoStatus(errno, "open(%s)", req_.context_dir);
      return src;
    }
    const StageResult* from = nullptr;
    StageResult pulled;
    if (c.from_stage < 0) {
      auto base = BaseImage(c.from, plan_.options.target_platform);
      if (!base.ok()) {
        return absl::Status(
            base.status().code(),
            absl::StrCat("COPY --from=", c.from, ": no stage or image named ",
                         c.from, ": ", base.status().message()));
      }
      pulled = std::move(*base);
      from = &pulled;
    } else {
      absl::MutexLock l(&mu_);
      auto it = results_.find(c.from_stage);
      if (it == results_.end()) {
        return absl::FailedPreconditionError(
            absl::StrCat("COPY --from=", c.from, ": stage was not built"));
      }
      pulled = it->second;
      from = &pulled;
    }
    RETURN_IF_ERROR(MakeDirs(mount_dir, 0755));
    ASSIGN_OR_RETURN(
        OverlayMount m,
        OverlayMount::Mount(Lowers(*from), "", "", mount_dir, EmptyDir()));
    src.mount.emplace(std::move(m));
    src.fd.reset(open(mount_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!src.fd) return ErrnoStatus(errno, "open(%s)", mount_dir);
    return src;
  }

  // ADD <url>: downloaded once per build, from the worker's network.
  absl::StatusOr<FetchedUrl> Fetch(const std::string& url) {
    {
      absl::MutexLock l(&mu_);
      auto it = fetched_.find(url);
      if (it != fetched_.end()) return it->second;
    }
    absl::StatusOr<FetchedUrl> f = FetchUrl(url, tmp_);
    if (!f.ok()) {
      return absl::Status(f.status().code(),
                          absl::StrCat("ADD failed: ", f.status().message()));
    }
    absl::MutexLock l(&mu_);
    return fetched_.emplace(url, *f).first->second;
  }

  // The sources of a COPY/ADD read from the context or a stage (not URLs).
  // Git sources are refused.
  absl::StatusOr<std::vector<std::string>> LocalSources(
      const dockerfile::CopyStep& c) {
    std::vector<std::string> local;
    for (const auto& src : c.sources) {
      const std::string path = src.substr(0, src.find('#'));
      if (c.add && (absl::StartsWith(src, "git@") ||
                    (IsUrlSource(src) && absl::EndsWith(path, ".git")))) {
        return absl::UnimplementedError(absl::StrCat(
            "ADD ", src,
            ": git sources are not supported yet; clone in a RUN step or "
            "add an archive of the repository"));
      }
      if (c.add && IsUrlSource(src)) continue;
      if (!c.checksum.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "ADD --checksum applies to http(s) sources only, not ", src));
      }
      local.push_back(src);
    }
    return local;
  }

  absl::StatusOr<std::string> SourceChecksum(const dockerfile::CopyStep& c,
                                             const StageResult& r) {
    ASSIGN_OR_RETURN(std::vector<std::string> local, LocalSources(c));
    Sha256 h;
    for (const auto& f : c.inline_files) {
      h.Update(f.name);
      h.Update("\0", 1);
      h.Update(f.content);
    }
    // A URL counts by what it served (downloaded on every build, as Docker
    // does), with the name and date the file will get.
    for (const auto& src : c.sources) {
      if (!c.add || !IsUrlSource(src)) continue;
      ASSIGN_OR_RETURN(FetchedUrl f, Fetch(src));
      if (!c.checksum.empty() && c.checksum != f.digest) {
        return absl::InvalidArgumentError(
            absl::StrCat("ADD --checksum=", c.checksum, ": ", src,
                         " served content with digest ", f.digest));
      }
      h.Update(absl::StrCat("url\n", src, "\n", f.digest, "\n", f.file_name,
                            "\n", f.last_modified.value_or(-1), "\n"));
    }
    if (local.empty()) return h.Digest();
    std::string mount_dir = absl::StrCat(tmp_, "/sum-", ++mounts_);
    ASSIGN_OR_RETURN(SourceRoot src, OpenSource(c, mount_dir));
    auto sum = ChecksumSources(src.fd.get(), local);
    if (!sum.ok()) {
      return absl::Status(sum.status().code(),
                          absl::StrCat(c.add ? "ADD" : "COPY",
                                       " failed: ", sum.status().message()));
    }
    h.Update(*sum);
    return h.Digest();
  }

  // The step's root as the worker sees it: an overlay of the stage's layers
  // with the step's fresh upper dir, mounted at <step>/merged.
  struct StepRoot {
    OverlayMount mount;
    UniqueFd fd;
    absl::Status Unmount() {
      fd.reset();
      return mount.Unmount();
    }
  };

  absl::StatusOr<StepRoot> MountStepRoot(const StageResult& r,
                                         const std::string& step_dir) {
    std::string merged = step_dir + "/merged";
    RETURN_IF_ERROR(MakeDirs(merged, 0755));
    ASSIGN_OR_RETURN(
        OverlayMount m,
        OverlayMount::Mount(Lowers(r), step_dir + "/upper", step_dir + "/work",
                            merged, EmptyDir()));
    UniqueFd fd(open(merged.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return ErrnoStatus(errno, "open(%s)", merged);
    return StepRoot{std::move(m), std::move(fd)};
  }

  // Writes a downloaded ADD source into the step's root: at `dest`, or inside
  // it under the URL's file name when it ends in '/' or is a directory. Mode
  // 0600 unless --chmod (Docker's rule for URLs), the --chown owner, the
  // server's Last-Modified as mtime; archives are not unpacked.
  absl::Status PlaceDownload(const FetchedUrl& f, const std::string& url,
                             const std::string& dest, bool into_dir, int dst_fd,
                             std::pair<uid_t, gid_t> owner,
                             std::optional<mode_t> mode) {
    std::string path = dest;
    if (!into_dir) {
      absl::StatusOr<UniqueFd> existing =
          OpenInRoot(dst_fd, dest, O_PATH | O_DIRECTORY);
      into_dir = existing.ok();
    }
    if (into_dir) {
      if (f.file_name.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("ADD ", url,
                         ": the URL names no file; give a destination file "
                         "name instead of ",
                         dest));
      }
      path = absl::StrCat(dest, dest.back() == '/' ? "" : "/", f.file_name);
    }
    auto [parent, name] = SplitParent(path);
    ASSIGN_OR_RETURN(
        UniqueFd ignored,
        MakeDirsInRoot(dst_fd, parent, 0755, owner.first, owner.second));
    ASSIGN_OR_RETURN(
        UniqueFd out,
        OpenInRoot(dst_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW,
                   0600));
    UniqueFd in(open(f.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return ErrnoStatus(errno, "open(%s)", f.path);
    RETURN_IF_ERROR(CopyFdContents(in.get(), out.get(), url, path));
    if (fchown(out.get(), owner.first, owner.second) != 0) {
      return ErrnoStatus(errno, "chown(%s)", path);
    }
    if (fchmod(out.get(), mode ? *mode : 0600) != 0) {
      return ErrnoStatus(errno, "chmod(%s)", path);
    }
    if (f.last_modified) {
      struct timespec times[2] = {{*f.last_modified, 0}, {*f.last_modified, 0}};
      if (futimens(out.get(), times) != 0) {
        return ErrnoStatus(errno, "utimes(%s)", path);
      }
    }
    return absl::OkStatus();
  }

  absl::Status ExecCopy(const dockerfile::CopyStep& c, const StageResult& r,
                        const std::string& step_dir) {
    ASSIGN_OR_RETURN(StepRoot dst, MountStepRoot(r, step_dir));
    const UniqueFd& dst_fd = dst.fd;
    ASSIGN_OR_RETURN(auto owner, ResolveChown(c.chown, dst_fd.get()));
    std::optional<mode_t> mode;
    if (!c.chmod.empty()) {
      unsigned long m = 0;
      char* end = nullptr;
      m = strtoul(c.chmod.c_str(), &end, 8);
      if (end == nullptr || *end != '\0' || m > 07777) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--chmod=", c.chmod, ": expected an octal mode such as 0755"));
      }
      mode = static_cast<mode_t>(m);
    }
    for (const auto& f : c.inline_files) {
      std::string path = c.dest;
      if (path.empty() || path.back() == '/') path += f.name;
      auto [parent, name] = SplitParent(path);
      ASSIGN_OR_RETURN(UniqueFd ignored,
                       MakeDirsInRoot(dst_fd.get(), parent, 0755, owner.first,
                                      owner.second));
      ASSIGN_OR_RETURN(
          UniqueFd fd,
          OpenInRoot(dst_fd.get(), path,
                     O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644));
      if (write(fd.get(), f.content.data(), f.content.size()) !=
          static_cast<ssize_t>(f.content.size())) {
        return ErrnoStatus(errno, "write(%s)", path);
      }
      if (fchown(fd.get(), owner.first, owner.second) != 0) {
        return ErrnoStatus(errno, "chown(%s)", path);
      }
      if (fchmod(fd.get(), mode ? *mode : 0644) != 0) {
        return ErrnoStatus(errno, "chmod(%s)", path);
      }
    }
    ASSIGN_OR_RETURN(std::vector<std::string> local, LocalSources(c));
    const bool into_dir = !c.dest.empty() && c.dest.back() == '/';
    // (CopyFiles applies the same rule to local sources.)
    if (local.size() < c.sources.size() && c.sources.size() > 1 && !into_dir) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.add ? "ADD" : "COPY",
                       " with more than one source needs a "
                       "destination ending in '/': ",
                       c.dest));
    }
    for (const auto& url : c.sources) {
      if (!c.add || !IsUrlSource(url)) continue;
      ASSIGN_OR_RETURN(FetchedUrl f, Fetch(url));
      RETURN_IF_ERROR(
          PlaceDownload(f, url, c.dest, into_dir, dst_fd.get(), owner, mode));
    }
    if (!local.empty()) {
      ASSIGN_OR_RETURN(SourceRoot src, OpenSource(c, step_dir + "/from"));
      CopyOptions o;
      o.src_root_fd = src.fd.get();
      o.sources = local;
      o.dest = c.dest;
      o.dst_root_fd = dst_fd.get();
      o.uid = owner.first;
      o.gid = owner.second;
      o.mode = mode;
      o.add = c.add && c.unpack;
      o.chown_given = !c.chown.empty();
      o.instruction = c.add ? "ADD" : "COPY";
      RETURN_IF_ERROR(CopyFiles(o));
    }
    return dst.Unmount();
  }

  absl::Status ExecWorkdir(const std::string& path, const StageResult& r,
                           const std::string& step_dir) {
    ASSIGN_OR_RETURN(StepRoot dst, MountStepRoot(r, step_dir));
    const UniqueFd& root = dst.fd;
    uid_t uid = 0;
    gid_t gid = 0;
    if (!r.config.user.empty()) {
      auto u = ResolveUserInRoot(root.get(), r.config.user);
      if (u.ok()) {
        uid = u->uid;
        gid = u->gid;
      }
    }
    auto dir = MakeDirsInRoot(root.get(), path, 0755, uid, gid);
    if (!dir.ok()) {
      return absl::Status(
          dir.status().code(),
          absl::StrCat("WORKDIR ", path, ": ", dir.status().message()));
    }
    dir->reset();
    return dst.Unmount();
  }

  absl::Status Export(const StageResult& final_stage, BuildOutcome* out) {
    ImageInputs in;
    in.config = final_stage.config;
    for (const auto& l : final_stage.layers) {
      in.layers.push_back(l.blob);
      in.diff_ids.push_back(l.diff_id);
    }
    in.history = final_stage.history;
    // The image is as old as its newest step, so a rebuild served entirely
    // from the cache has the same config and digest (as BuildKit's does).
    in.created = source_date_epoch_ ? Created() : LastCreated(final_stage);
    for (const auto& kv : req_.spec.labels()) in.labels[kv.key()] = kv.value();
    // The config names the platform the image was built for.
    std::vector<std::string> platform =
        absl::StrSplit(plan_.stages[plan_.target].platform, '/');
    if (platform.size() >= 2) {
      in.os = platform[0];
      in.architecture = platform[1];
      in.variant = platform.size() > 2 ? platform[2] : "";
    }
    ASSIGN_OR_RETURN(image::Descriptor manifest, StoreImage(store_, in));
    out->image_digest = manifest.digest;
    std::vector<std::string> tags(req_.spec.tags().begin(),
                                  req_.spec.tags().end());
    std::vector<std::string> pushed_refs;
    const image::Descriptor built = manifest;
    for (int i = 0; i < req_.spec.outputs_size(); ++i) {
      const v1::OutputSpec& o = req_.spec.outputs(i);
      // Each output may want its layers in another compression.
      ASSIGN_OR_RETURN(OutputCompression oc, ParseOutputCompression(o));
      ASSIGN_OR_RETURN(manifest, ConvertImageLayers(*store_, built, oc));
      if (i == 0) out->image_digest = manifest.digest;
      RETURN_IF_ERROR(MakeDirs(opts_.work_dir + "/outputs", 0700));
      std::string path =
          absl::StrCat(opts_.work_dir, "/outputs/", req_.build_id, "-",
                       req_.attempt, "-", i, ".tar");
      switch (o.type()) {
        case v1::OutputSpec::OCI: {
          RETURN_IF_ERROR(image::WriteOciLayoutTarFile(
              *store_, image::ImageExport{manifest, tags}, path));
          out->output_files.emplace_back(i, path);
          break;
        }
        case v1::OutputSpec::DOCKER: {
          RETURN_IF_ERROR(image::WriteDockerArchiveFile(
              *store_, image::ImageExport{manifest, tags}, path));
          out->output_files.emplace_back(i, path);
          break;
        }
        case v1::OutputSpec::REGISTRY: {
          if (tags.empty()) {
            return absl::InvalidArgumentError(
                "type=registry: at least one -t NAME:TAG is required to push");
          }
          std::vector<image::Reference> refs;
          for (const auto& t : tags) {
            ASSIGN_OR_RETURN(image::Reference ref, image::ParseReference(t));
            refs.push_back(std::move(ref));
          }
          image::PushOptions popts;
          {
            absl::MutexLock l(&mu_);
            popts.blob_sources = blob_sources_;
          }
          auto pushed =
              image::PushImage(*registry_, *store_, manifest, refs, popts);
          if (!pushed.ok()) {
            return absl::Status(pushed.status().code(),
                                absl::StrCat("pushing ", tags.front(), ": ",
                                             pushed.status().message()));
          }
          pushed_refs.insert(pushed_refs.end(), pushed->pushed.begin(),
                             pushed->pushed.end());
          break;
        }
        default:
          return absl::InvalidArgumentError(
              absl::StrCat("output ", i, ": unknown type"));
      }
    }
    out->references = pushed_refs.empty() ? tags : pushed_refs;
    return absl::OkStatus();
  }

  const ExecutorOptions& opts_;
  image::ContentStore* store_;
  image::LayerCache* cache_;
  image::RegistryClient* registry_;
  const BuildRequest& req_;
  BuildEventSink* sink_;
  const std::atomic<bool>* cancel_;

  std::string tmp_;
  dockerfile::ParsedDockerfile df_;
  dockerfile::BuildPlan plan_;
  std::map<int, StageResult> results_ ABSL_GUARDED_BY(mu_);
  // by "ref|platform"
  std::map<std::string, StageResult> base_images_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, image::Reference> blob_sources_ ABSL_GUARDED_BY(mu_);
  // ADD <url> downloads of this build, by URL.
  std::map<std::string, FetchedUrl> fetched_ ABSL_GUARDED_BY(mu_);
  std::optional<int64_t> source_date_epoch_;
  int total_ = 0;
  // Guards what parallel stages share.
  absl::Mutex mu_;
  std::map<const dockerfile::Node*, int> step_numbers_;
  int index_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int> mounts_{0};
  std::atomic<bool> stop_{false};
  StepFailure failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

BuildOutcome BuildExecutor::Execute(const BuildRequest& req,
                                    BuildEventSink* sink,
                                    const std::atomic<bool>* cancel) {
  // --cache-from / --cache-to: this build's registry caches, tiered over the
  // worker's own (local, then the farm's --cache-repo).
  std::vector<std::unique_ptr<image::LayerCache>> owned;
  image::LayerCache* cache = cache_;
  std::vector<image::TieredLayerCache*> tiers{cache_};
  std::set<std::string> refs(req.spec.cache_from().begin(),
                             req.spec.cache_from().end());
  refs.insert(req.spec.cache_to().begin(), req.spec.cache_to().end());
  for (const std::string& text : refs) {
    auto ref = image::ParseReference(text);
    if (!ref.ok()) {
      LS_LOG(WARNING) << "build " << req.build_id << ": cache " << text << ": "
                      << ref.status();
      continue;
    }
    image::TieredLayerCache::Options topts;
    topts.read_remote = std::count(req.spec.cache_from().begin(),
                                   req.spec.cache_from().end(), text) > 0;
    topts.write_remote = std::count(req.spec.cache_to().begin(),
                                    req.spec.cache_to().end(), text) > 0;
    owned.push_back(
        std::make_unique<image::RegistryLayerCache>(registry_, *ref));
    auto tier = std::make_unique<image::TieredLayerCache>(
        cache, owned.back().get(), topts);
    tiers.push_back(tier.get());
    cache = tier.get();
    owned.push_back(std::move(tier));
  }
  BuildOutcome outcome;
  {
    BuildRun run(opts_, store_, cache, registry_, req, sink, cancel);
    outcome = run.Run();
  }
  // Cache writes run beside the build; they finish here, before the build
  // reports success, so no cache entry points at a blob that is not there.
  // Their errors cost only future hits: they come back as warnings below.
  cache->Flush().IgnoreError();
  // Cache problems are warnings for the submitter, never failures.
  for (image::TieredLayerCache* tier : tiers) {
    for (const std::string& w : tier->TakeWarnings()) {
      v1::BuildEvent ev;
      ev.set_time_unix_nanos(NowNanos());
      ev.mutable_log()->set_stream(v1::BuildEvent::Log::STDERR);
      ev.mutable_log()->set_data(absl::StrCat("WARNING: ", w, "\n"));
      sink->Emit(ev);
    }
  }
  // The build's leases are gone; what other builds use stays leased.
  if (opts_.store_budget_bytes > 0) {
    auto gc = store_->GarbageCollect(opts_.store_budget_bytes);
    if (!gc.ok()) {
      LS_LOG(WARNING) << "garbage collection: " << gc.status();
    } else if (gc->blobs_removed + gc->snapshots_removed > 0) {
      LS_LOG(INFO) << "garbage collection freed " << gc->bytes_freed
                   << " bytes (" << gc->blobs_removed << " blobs, "
                   << gc->snapshots_removed << " snapshots); "
                   << gc->bytes_remaining << " bytes remain";
    }
  }
  return outcome;
}

}  // namespace longshore::worker
