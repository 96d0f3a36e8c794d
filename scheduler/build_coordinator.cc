#include "scheduler/build_coordinator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "dockerfile/affinity_keys.h"

namespace longshore::scheduler {
namespace {

using longshore::v1::BuildEvent;
using longshore::v1::BuildInfo;
using longshore::v1::BuildResult;
using longshore::v1::BuildSpec;
using longshore::v1::BuildState;
using longshore::v1::SchedulerMessage;
using longshore::v1::WorkerEvent;
using longshore::v1::WorkerInfo;
using longshore::v1::WorkerMessage;

// Drops the Dockerfile's bytes and their allocation (clear() keeps the
// capacity, which for 100k queued builds is most of the scheduler's memory).
void ReleaseDockerfile(BuildSpec* spec) {
  std::string().swap(*spec->mutable_dockerfile());
}

std::vector<uint64_t> HashedAffinity(const BuildSpec& spec) {
  std::vector<uint64_t> out;
  for (const std::string& key : dockerfile::AffinityKeys(
           spec.dockerfile(), spec.target(), spec.platform())) {
    out.push_back(AffinityHash(key));
  }
  return out;
}

bool IsTerminal(BuildState state) {
  return state == longshore::v1::SUCCEEDED || state == longshore::v1::FAILED ||
         state == longshore::v1::CANCELLED;
}

QueuedBuild ToQueued(const BuildRecord& r) {
  QueuedBuild q{r.id, r.spec.submitter(), r.order, r.queued_ns,
                r.spec.platform()};
  q.affinity = r.affinity;
  for (const auto& kv : r.spec.worker_labels()) {
    q.labels.push_back(absl::StrCat(kv.key(), "=", kv.value()));
  }
  std::sort(q.labels.begin(), q.labels.end());
  q.labels.erase(std::unique(q.labels.begin(), q.labels.end()), q.labels.end());
  return q;
}

}  // namespace

BuildCoordinator::BuildCoordinator(const CoordinatorOptions& options,
                                   BuildJournal* journal, EventLog* events,
                                   BlobStore* blobs, SchedulerMetrics* metrics)
    : options_(options),
      journal_(journal),
      events_(events),
      blobs_(blobs),
      metrics_(metrics),
      id_random_(std::random_device{}()) {}

absl::Status BuildCoordinator::Recover() {
  absl::MutexLock lock(&mu_);
  BuildJournal::Batch batch(journal_);
  ASSIGN_OR_RETURN(std::vector<BuildRecord> active, journal_->ListActive());
  int requeued = 0, queued = 0, lost_secrets = 0;
  std::vector<BuildRecord> followers;
  for (BuildRecord& r : active) {
    r.affinity = HashedAffinity(r.spec);
    ReleaseDockerfile(&r.spec);
    if (!r.leader_id.empty()) {
      followers.push_back(std::move(r));
      continue;
    }
    RecoverSecretsLocked(r);
    if (r.state == longshore::v1::QUEUED) {
      if (std::string lost = LostSecretLocked(r); !lost.empty()) {
        r.state = longshore::v1::FAILED;
        r.error = lost;
        r.finished_ns = absl::ToUnixNanos(Now());
        LS_LOG(WARNING) << "build " << r.id << " fails: " << lost;
        active_[r.id] = r;
        FinishLocked(std::move(r));
        ++lost_secrets;
        continue;
      }
      queue_.Push(ToQueued(r));
      active_[r.id] = std::move(r);
      ++queued;
      continue;
    }
    // RUNNING when the scheduler stopped: the lease died with it.
    // RUNNING when the scheduler stopped: its worker may still be running it
    // and come back to report it (ReattachLocked); if not, it is queued again
    // after the grace period.
    std::string id = r.id;
    std::string worker = r.worker_id;
    int attempt = r.attempt;
    CountRunningLocked(r, +1);
    active_[id] = std::move(r);
    OrphanLocked(id, worker, attempt,
                 absl::StrCat("the scheduler restarted while worker ", worker,
                              " held the lease"));
    ++requeued;
  }
  // Merged submissions follow their leader again, or end as it did.
  for (BuildRecord& f : followers) {
    const std::string id = f.id;
    const std::string leader = f.leader_id;
    active_[id] = std::move(f);
    if (active_.contains(leader)) {
      merges_.AddFollower(leader, id);
      continue;
    }
    absl::StatusOr<BuildRecord> ended = journal_->Get(leader);
    BuildRecord done = active_[id];
    if (ended.ok()) {
      done.state = ended->state;
      done.error = ended->error;
      done.image_digest = ended->image_digest;
      done.result = ended->result;
      done.attempt = ended->attempt;
    } else {
      done.state = longshore::v1::FAILED;
      done.error = absl::StrCat("the build it shared, ", leader,
                                ", is gone: ", ended.status().message());
    }
    done.finished_ns = absl::ToUnixNanos(Now());
    FinishLocked(std::move(done));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> drained,
                   journal_->DrainedWorkers());
  drained_.insert(drained.begin(), drained.end());
  LS_LOG(INFO) << "recovered " << queued << " queued builds and " << requeued
               << " running builds awaiting their workers (for "
               << absl::FormatDuration(options_.reattach_grace) << "); "
               << drained_.size() << " drained workers; " << lost_secrets
               << " builds failed for secrets lost in the restart";
  UpdateGaugesLocked();
  return absl::OkStatus();
}

void BuildCoordinator::RecoverSecretsLocked(const BuildRecord& r) {
  if (options_.sealer == nullptr || r.spec.secrets_size() == 0) return;
  std::vector<longshore::v1::Secret> opened;
  for (const longshore::v1::Secret& kept : r.spec.secrets()) {
    if (kept.sealed().empty()) return;  // Journaled before the key was set.
    absl::StatusOr<std::string> value =
        options_.sealer->Open(r.id, kept.id(), kept.sealed());
    if (!value.ok()) {
      LS_LOG(WARNING) << "build " << r.id << ": " << value.status();
      return;
    }
    longshore::v1::Secret secret;
    secret.set_id(kept.id());
    secret.set_value(std::move(*value));
    opened.push_back(std::move(secret));
  }
  secrets_[r.id] = std::move(opened);
}

std::string BuildCoordinator::LostSecretLocked(const BuildRecord& r) {
  auto held = secrets_.find(r.id);
  for (const longshore::v1::Secret& kept : r.spec.secrets()) {
    bool found = false;
    if (held != secrets_.end()) {
      for (const auto& s : held->second) found = found || s.id() == kept.id();
    }
    if (found) continue;
    return absl::StrCat(
        "secret \"", kept.id(),
        "\" was lost when the scheduler restarted before the build ran: ",
        options_.sealer == nullptr
            ? "secrets are kept only in memory unless the scheduler has "
              "--secrets-key-file"
            : "its sealed copy did not open with the scheduler's "
              "--secrets-key-file (see the scheduler's log)",
        "; the build never ran without it. Resubmit the build");
  }
  return "";
}

std::string BuildCoordinator::NewBuildIdLocked() {
  // 80 random bits in lower-case hex: unique enough, safe as a file name.
  uint64_t hi = id_random_();
  uint64_t lo = id_random_();
  return absl::StrFormat("%04x%016x", hi & 0xffff, lo);
}

// --- Builds ------------------------------------------------------------------

absl::Status BuildCoordinator::CheckAdmission(const BuildSpec& spec) {
  absl::MutexLock lock(&mu_);
  return CheckAdmissionLocked(spec);
}

absl::Status BuildCoordinator::CheckAdmissionLocked(const BuildSpec& spec) {
  const std::string& submitter = spec.submitter();
  if (options_.max_context_bytes > 0 &&
      spec.context_size() > options_.max_context_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the build context is ", spec.context_size(),
        " bytes, over the scheduler's limit of ", options_.max_context_bytes,
        " bytes (--max-context-bytes); leave out what the build does not "
        "need with .dockerignore"));
  }
  if (spec.timeout_seconds() < 0 ||
      absl::Seconds(spec.timeout_seconds()) > options_.max_build_timeout) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--timeout ",
        absl::FormatDuration(absl::Seconds(spec.timeout_seconds())),
        " is not allowed: a build may ask for at most ",
        absl::FormatDuration(options_.max_build_timeout),
        " (the scheduler's --max-build-timeout)"));
  }
  const int64_t total = static_cast<int64_t>(queue_.size());
  if (options_.max_queued > 0 && total >= options_.max_queued) {
    metrics_->SubmitRejectedQueueFull(/*per_submitter=*/false);
    return absl::ResourceExhaustedError(absl::StrCat(
        "the queue is full: ", total, " builds are queued and the limit is ",
        options_.max_queued,
        " (--max-queued); nothing was queued, submit again later"));
  }
  const int64_t mine = static_cast<int64_t>(queue_.CountOf(submitter));
  if (options_.max_queued_per_submitter > 0 &&
      mine >= options_.max_queued_per_submitter) {
    metrics_->SubmitRejectedQueueFull(/*per_submitter=*/true);
    return absl::ResourceExhaustedError(absl::StrCat(
        "submitter \"", submitter, "\" has ", mine,
        " builds queued and the limit per submitter is ",
        options_.max_queued_per_submitter,
        " (--max-queued-per-submitter); nothing was queued, submit again "
        "when some have started"));
  }
  if (options_.quota != nullptr) {
    absl::Status st = options_.quota->Check(spec.submitter(), 0, "");
    if (!st.ok()) {
      metrics_->SubmitRejectedQuota();
      return absl::ResourceExhaustedError(
          absl::StrCat(st.message(), "; nothing was queued"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BuildCoordinator::Submit(const BuildSpec& spec) {
  absl::StatusOr<std::string> id = SubmitUnsynced(spec);
  // Acknowledged only once its row is durable; concurrent submits share the
  // commit (this waits without the coordinator's lock).
  journal_->Sync();
  return id;
}

absl::StatusOr<std::string> BuildCoordinator::SubmitUnsynced(
    const BuildSpec& spec) {
  absl::MutexLock lock(&mu_);
  // The row, its queued event and any lease it gets commit together, before
  // Submit returns.
  RETURN_IF_ERROR(CheckAdmissionLocked(spec));
  BuildJournal::Batch batch(journal_);
  const absl::uint128 key = MergedBuilds::Key(spec);
  if (std::string leader = merges_.Leader(key);
      !leader.empty() && active_.contains(leader)) {
    return JoinLocked(leader, spec);
  }
  BuildRecord r;
  r.spec = spec;
  r.state = longshore::v1::QUEUED;
  r.attempt = 1;
  r.created_ns = r.queued_ns = absl::ToUnixNanos(Now());
  for (int tries = 0;; ++tries) {
    r.id = NewBuildIdLocked();
    // The journal keeps each secret's id, and its value only sealed.
    for (int i = 0; i < spec.secrets_size(); ++i) {
      longshore::v1::Secret* kept = r.spec.mutable_secrets(i);
      kept->clear_value();
      kept->clear_sealed();
      if (options_.sealer != nullptr) {
        ASSIGN_OR_RETURN(*kept->mutable_sealed(),
                         options_.sealer->Seal(r.id, spec.secrets(i).id(),
                                               spec.secrets(i).value()));
      }
    }
    absl::Status st = journal_->Insert(&r);
    if (st.ok()) break;
    if (!absl::IsAlreadyExists(st) || tries >= 3) return st;
  }
  r.affinity = HashedAffinity(spec);
  ReleaseDockerfile(&r.spec);  // In the journal; not kept in memory.
  queue_.Push(ToQueued(r));
  std::string id = r.id;
  if (spec.secrets_size() > 0) {
    secrets_[id].assign(spec.secrets().begin(), spec.secrets().end());
  }
  r.merge_key = key;
  active_[id] = std::move(r);
  merges_.StartExecution(key, id);
  metrics_->BuildSubmitted();
  EmitQueuedLocked(id);
  LS_LOG(INFO) << "build " << id << " queued (submitter \"" << spec.submitter()
               << "\")";
  DispatchLocked();
  UpdateGaugesLocked();
  return id;
}

absl::StatusOr<std::string> BuildCoordinator::JoinLocked(
    const std::string& leader, const BuildSpec& spec) {
  BuildRecord r;
  r.spec = spec;
  r.spec.clear_secrets();
  ReleaseDockerfile(&r.spec);
  r.state = longshore::v1::QUEUED;  // As stored; GetBuild shows the leader's.
  r.attempt = 1;
  r.created_ns = r.queued_ns = absl::ToUnixNanos(Now());
  r.leader_id = leader;
  for (int tries = 0;; ++tries) {
    r.id = NewBuildIdLocked();
    absl::Status st = journal_->Insert(&r);
    if (st.ok()) break;
    if (!absl::IsAlreadyExists(st) || tries >= 3) return st;
  }
  const std::string id = r.id;
  // Everything the execution said so far, then a line saying whose it is.
  ASSIGN_OR_RETURN(std::vector<BuildEvent> so_far, events_->Read(leader, 0, 0));
  for (BuildEvent ev : so_far) {
    if (ev.has_build_finished()) continue;
    ev.clear_sequence();
    RETURN_IF_ERROR(events_->Append(id, ev).status());
  }
  BuildEvent note;
  note.mutable_log()->set_data(absl::StrCat(
      "[longshore] sharing the execution of build ", leader,
      ": same submitter and inputs, submitted while it was ",
      active_[leader].state == longshore::v1::RUNNING ? "running" : "queued",
      "\n"));
  RETURN_IF_ERROR(events_->Append(id, note).status());
  active_[id] = std::move(r);
  merges_.AddFollower(leader, id);
  metrics_->BuildSubmitted();
  metrics_->Merged();
  LS_LOG(INFO) << "build " << id << " shares the execution of build " << leader;
  return id;
}

absl::StatusOr<BuildState> BuildCoordinator::Cancel(const std::string& build_id,
                                                    const std::string& reason) {
  absl::StatusOr<BuildState> state = CancelUnsynced(build_id, reason);
  journal_->Sync();
  return state;
}

absl::StatusOr<BuildState> BuildCoordinator::CancelUnsynced(
    const std::string& build_id, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  BuildJournal::Batch batch(journal_);
  auto it = active_.find(build_id);
  if (it == active_.end()) {
    ASSIGN_OR_RETURN(BuildRecord r, journal_->Get(build_id));
    return r.state;  // Already final.
  }
  const std::string error = absl::StrCat(
      "cancelled: ", reason.empty() ? "requested by client" : reason);
  if (std::string leader = merges_.LeaderOf(build_id); !leader.empty()) {
    // A merged submission: it alone leaves the shared execution.
    merges_.Detach(build_id);
    BuildRecord done = it->second;
    done.state = longshore::v1::CANCELLED;
    done.cancel_requested = true;
    done.cancel_reason = reason;
    done.error = CancelledError(reason);
    done.finished_ns = absl::ToUnixNanos(Now());
    FinishLocked(std::move(done));
    LS_LOG(INFO) << "build " << build_id << " left the execution of " << leader;
    // Nobody wants the execution any more: stop it.
    if (merges_.ViewCancelled(leader) && merges_.Followers(leader).empty()) {
      RETURN_IF_ERROR(
          CancelExecutionLocked(leader, merges_.ViewCancelReason(leader))
              .status());
    }
    UpdateGaugesLocked();
    return longshore::v1::CANCELLED;
  }
  if (!merges_.Followers(build_id).empty() &&
      !merges_.ViewCancelled(build_id)) {
    // Others share this execution: only this submission's view ends.
    merges_.CancelView(build_id, it->second.merge_key, reason);
    BuildEvent finished;
    finished.mutable_build_finished()->set_result(longshore::v1::CANCELLED);
    absl::StatusOr<BuildEvent> stored = events_->Append(build_id, finished);
    if (!stored.ok())
      LS_LOG(ERROR) << "build " << build_id << ": " << stored.status();
    LS_LOG(INFO) << "build " << build_id
                 << " cancelled; its execution goes on for "
                 << merges_.Followers(build_id).size() << " merged builds";
    return longshore::v1::CANCELLED;
  }
  return CancelExecutionLocked(build_id, reason);
}

absl::StatusOr<BuildState> BuildCoordinator::CancelExecutionLocked(
    const std::string& build_id, const std::string& reason) {
  auto it = active_.find(build_id);
  if (it == active_.end()) return longshore::v1::CANCELLED;
  BuildRecord& r = it->second;
  if (r.state == longshore::v1::QUEUED) {
    queue_.Remove(build_id);
    BuildRecord done = r;
    done.state = longshore::v1::CANCELLED;
    done.cancel_requested = true;
    done.cancel_reason = reason;
    done.error = CancelledError(reason);
    done.finished_ns = absl::ToUnixNanos(Now());
    FinishLocked(std::move(done));
    UpdateGaugesLocked();
    return longshore::v1::CANCELLED;
  }
  // RUNNING: ask the worker; the result (or the lease expiring) finishes it.
  if (!r.cancel_requested) {
    r.cancel_requested = true;
    r.cancel_reason = reason;
    RETURN_IF_ERROR(journal_->Update(r));
    WorkerEntry* w = workers_.Find(r.worker_id);
    if (w != nullptr && w->channel != nullptr) {
      SchedulerMessage msg;
      msg.mutable_cancel()->set_build_id(build_id);
      msg.mutable_cancel()->set_reason(reason);
      w->channel->Send(msg);
    }
    LS_LOG(INFO) << "build " << build_id << " cancel requested on worker "
                 << r.worker_id;
  }
  return r.state;
}

absl::StatusOr<BuildRecord> BuildCoordinator::LookupLocked(
    const std::string& build_id) {
  auto it = active_.find(build_id);
  if (it != active_.end()) return it->second;
  return journal_->Get(build_id);
}

BuildInfo BuildCoordinator::ToBuildInfoLocked(const BuildRecord& record,
                                              bool with_dockerfile) {
  // A merged submission in flight shows its leader's execution; a leader
  // whose own submission was cancelled shows that.
  BuildRecord r = record;
  if (!r.leader_id.empty()) {
    if (auto leader = active_.find(r.leader_id);
        leader != active_.end() && active_.contains(r.id)) {
      r.state = leader->second.state;
      r.attempt = leader->second.attempt;
      r.worker_id = leader->second.worker_id;
    }
  } else if (merges_.ViewCancelled(r.id)) {
    r.state = longshore::v1::CANCELLED;
  }
  const std::string& owner = r.leader_id.empty() ? r.id : r.leader_id;
  BuildInfo info;
  info.set_build_id(r.id);
  info.set_state(r.state);
  *info.mutable_spec() = r.spec;
  if (!with_dockerfile) info.mutable_spec()->clear_dockerfile();
  // Which secrets it uses, never their values or sealed copies.
  for (auto& secret : *info.mutable_spec()->mutable_secrets()) {
    secret.clear_value();
    secret.clear_sealed();
  }
  info.set_worker_id(r.worker_id);
  // Attempts started so far: a queued build has not started its `attempt` yet.
  info.set_attempts(r.state == longshore::v1::QUEUED ? r.attempt - 1
                                                     : r.attempt);
  info.set_created_unix_nanos(r.created_ns);
  info.set_finished_unix_nanos(r.finished_ns);
  info.set_started_unix_nanos(r.started_ns);
  info.set_image_digest(r.image_digest);
  info.set_error(r.error);
  absl::StatusOr<std::vector<OutputRecord>> outputs =
      journal_->ListOutputs(owner);
  if (outputs.ok()) {
    for (const OutputRecord& o : *outputs) {
      if (o.attempt == r.attempt) info.add_ready_outputs(o.index);
    }
  } else {
    LS_LOG(WARNING) << "build " << r.id << ": " << outputs.status();
  }
  return info;
}

absl::StatusOr<BuildInfo> BuildCoordinator::GetBuild(
    const std::string& build_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(BuildRecord r, LookupLocked(build_id));
  if (active_.contains(build_id)) {
    // Active records keep no Dockerfile in memory.
    ASSIGN_OR_RETURN(r.spec, journal_->GetSpec(build_id));
  }
  return ToBuildInfoLocked(r, /*with_dockerfile=*/true);
}

absl::StatusOr<std::vector<BuildInfo>> BuildCoordinator::ListBuilds(
    const std::vector<BuildState>& states, int limit,
    const std::string& submitter, int64_t since_ns) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<BuildRecord> records,
                   journal_->List(states, limit, submitter, since_ns));
  std::vector<BuildInfo> out;
  for (const BuildRecord& r : records) {
    auto it = active_.find(r.id);
    out.push_back(ToBuildInfoLocked(it != active_.end() ? it->second : r,
                                    /*with_dockerfile=*/false));
  }
  return out;
}

std::vector<int> BuildCoordinator::QueuePositions(
    const std::vector<std::string>& build_ids) {
  absl::MutexLock lock(&mu_);
  std::vector<int> positions;
  positions.reserve(build_ids.size());
  for (const std::string& id : build_ids) {
    positions.push_back(queue_.Position(id));
  }
  return positions;
}

absl::StatusOr<BuildAccess> BuildCoordinator::Access(
    const std::string& build_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(BuildRecord r, LookupLocked(build_id));
  BuildAccess access;
  access.submitter = r.spec.submitter();
  access.context_digest = r.spec.context_digest();
  access.running = active_.contains(build_id) &&
                   r.state == longshore::v1::RUNNING && r.leader_id.empty();
  if (access.running) {
    if (const WorkerEntry* w = workers_.Find(r.worker_id); w != nullptr) {
      access.worker_identity = w->identity;
    }
  }
  return access;
}

absl::StatusOr<std::string> BuildCoordinator::CheckOutputReady(
    const std::string& build_id, int index) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(BuildRecord r, LookupLocked(build_id));
  // A merged submission's outputs are those of the execution it shared.
  std::string owner = build_id;
  int attempt = r.attempt;
  if (!r.leader_id.empty()) {
    owner = r.leader_id;
    auto leader = active_.find(owner);
    if (leader != active_.end()) attempt = leader->second.attempt;
  }
  ASSIGN_OR_RETURN(std::vector<OutputRecord> outputs,
                   journal_->ListOutputs(owner));
  for (const OutputRecord& o : outputs) {
    if (o.index == index && o.attempt == attempt) return owner;
  }
  return absl::NotFoundError(absl::StrCat("build ", build_id, " has no output ",
                                          index, " (state ",
                                          BuildState_Name(r.state), ")"));
}

// --- Workers -----------------------------------------------------------------

absl::StatusOr<uint64_t> BuildCoordinator::ConnectWorker(
    const longshore::v1::Register& reg, std::shared_ptr<WorkerChannel> channel,
    const std::string& identity) {
  if (reg.worker_id().empty()) {
    return absl::InvalidArgumentError("Register: worker_id is empty");
  }
  if (reg.slots() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Register: worker ", reg.worker_id(), " offers ",
                     reg.slots(), " slots; at least 1 is needed"));
  }
  absl::MutexLock lock(&mu_);
  if (const WorkerEntry* held = workers_.Find(reg.worker_id());
      held != nullptr && held->connected && held->identity != identity) {
    return absl::PermissionDeniedError(absl::StrCat(
        "worker id \"", reg.worker_id(), "\" is connected as \"",
        held->identity, "\"; \"", identity,
        "\" may not take it over (give each worker its own --id)"));
  }
  WorkerRegistry::Registration registration =
      workers_.Register(reg, channel, Now());
  BuildJournal::Batch batch(journal_);
  if (registration.superseded_channel != nullptr) {
    LS_LOG(WARNING) << "worker " << reg.worker_id()
                    << " connected again; its earlier stream is dropped";
    registration.superseded_channel->Close();
    for (const auto& [build_id, attempt] : registration.superseded_leases) {
      OrphanLocked(
          build_id, reg.worker_id(), attempt,
          absl::StrCat("worker ", reg.worker_id(), " connected again"));
    }
  }
  WorkerEntry* entry = workers_.Find(reg.worker_id());
  entry->identity = identity;
  if (drained_.contains(reg.worker_id())) entry->draining = true;
  SchedulerMessage hello;
  hello.mutable_registered()->set_worker_id(reg.worker_id());
  hello.mutable_registered()->set_heartbeat_interval_ms(static_cast<int32_t>(
      absl::ToInt64Milliseconds(options_.heartbeat_interval)));
  channel->Send(hello);
  ReattachLocked(entry, reg.held());
  LS_LOG(INFO) << "worker " << reg.worker_id() << " connected with "
               << reg.slots() << " slots";
  DispatchLocked();
  UpdateGaugesLocked();
  return registration.connection;
}

void BuildCoordinator::HandleWorkerMessage(uint64_t connection,
                                           const WorkerMessage& message) {
  absl::MutexLock lock(&mu_);
  WorkerEntry* worker = workers_.ByConnection(connection);
  if (worker == nullptr)
    return;  // Superseded or expired: not this worker's voice.
  switch (message.kind_case()) {
    case WorkerMessage::kHeartbeat:
      worker->last_heartbeat = Now();
      if (message.heartbeat().draining() && !worker->draining) {
        // The worker is stopping: nothing new goes to it. Not journaled: a
        // worker that comes back after its restart takes builds again.
        LS_LOG(INFO) << "worker " << worker->id
                     << " is draining (it is stopping)";
        worker->draining = true;
        UpdateGaugesLocked();
      }
      if (message.heartbeat().warm_keys_updated()) {
        worker->warm_keys.clear();
        for (const std::string& key : message.heartbeat().warm_keys()) {
          if (worker->warm_keys.size() >= 256) break;   // Bounded, whatever
          worker->warm_keys.insert(AffinityHash(key));  // a worker sends.
        }
      }
      ReconcileLocked(worker, message.heartbeat());
      break;
    case WorkerMessage::kRelease: {
      BuildJournal::Batch batch(journal_);
      HandleReleaseLocked(worker, message.release());
      break;
    }
    case WorkerMessage::kEvent: {
      BuildJournal::Batch batch(journal_);
      HandleEventLocked(worker, message.event());
      break;
    }
    case WorkerMessage::kResult: {
      worker->last_heartbeat = Now();
      BuildJournal::Batch batch(journal_);
      HandleResultLocked(worker, message.result());
      break;
    }
    case WorkerMessage::kRegister:
      LS_LOG(WARNING) << "worker " << worker->id
                      << " sent Register twice; ignored";
      break;
    case WorkerMessage::KIND_NOT_SET:
      break;
  }
}

BuildRecord* BuildCoordinator::CurrentLeaseLocked(const WorkerEntry& worker,
                                                  const std::string& build_id,
                                                  int attempt) {
  auto lease = worker.leases.find(build_id);
  if (lease == worker.leases.end() || lease->second != attempt) return nullptr;
  auto it = active_.find(build_id);
  if (it == active_.end() || it->second.state != longshore::v1::RUNNING ||
      it->second.attempt != attempt || it->second.worker_id != worker.id) {
    return nullptr;
  }
  return &it->second;
}

void BuildCoordinator::HandleEventLocked(WorkerEntry* worker,
                                         const WorkerEvent& event) {
  BuildRecord* build =
      CurrentLeaseLocked(*worker, event.build_id(), event.attempt());
  if (build == nullptr) {
    LS_LOG(DEBUG) << "dropping event for build " << event.build_id()
                  << " attempt " << event.attempt() << " from worker "
                  << worker->id << ": not its current lease";
    return;
  }
  // Lifecycle events (queued, assigned, error, build_finished) are the
  // scheduler's to write; workers report progress only.
  switch (event.event().kind_case()) {
    case BuildEvent::kLog: {
      // Output past --max-log-bytes is dropped, said once, and counted; the
      // build goes on.
      const int64_t size =
          static_cast<int64_t>(event.event().log().data().size());
      const std::string& submitter = build->spec.submitter();
      if (build->log_capped) {
        // Past a limit once, dropped to the end: no later (smaller) chunk
        // slips in after the marker.
        metrics_->LogBytesDropped(size);
        break;
      }
      const absl::Status room =
          options_.quota != nullptr
              ? options_.quota->Check(submitter, size, "output")
              : absl::OkStatus();
      if (!room.ok()) {
        // Past the submitter's storage quota: dropped like the cap, saying
        // which limit.
        metrics_->LogBytesDropped(size);
        options_.quota->MarkFull(submitter);
        if (!build->log_capped) {
          build->log_capped = true;
          const std::string why(room.message());
          BuildEvent marker;
          *marker.mutable_log()->mutable_step() = event.event().log().step();
          marker.mutable_log()->set_stream(BuildEvent::Log::STDERR);
          marker.mutable_log()->set_data(absl::StrCat(
              "\n[longshore] the rest of this build's output is dropped: ", why,
              "\n"));
          AppendEventLocked(event.build_id(), marker);
          BuildEvent warning;
          *warning.mutable_warning()->mutable_step() =
              event.event().log().step();
          warning.mutable_warning()->set_message(
              absl::StrCat("output dropped: ", why));
          AppendEventLocked(event.build_id(), warning);
        }
        break;
      }
      if (options_.max_log_bytes > 0 &&
          build->log_bytes + size > options_.max_log_bytes) {
        metrics_->LogBytesDropped(size);
        if (!build->log_capped) {
          build->log_capped = true;
          BuildEvent marker;
          *marker.mutable_log()->mutable_step() = event.event().log().step();
          marker.mutable_log()->set_stream(BuildEvent::Log::STDERR);
          marker.mutable_log()->set_data(absl::StrCat(
              "\n[longshore] this build's output passed the scheduler's "
              "limit of ",
              options_.max_log_bytes,
              " bytes (--max-log-bytes); the rest of it is dropped, the build "
              "goes on\n"));
          AppendEventLocked(event.build_id(), marker);
          BuildEvent warning;
          *warning.mutable_warning()->mutable_step() =
              event.event().log().step();
          warning.mutable_warning()->set_message(absl::StrCat(
              "output past ", options_.max_log_bytes,
              " bytes (--max-log-bytes) is dropped; the build goes on"));
          AppendEventLocked(event.build_id(), warning);
          LS_LOG(WARNING) << "build " << event.build_id()
                          << ": output over --max-log-bytes "
                          << options_.max_log_bytes << "; dropping the rest";
        }
        break;
      }
      build->log_bytes += size;
      if (options_.quota != nullptr) options_.quota->Add(submitter, size);
      AppendEventLocked(event.build_id(), event.event());
      break;
    }
    case BuildEvent::kStepStarted:
    case BuildEvent::kStepCached:
    case BuildEvent::kStepFinished:
      AppendEventLocked(event.build_id(), event.event());
      break;
    default:
      LS_LOG(DEBUG) << "dropping lifecycle event from worker " << worker->id;
      break;
  }
}

void BuildCoordinator::HandleResultLocked(WorkerEntry* worker,
                                          const BuildResult& result) {
  BuildRecord* current =
      CurrentLeaseLocked(*worker, result.build_id(), result.attempt());
  if (current == nullptr) {
    LS_LOG(INFO) << "ignoring result for build " << result.build_id()
                 << " attempt " << result.attempt() << " from worker "
                 << worker->id << ": not its current lease";
    return;
  }
  worker->leases.erase(result.build_id());
  BuildRecord r = *current;
  r.finished_ns = absl::ToUnixNanos(Now());
  r.result = result;
  r.image_digest = result.image_digest();
  BuildState state = result.state();
  if (!IsTerminal(state)) {
    state = longshore::v1::FAILED;
    r.error = absl::StrCat("worker ", worker->id,
                           " reported a result without a final state (",
                           BuildState_Name(result.state()), ")");
  } else {
    r.error = result.error();
  }
  // A build the client cancelled ends CANCELLED unless it had already
  // succeeded.
  if (r.cancel_requested && state != longshore::v1::SUCCEEDED) {
    StoppedOutcome stopped = StopOutcome(r);
    state = stopped.state;
    r.error = stopped.error;
  }
  if (state == longshore::v1::FAILED && r.error.empty()) {
    r.error = absl::StrCat("build failed on worker ", worker->id,
                           " without an error message");
  }
  r.state = state;
  LS_LOG(INFO) << "build " << r.id << " " << BuildState_Name(state)
               << " on worker " << worker->id;
  FinishLocked(std::move(r));
  DispatchLocked();
  UpdateGaugesLocked();
}

void BuildCoordinator::DisconnectWorker(uint64_t connection) {
  absl::MutexLock lock(&mu_);
  WorkerEntry* w = workers_.ByConnection(connection);
  if (w == nullptr) return;
  BuildJournal::Batch batch(journal_);
  std::string cause = absl::StrCat("worker ", w->id, "'s stream ended");
  LS_LOG(INFO) << cause;
  DropConnectionLocked(connection, cause, /*expired=*/false);
  DispatchLocked();
  UpdateGaugesLocked();
}

void BuildCoordinator::DropConnectionLocked(uint64_t connection,
                                            const std::string& cause,
                                            bool expired) {
  WorkerEntry* w = workers_.ByConnection(connection);
  const std::string worker_id = w != nullptr ? w->id : "";
  std::map<std::string, int> leases = workers_.Disconnect(connection, Now());
  if (stopping_) return;
  for (const auto& [build_id, attempt] : leases) {
    if (expired) {
      // A worker that stopped answering may be stuck: its builds run again.
      metrics_->LeaseExpired();
      InterruptLocked(build_id, cause);
    } else {
      // A stream that ended: the worker keeps building and may be back.
      OrphanLocked(build_id, worker_id, attempt, cause);
    }
  }
}

void BuildCoordinator::EnforceTimeoutsLocked(absl::Time now) {
  if (running_total_ == 0) return;
  auto limit_of = [this](const BuildRecord& r) {
    return r.spec.timeout_seconds() > 0
               ? absl::Seconds(r.spec.timeout_seconds())
               : options_.build_timeout;
  };
  std::vector<std::string> late;
  for (const auto& [id, r] : active_) {
    if (r.state != longshore::v1::RUNNING || r.started_ns == 0) continue;
    if (r.cancel_requested) continue;  // Already being stopped.
    if (now - absl::FromUnixNanos(r.started_ns) > limit_of(r)) {
      late.push_back(id);
    }
  }
  if (late.empty()) return;
  BuildJournal::Batch batch(journal_);
  for (const std::string& id : late) {
    BuildRecord& r = active_[id];
    const absl::Duration limit = limit_of(r);
    r.cancel_requested = true;
    r.cancel_reason = absl::StrCat(
        kTimeoutReasonPrefix, "the build ran longer than its timeout of ",
        absl::FormatDuration(limit),
        r.spec.timeout_seconds() > 0
            ? " (longshore build --timeout)"
            : " (the scheduler's --build-timeout; longshore build --timeout "
              "sets another)",
        " and was stopped");
    absl::Status st = journal_->Update(r);
    if (!st.ok()) LS_LOG(ERROR) << "build " << id << ": " << st;
    LS_LOG(WARNING) << "build " << id << ": "
                    << r.cancel_reason.substr(kTimeoutReasonPrefix.size());
    BuildEvent warn;
    warn.mutable_log()->set_stream(BuildEvent::Log::STDERR);
    warn.mutable_log()->set_data(absl::StrCat(
        "[longshore] ", r.cancel_reason.substr(kTimeoutReasonPrefix.size()),
        "\n"));
    AppendEventLocked(id, warn);
    WorkerEntry* w = workers_.Find(r.worker_id);
    if (w != nullptr && w->channel != nullptr && w->connected) {
      SchedulerMessage msg;
      msg.mutable_cancel()->set_build_id(id);
      msg.mutable_cancel()->set_reason("timeout");
      w->channel->Send(msg);
    }
  }
}

void BuildCoordinator::OrphanLocked(const std::string& build_id,
                                    const std::string& worker_id, int attempt,
                                    const std::string& cause) {
  orphans_[build_id] = Orphan{worker_id, attempt, Now(), cause};
  LS_LOG(INFO) << "build " << build_id << " attempt " << attempt
               << " waits up to "
               << absl::FormatDuration(options_.reattach_grace)
               << " for worker " << worker_id << ": " << cause;
}

void BuildCoordinator::ReattachLocked(
    WorkerEntry* worker,
    const google::protobuf::RepeatedPtrField<longshore::v1::HeldBuild>& held) {
  absl::flat_hash_set<std::string> kept;
  for (const longshore::v1::HeldBuild& h : held) {
    auto orphan = orphans_.find(h.build_id());
    auto it = active_.find(h.build_id());
    const bool ours =
        orphan != orphans_.end() && orphan->second.worker_id == worker->id &&
        orphan->second.attempt == h.attempt() && it != active_.end() &&
        it->second.state == longshore::v1::RUNNING &&
        it->second.attempt == h.attempt();
    if (!ours) {
      // Finished, cancelled, queued again or leased elsewhere meanwhile: the
      // worker's copy is stale and whatever it reports will be dropped.
      SchedulerMessage stop;
      stop.mutable_cancel()->set_build_id(h.build_id());
      stop.mutable_cancel()->set_reason(
          absl::StrCat("attempt ", h.attempt(),
                       " is no longer leased to worker ", worker->id));
      worker->channel->Send(stop);
      continue;
    }
    orphans_.erase(orphan);
    worker->leases[h.build_id()] = h.attempt();
    kept.insert(h.build_id());
    metrics_->Reattached();
    LS_LOG(INFO) << "build " << h.build_id() << " attempt " << h.attempt()
                 << " re-attached to worker " << worker->id;
    if (it->second.cancel_requested) {
      SchedulerMessage cancel;
      cancel.mutable_cancel()->set_build_id(h.build_id());
      cancel.mutable_cancel()->set_reason(it->second.cancel_reason);
      worker->channel->Send(cancel);
    }
  }
  // The worker's other orphans did not survive (it restarted): run them again.
  std::vector<std::string> lost;
  for (const auto& [id, orphan] : orphans_) {
    if (orphan.worker_id == worker->id && !kept.contains(id)) {
      lost.push_back(id);
    }
  }
  for (const std::string& id : lost) {
    InterruptLocked(
        id, absl::StrCat("worker ", worker->id, " came back without it"));
  }
}

void BuildCoordinator::ReconcileLocked(WorkerEntry* worker,
                                       const longshore::v1::Heartbeat& hb) {
  absl::flat_hash_set<std::string> reported(hb.running_build_ids().begin(),
                                            hb.running_build_ids().end());
  const int64_t settled_before =
      absl::ToUnixNanos(Now() - 2 * options_.heartbeat_interval);
  std::vector<std::string> lost;
  for (const auto& [id, attempt] : worker->leases) {
    if (reported.contains(id)) continue;
    auto it = active_.find(id);
    if (it != active_.end() && it->second.started_ns < settled_before) {
      lost.push_back(id);
    }
  }
  for (const std::string& id : reported) {
    if (worker->leases.count(id) > 0) continue;
    SchedulerMessage stop;
    stop.mutable_cancel()->set_build_id(id);
    stop.mutable_cancel()->set_reason(
        absl::StrCat("worker ", worker->id, " holds no lease for build ", id));
    worker->channel->Send(stop);
    metrics_->Reconciled("unleased_build_stopped");
  }
  if (lost.empty()) return;
  BuildJournal::Batch batch(journal_);
  for (const std::string& id : lost) {
    worker->leases.erase(id);
    metrics_->Reconciled("lease_not_running");
    InterruptLocked(id, absl::StrCat("worker ", worker->id,
                                     " does not run it (its heartbeat does "
                                     "not list it)"));
  }
  DispatchLocked();
  UpdateGaugesLocked();
}

void BuildCoordinator::HandleReleaseLocked(
    WorkerEntry* worker, const longshore::v1::ReleaseBuild& release) {
  BuildRecord* current =
      CurrentLeaseLocked(*worker, release.build_id(), release.attempt());
  if (current == nullptr) return;
  worker->leases.erase(release.build_id());
  BuildRecord r = *current;
  CountRunningLocked(r, -1);
  if (r.cancel_requested) {
    StoppedOutcome stopped = StopOutcome(r);
    r.state = stopped.state;
    r.finished_ns = absl::ToUnixNanos(Now());
    r.error = stopped.error;
    current->state = longshore::v1::QUEUED;  // Not counted again.
    FinishLocked(std::move(r));
  } else {
    // The same attempt again: giving a build back is not its failure.
    r.state = longshore::v1::QUEUED;
    r.worker_id.clear();
    r.queued_ns = absl::ToUnixNanos(Now());
    r.started_ns = 0;
    absl::Status st = journal_->Update(r);
    if (!st.ok()) LS_LOG(ERROR) << "build " << r.id << ": " << st;
    LS_LOG(INFO) << "build " << r.id << " attempt " << r.attempt
                 << " released by worker " << worker->id << " ("
                 << release.reason() << "); queued again";
    metrics_->Requeued("released");
    queue_.Push(ToQueued(r));
    *current = std::move(r);
    EmitQueuedLocked(release.build_id());
  }
  DispatchLocked();
  UpdateGaugesLocked();
}

void BuildCoordinator::ExpireLeases() {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  absl::Time now = Now();
  absl::Duration lease =
      options_.heartbeat_interval * options_.missed_heartbeats_allowed;
  for (uint64_t connection : workers_.ExpiredConnections(now, lease)) {
    WorkerEntry* w = workers_.ByConnection(connection);
    if (w == nullptr) continue;
    std::string cause =
        absl::StrCat("worker ", w->id, " sent no heartbeat for ",
                     absl::FormatDuration(now - w->last_heartbeat));
    LS_LOG(WARNING) << cause << "; its leases expire";
    std::shared_ptr<WorkerChannel> channel = w->channel;
    DropConnectionLocked(connection, cause, /*expired=*/true);
    if (channel != nullptr) channel->Close();
  }
  EnforceTimeoutsLocked(now);
  std::vector<std::pair<std::string, std::string>> gone;
  for (const auto& [id, orphan] : orphans_) {
    if (now - orphan.since >= options_.reattach_grace) {
      gone.emplace_back(
          id, absl::StrCat(orphan.cause, ", and worker ", orphan.worker_id,
                           " did not come back with it within ",
                           absl::FormatDuration(options_.reattach_grace)));
    }
  }
  if (!gone.empty()) {
    BuildJournal::Batch batch(journal_);
    for (const auto& [id, cause] : gone) InterruptLocked(id, cause);
  }
  workers_.ForgetDisconnectedBefore(now - options_.forget_workers_after);
  DispatchLocked();
  UpdateGaugesLocked();
}

void BuildCoordinator::InterruptLocked(const std::string& build_id,
                                       const std::string& cause) {
  auto it = active_.find(build_id);
  if (it == active_.end() || it->second.state != longshore::v1::RUNNING) return;
  BuildJournal::Batch batch(journal_);
  orphans_.erase(build_id);
  BuildRecord r = it->second;
  CountRunningLocked(r, -1);
  // FinishLocked below must not count it again.
  it->second.state = longshore::v1::QUEUED;
  InterruptOutcome outcome = InterruptAttempt(&r, options_.max_attempts,
                                              absl::ToUnixNanos(Now()), cause);
  switch (outcome) {
    case InterruptOutcome::kRequeued: {
      absl::Status st = journal_->Update(r);
      if (!st.ok()) {
        LS_LOG(ERROR) << "build " << build_id << ": " << st;
      }
      LS_LOG(INFO) << "build " << build_id << " queued again for attempt "
                   << r.attempt << ": " << cause;
      metrics_->Requeued("interrupted");
      queue_.Push(ToQueued(r));
      it->second = std::move(r);
      EmitQueuedLocked(build_id);
      break;
    }
    case InterruptOutcome::kFailed:
    case InterruptOutcome::kCancelled:
      LS_LOG(INFO) << "build " << build_id << " ends: " << r.error;
      FinishLocked(std::move(r));
      break;
  }
}

void BuildCoordinator::FinishLocked(BuildRecord r) {
  BuildJournal::Batch batch(journal_);
  if (auto it = active_.find(r.id);
      it != active_.end() && it->second.state == longshore::v1::RUNNING) {
    CountRunningLocked(it->second, -1);
  }
  // A leader whose own submission was cancelled ends CANCELLED whatever its
  // execution did for the followers.
  const bool view_cancelled = merges_.ViewCancelled(r.id);
  BuildRecord own = r;
  if (view_cancelled) {
    own.state = longshore::v1::CANCELLED;
    own.error = CancelledError(merges_.ViewCancelReason(r.id));
  }
  absl::Status st = journal_->Update(own);
  if (!st.ok()) {
    LS_LOG(ERROR) << "build " << r.id << ": " << st;
  }
  if (r.state == longshore::v1::FAILED) {
    BuildEvent error;
    error.mutable_error()->set_message(r.error);
    if (r.result.has_failed_step()) {
      *error.mutable_error()->mutable_step() = r.result.failed_step();
      error.mutable_error()->set_line(r.result.failed_step().line());
    }
    AppendEventLocked(r.id, error);
  }
  absl::Duration ran = r.started_ns > 0 && r.finished_ns > r.started_ns
                           ? absl::Nanoseconds(r.finished_ns - r.started_ns)
                           : absl::ZeroDuration();
  BuildEvent finished;
  auto* f = finished.mutable_build_finished();
  f->set_result(r.state);
  f->set_image_digest(r.image_digest);
  f->set_config_digest(r.result.config_digest());
  for (const std::string& ref : r.result.references()) f->add_references(ref);
  f->set_duration_ms(absl::ToInt64Milliseconds(ran));
  AppendEventLocked(r.id, finished);  // Followers hear the end too.
  metrics_->BuildFinished(own.state, ran);
  // Merged submissions end as the execution they shared.
  for (const std::string& id : merges_.EndExecution(r.id, r.merge_key)) {
    auto it = active_.find(id);
    if (it == active_.end()) continue;
    BuildRecord f = std::move(it->second);
    f.state = r.state;
    f.attempt = r.attempt;
    f.worker_id = r.worker_id;
    f.started_ns = r.started_ns;
    f.finished_ns = r.finished_ns;
    f.image_digest = r.image_digest;
    f.error = r.error;
    f.result = r.result;
    if (absl::Status fs = journal_->Update(f); !fs.ok()) {
      LS_LOG(ERROR) << "build " << id << ": " << fs;
    }
    metrics_->BuildFinished(f.state, ran);
    active_.erase(it);
  }
  merges_.Detach(r.id);  // When r was itself a follower.
  secrets_.erase(r.id);
  orphans_.erase(r.id);
  active_.erase(r.id);
}

void BuildCoordinator::EmitQueuedLocked(const std::string& build_id) {
  BuildEvent ev;
  ev.mutable_queued()->set_position(queue_.Position(build_id));
  AppendEventLocked(build_id, ev);
}

void BuildCoordinator::AppendEventLocked(const std::string& build_id,
                                         const BuildEvent& event) {
  // A leader whose own submission was cancelled keeps executing for its
  // followers only; every follower hears what its leader's execution says.
  std::vector<std::string> streams = merges_.Followers(build_id);
  if (!merges_.ViewCancelled(build_id)) streams.push_back(build_id);
  for (const std::string& id : streams) {
    absl::StatusOr<BuildEvent> stored = events_->Append(id, event);
    if (!stored.ok()) {
      LS_LOG(ERROR) << "build " << id << ": event lost: " << stored.status();
    }
  }
}

void BuildCoordinator::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
}

void BuildCoordinator::DispatchLocked() {
  if (queue_.empty() || stopping_) return;
  absl::flat_hash_map<std::string, Placement::Share> shares;
  for (const auto& [submitter, last] : last_served_) {
    shares[submitter].last_served = last;
  }
  for (const auto& [submitter, running] : running_by_submitter_) {
    shares[submitter].running = running;
  }
  std::vector<PlacementDecision> decisions =
      placement_.Place(queue_, workers_.Capacities(), std::move(shares));
  if (decisions.empty()) return;
  BuildJournal::Batch batch(journal_);  // Every lease of this round at once.
  for (const PlacementDecision& d : decisions) {
    WorkerEntry* w = workers_.Find(d.worker_id);
    if (w == nullptr) continue;
    auto it = active_.find(d.build_id);
    if (it != active_.end()) {
      last_served_[it->second.spec.submitter()] = ++served_count_;
    }
    metrics_->Placed(d.reason);
    absl::Status st = LeaseLocked(d.build_id, w);
    if (!st.ok()) {
      LS_LOG(ERROR) << "lease of build " << d.build_id << " to worker "
                    << d.worker_id << " failed: " << st;
    }
  }
}

absl::Status BuildCoordinator::LeaseLocked(const std::string& build_id,
                                           WorkerEntry* worker) {
  auto it = active_.find(build_id);
  if (it == active_.end()) {
    queue_.Remove(build_id);
    return absl::InternalError("queued build is not active");
  }
  BuildRecord r = it->second;
  absl::Time now = Now();
  if (std::string lost = LostSecretLocked(r); !lost.empty()) {
    queue_.Remove(build_id);
    r.state = longshore::v1::FAILED;
    r.error = lost;
    r.finished_ns = absl::ToUnixNanos(now);
    LS_LOG(WARNING) << "build " << build_id << " fails: " << lost;
    FinishLocked(std::move(r));
    return absl::OkStatus();
  }
  r.state = longshore::v1::RUNNING;
  r.worker_id = worker->id;
  r.started_ns = absl::ToUnixNanos(now);
  // The whole spec (the Dockerfile is only in the journal) goes to the worker.
  ASSIGN_OR_RETURN(BuildSpec spec, journal_->GetSpec(build_id));
  RETURN_IF_ERROR(journal_->Update(r));
  queue_.Remove(build_id);
  CountRunningLocked(r, +1);
  worker->leases[build_id] = r.attempt;
  metrics_->QueueWait(now - absl::FromUnixNanos(r.queued_ns));

  BuildEvent ev;
  ev.mutable_assigned()->set_worker_id(worker->id);
  ev.mutable_assigned()->set_attempt(r.attempt);
  AppendEventLocked(build_id, ev);

  SchedulerMessage msg;
  auto* a = msg.mutable_assignment();
  a->set_build_id(build_id);
  a->set_attempt(r.attempt);
  *a->mutable_spec() = std::move(spec);
  a->mutable_spec()->clear_secrets();  // The journal's ids and sealed copies.
  auto secrets = secrets_.find(build_id);
  if (secrets != secrets_.end()) {
    for (const auto& secret : secrets->second)
      *a->mutable_spec()->add_secrets() = secret;
  }
  worker->channel->Send(msg);
  LS_LOG(INFO) << "build " << build_id << " attempt " << r.attempt
               << " leased to worker " << worker->id;
  it->second = std::move(r);
  return absl::OkStatus();
}

absl::Status BuildCoordinator::CheckUploadAllowed(const std::string& build_id,
                                                  int attempt, int index) {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(build_id);
  if (it == active_.end() || it->second.state != longshore::v1::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("UploadOutput: build ", build_id, " is not running"));
  }
  const BuildRecord& r = it->second;
  if (r.attempt != attempt) {
    return absl::FailedPreconditionError(
        absl::StrCat("UploadOutput: build ", build_id, " runs attempt ",
                     r.attempt, ", not ", attempt));
  }
  if (index < 0 || index >= r.spec.outputs_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "UploadOutput: build ", build_id, " has ", r.spec.outputs_size(),
        " outputs; index ", index, " is out of range"));
  }
  return absl::OkStatus();
}

absl::Status BuildCoordinator::CommitOutput(const std::string& build_id,
                                            int attempt, int index,
                                            const std::string& digest,
                                            VerifiedFileWriter* writer) {
  RETURN_IF_ERROR(CheckUploadAllowed(build_id, attempt, index));
  absl::MutexLock lock(&mu_);
  BuildJournal::Batch batch(journal_);
  auto it = active_.find(build_id);
  if (it == active_.end() || it->second.attempt != attempt) {
    return absl::FailedPreconditionError(
        absl::StrCat("UploadOutput: build ", build_id, " attempt ", attempt,
                     " ended during the upload"));
  }
  const std::string& submitter = it->second.spec.submitter();
  if (options_.quota != nullptr) {
    RETURN_IF_ERROR(options_.quota->Check(submitter, writer->bytes_written(),
                                          absl::StrCat("output ", index)));
  }
  ASSIGN_OR_RETURN(std::string path, blobs_->OutputPath(build_id, index));
  ASSIGN_OR_RETURN(int64_t size, writer->Commit(path, digest, -1));
  if (options_.quota != nullptr) options_.quota->Add(submitter, size);
  OutputRecord out;
  out.index = index;
  out.attempt = attempt;
  out.digest = digest;
  out.size = size;
  return journal_->PutOutput(build_id, out);
}

// --- Admin -------------------------------------------------------------------

std::vector<WorkerInfo> BuildCoordinator::ListWorkers() {
  absl::MutexLock lock(&mu_);
  std::vector<WorkerInfo> out;
  for (const WorkerEntry* w : workers_.All()) out.push_back(ToWorkerInfo(*w));
  return out;
}

absl::StatusOr<WorkerInfo> BuildCoordinator::SetDraining(
    const std::string& worker_id, bool draining) {
  absl::MutexLock lock(&mu_);
  WorkerEntry* w = workers_.Find(worker_id);
  if (w == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("worker \"", worker_id, "\" is not known"));
  }
  BuildJournal::Batch batch(journal_);
  RETURN_IF_ERROR(PersistDrainLocked(worker_id, draining));
  if (w->draining != draining) {
    w->draining = draining;
    LS_LOG(INFO) << "worker " << worker_id
                 << (draining ? " draining" : " accepting builds again");
  }
  if (!draining) DispatchLocked();
  UpdateGaugesLocked();
  return ToWorkerInfo(*w);
}

absl::Status BuildCoordinator::PersistDrainLocked(const std::string& worker_id,
                                                  bool draining) {
  RETURN_IF_ERROR(journal_->SetWorkerDrained(worker_id, draining));
  if (draining) {
    drained_.insert(worker_id);
  } else {
    drained_.erase(worker_id);
  }
  return absl::OkStatus();
}

void BuildCoordinator::CountRunningLocked(const BuildRecord& r, int delta) {
  running_total_ += delta;
  int& n = running_by_submitter_[r.spec.submitter()];
  n += delta;
  if (n <= 0) running_by_submitter_.erase(r.spec.submitter());
}

void BuildCoordinator::UpdateGaugesLocked() {
  metrics_->SetQueueDepth(queue_.size());
  metrics_->SetBuildsRunning(running_total_);
  metrics_->SetWorkers(workers_.Counts());
}

}  // namespace longshore::scheduler
