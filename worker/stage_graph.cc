// Stages in dependency order: each needed stage starts as soon as the stages
// it reads from are built, so independent stages run in parallel. Steps are
// numbered in plan order; a stage starts from scratch, another stage or a
// base image pulled once per build.
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "image/image_pull.h"
#include "worker/build_run.h"
#include "worker/image_assembly.h"

namespace longshore::worker {
namespace build_internal {

// Runs every needed stage as soon as the stages it reads from are built, so
// independent stages run in parallel. Returns the first failure.
absl::Status BuildRun::BuildStages() {
  std::map<int, std::set<int>> waits_for;
  std::set<int> needed(plan_.order.begin(), plan_.order.end());
  for (int i : plan_.order) {
    const dockerfile::Stage& st = plan_.stages[i];
    std::set<int>& deps = waits_for[i];
    if (st.base.kind == dockerfile::BaseRef::kStage) deps.insert(st.base.stage);
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
void BuildRun::CountSteps() {
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

v1::StepRef BuildRun::MakeStep(const dockerfile::Stage& st,
                               const dockerfile::Node& n) {
  v1::StepRef ref;
  // BuildKit's labels: no stage in a single-stage build, else the stage's
  // name or "stage-N".
  if (plan_.stages.size() > 1) {
    ref.set_stage(st.name.empty() ? absl::StrCat("stage-", st.index) : st.name);
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

absl::Status BuildRun::BuildStage(int stage_index) {
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
    RETURN_IF_ERROR(BuildStep(st, *node, *step, &r));
    r.config = eval.config();
  }
  absl::MutexLock l(&mu_);
  results_[stage_index] = std::move(r);
  return absl::OkStatus();
}

// Pulls `ref` (once per build) and returns it as a stage's starting point.
absl::StatusOr<StageResult> BuildRun::BaseImage(const std::string& ref_text,
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

}  // namespace build_internal
}  // namespace longshore::worker
