#include "scheduler/build_service.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "scheduler/dockerfile_check.h"
#include "scheduler/grpc_status.h"
#include "scheduler/stream_file.h"

namespace longshore::scheduler {
namespace {

using longshore::v1::BuildEvent;
using longshore::v1::BuildSpec;
using longshore::v1::BuildState;
using longshore::v1::SubmitRequest;

constexpr size_t kOutputChunkBytes = 1 << 20;
constexpr int kWatchBatch = 256;
constexpr int64_t kMaxManifestRootBytes = 64 << 20;
constexpr int kMaxFindDigests = 100000;
// How often a waiting Watch checks whether its client or the server went away.
constexpr absl::Duration kWatchPoll = absl::Milliseconds(200);

}  // namespace

absl::Status ValidateSpec(const BuildSpec& spec) {
  if (!IsValidDigest(spec.context_digest())) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.context_digest \"", spec.context_digest(),
                     "\" is not sha256:<64 lower-case hex>"));
  }
  if (spec.context_size() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.context_size is negative: ", spec.context_size()));
  }
  for (const auto& kv : spec.worker_labels()) {
    if (kv.key().empty() || kv.key().find('=') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.worker_labels: key \"", kv.key(),
          "\" must be non-empty and hold no '=' (--worker-label KEY=VALUE)"));
    }
  }
  std::string filename =
      spec.dockerfile_path().empty() ? "Dockerfile" : spec.dockerfile_path();
  if (spec.dockerfile().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.dockerfile is empty: send the bytes of ", filename));
  }
  return CheckDockerfile(spec.dockerfile(), filename);
}

grpc::Status BuildServiceImpl::StatContext(
    grpc::ServerContext* context,
    const longshore::v1::StatContextRequest* request,
    longshore::v1::StatContextResponse* response) {
  if (grpc::Status s = authz_->Authorize(*context, Rpc::kStatContext);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<int64_t> size = blobs_->StatContext(request->digest());
  if (size.ok()) {
    response->set_present(true);
    response->set_size(*size);
    return grpc::Status::OK;
  }
  if (absl::IsNotFound(size.status())) {
    response->set_present(false);
    return grpc::Status::OK;
  }
  return ToGrpcStatus(size.status());
}

absl::Status BuildServiceImpl::ReceiveContext(
    const BuildSpec& spec, grpc::ServerReader<SubmitRequest>* reader) {
  const std::string& digest = spec.context_digest();
  absl::StatusOr<int64_t> held = blobs_->StatContext(digest);
  SubmitRequest req;
  // A manifest root's size is not in the spec (context_size is that of its
  // files); its digest is what binds it.
  const int64_t declared =
      spec.context_manifest() ? kMaxManifestRootBytes : spec.context_size();
  if (held.ok()) {
    if (!spec.context_manifest() && *held != spec.context_size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("context ", digest, " is ", *held,
                       " bytes, but the spec says ", spec.context_size()));
    }
    // Already stored: any chunks the client sends anyway are not needed.
    while (reader->Read(&req)) {
    }
    return absl::OkStatus();
  }
  if (!absl::IsNotFound(held.status())) return held.status();

  ASSIGN_OR_RETURN(std::unique_ptr<VerifiedFileWriter> writer,
                   blobs_->NewContextWriter());
  bool any_chunk = false;
  int64_t received = 0;
  while (reader->Read(&req)) {
    if (!req.has_context()) {
      return absl::InvalidArgumentError(
          "Submit: only the first message may carry a spec");
    }
    any_chunk = true;
    // Never more than the spec declared (and admission bounded): a client
    // cannot fill the scheduler's disk by streaming on.
    received += static_cast<int64_t>(req.context().data().size());
    if (received > declared) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Submit: the context sent is over the ", declared,
          spec.context_manifest() ? " bytes a manifest root may have"
                                  : " bytes spec.context_size declares"));
    }
    RETURN_IF_ERROR(writer->Append(req.context().data()));
    metrics_->ContextBytesReceived(
        static_cast<int64_t>(req.context().data().size()));
  }
  if (!any_chunk) {
    return absl::FailedPreconditionError(absl::StrCat(
        "context ", digest,
        " is not held by the scheduler and none was uploaded with the build"));
  }
  ASSIGN_OR_RETURN(std::string path, blobs_->ContextPath(digest));
  ASSIGN_OR_RETURN(
      int64_t size,
      writer->Commit(path, digest,
                     spec.context_manifest() ? -1 : spec.context_size()));
  (void)size;
  return absl::OkStatus();
}

grpc::Status BuildServiceImpl::Submit(grpc::ServerContext* context,
                                      grpc::ServerReader<SubmitRequest>* reader,
                                      longshore::v1::SubmitResponse* response) {
  Identity who;
  if (grpc::Status s = authz_->Authorize(*context, Rpc::kSubmit, "", &who);
      !s.ok()) {
    return s;
  }
  SubmitRequest first;
  if (!reader->Read(&first) || !first.has_spec()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "Submit: the first message must carry the build spec");
  }
  BuildSpec& spec = *first.mutable_spec();
  // The submitter is who the certificate or token says, never what the
  // client claims: it decides who may see the build, and fair placement
  // cannot be gamed by renaming each build. (An open scheduler has no
  // identities; there the claim is only a label.)
  if (who.source != Identity::Source::kAnonymous) spec.set_submitter(who.name);
  absl::Status st = ValidateSpec(spec);
  // A full queue refuses before the context is received.
  if (st.ok()) st = coordinator_->CheckAdmission(spec);
  if (st.ok() && spec.context_manifest() && files_ == nullptr) {
    st = absl::UnimplementedError(
        "this scheduler does not take context manifests; send a tar");
  }
  if (st.ok()) st = ReceiveContext(spec, reader);
  if (st.ok() && spec.context_manifest()) {
    st = CheckManifest(spec, ContentOwner(who));
  }
  if (!st.ok()) return ToGrpcStatus(st);
  absl::StatusOr<std::string> id = coordinator_->Submit(spec);
  if (!id.ok()) return ToGrpcStatus(id.status());
  response->set_build_id(*id);
  return grpc::Status::OK;
}

std::string ContentOwner(const Identity& who) {
  return who.source == Identity::Source::kAnonymous ? "" : who.name;
}

absl::Status BuildServiceImpl::CheckManifest(const BuildSpec& spec,
                                             const std::string& owner) {
  ASSIGN_OR_RETURN(std::string path,
                   blobs_->ContextPath(spec.context_digest()));
  ASSIGN_OR_RETURN(std::string root, ReadFile(path));
  ASSIGN_OR_RETURN(ManifestContents contents, files_->Resolve(owner, root));
  if (contents.total_size != spec.context_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.context_size is ", spec.context_size(),
        " but the context manifest's files add up to ", contents.total_size));
  }
  return absl::OkStatus();
}

absl::Status CheckContextLimit(int64_t size, int64_t limit) {
  if (limit > 0 && size > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the build context is ", size, " bytes, over the scheduler's limit of ",
        limit,
        " bytes (--max-context-bytes); leave out what the build does not "
        "need with .dockerignore"));
  }
  return absl::OkStatus();
}

grpc::Status BuildServiceImpl::FindMissingContent(
    grpc::ServerContext* context,
    const longshore::v1::FindMissingContentRequest* request,
    longshore::v1::FindMissingContentResponse* response) {
  Identity who;
  if (grpc::Status s =
          authz_->Authorize(*context, Rpc::kFindMissingContent, "", &who);
      !s.ok()) {
    return s;
  }
  if (files_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "this scheduler does not take context manifests");
  }
  if (request->digests_size() > kMaxFindDigests) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("FindMissingContent: at most ", kMaxFindDigests,
                     " digests per call, not ", request->digests_size()));
  }
  if (absl::Status st =
          CheckContextLimit(request->context_size(), max_context_bytes_);
      !st.ok()) {
    return ToGrpcStatus(st);
  }
  absl::StatusOr<ContentStore*> store = files_->For(ContentOwner(who));
  if (!store.ok()) return ToGrpcStatus(store.status());
  for (int i = 0; i < request->digests_size(); ++i) {
    const std::string& d = request->digests(i);
    absl::StatusOr<int64_t> size = (*store)->Stat(d);
    if (size.ok()) {
      (*store)->Touch(d);  // Told it is held: retention keeps it a while.
    } else if (absl::IsNotFound(size.status())) {
      response->add_missing(i);
    } else {
      return ToGrpcStatus(size.status());
    }
  }
  return grpc::Status::OK;
}

grpc::Status BuildServiceImpl::UploadContent(
    grpc::ServerContext* context,
    grpc::ServerReader<longshore::v1::UploadContentRequest>* reader,
    longshore::v1::UploadContentResponse*) {
  Identity who;
  if (grpc::Status s =
          authz_->Authorize(*context, Rpc::kUploadContent, "", &who);
      !s.ok()) {
    return s;
  }
  if (files_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "this scheduler does not take context manifests");
  }
  const std::string owner = ContentOwner(who);
  absl::StatusOr<ContentStore*> store = files_->For(owner);
  if (!store.ok()) return ToGrpcStatus(store.status());
  longshore::v1::UploadContentRequest req;
  std::unique_ptr<ContentStore::Writer> writer;
  // Verified contents wait under temporary names; one sync makes them all
  // durable before they are published (a sync per file would cost a disk
  // flush per small file).
  std::vector<std::unique_ptr<ContentStore::Writer>> verified;
  int64_t verified_bytes = 0;
  auto finish = [&]() -> absl::Status {
    if (writer == nullptr) return absl::OkStatus();
    absl::Status st = writer->Verify();
    if (st.ok()) {
      verified_bytes += writer->written();
      verified.push_back(std::move(writer));
    }
    writer.reset();
    return st;
  };
  while (reader->Read(&req)) {
    if (req.has_header()) {
      if (absl::Status st = finish(); !st.ok()) return ToGrpcStatus(st);
      const auto& h = req.header();
      if (h.size() < 0) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "UploadContent: header.size is negative");
      }
      if (absl::Status st = CheckContextLimit(h.size(), max_context_bytes_);
          !st.ok()) {
        return ToGrpcStatus(st);
      }
      // Counted against an identified submitter's quota; an open
      // scheduler's anonymous callers have none to count against.
      if (quota_ != nullptr && !owner.empty()) {
        if (absl::Status st = quota_->Check(owner, verified_bytes + h.size(),
                                            "context files");
            !st.ok()) {
          return ToGrpcStatus(st);
        }
      }
      absl::StatusOr<std::unique_ptr<ContentStore::Writer>> w =
          (*store)->NewWriter(h.digest(), h.size());
      if (!w.ok()) return ToGrpcStatus(w.status());
      writer = std::move(*w);
      continue;
    }
    if (writer == nullptr) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "UploadContent: data before a header");
    }
    if (absl::Status st = writer->Append(req.data()); !st.ok()) {
      return ToGrpcStatus(st);
    }
    metrics_->ContextBytesReceived(static_cast<int64_t>(req.data().size()));
  }
  if (context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  }
  if (absl::Status st = finish(); !st.ok()) return ToGrpcStatus(st);
  if (verified.empty()) return grpc::Status::OK;
  if (absl::Status st = (*store)->Sync(); !st.ok()) return ToGrpcStatus(st);
  for (auto& w : verified) {
    if (absl::Status st = w->Publish(); !st.ok()) return ToGrpcStatus(st);
  }
  if (quota_ != nullptr && !owner.empty()) quota_->Add(owner, verified_bytes);
  return grpc::Status::OK;
}

grpc::Status BuildServiceImpl::Watch(grpc::ServerContext* context,
                                     const longshore::v1::WatchRequest* request,
                                     grpc::ServerWriter<BuildEvent>* writer) {
  const std::string& id = request->build_id();
  if (grpc::Status s = authz_->Authorize(*context, Rpc::kWatch, id); !s.ok()) {
    return s;
  }
  uint64_t after = request->after_sequence();
  while (true) {
    if (context->IsCancelled() || stopping_->load()) {
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          "watch ended: the scheduler is stopping or the "
                          "client went away");
    }
    absl::StatusOr<std::vector<BuildEvent>> events =
        events_->Read(id, after, kWatchBatch);
    if (!events.ok()) return ToGrpcStatus(events.status());
    for (const BuildEvent& ev : *events) {
      if (!writer->Write(ev)) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      }
      after = ev.sequence();
      if (ev.has_build_finished()) return grpc::Status::OK;
    }
    if (!events->empty()) continue;
    if (request->no_follow()) return grpc::Status::OK;
    absl::StatusOr<bool> finished = events_->FinishedAfter(id, after);
    if (!finished.ok()) return ToGrpcStatus(finished.status());
    if (*finished) return grpc::Status::OK;
    events_->WaitForNewer(id, after, kWatchPoll);
  }
}

grpc::Status BuildServiceImpl::Cancel(
    grpc::ServerContext* context, const longshore::v1::CancelRequest* request,
    longshore::v1::CancelResponse* response) {
  if (grpc::Status s =
          authz_->Authorize(*context, Rpc::kCancel, request->build_id());
      !s.ok()) {
    return s;
  }
  absl::StatusOr<BuildState> state =
      coordinator_->Cancel(request->build_id(), request->reason());
  if (!state.ok()) return ToGrpcStatus(state.status());
  response->set_state(*state);
  return grpc::Status::OK;
}

grpc::Status BuildServiceImpl::GetBuild(
    grpc::ServerContext* context, const longshore::v1::GetBuildRequest* request,
    longshore::v1::BuildInfo* response) {
  if (grpc::Status s =
          authz_->Authorize(*context, Rpc::kGetBuild, request->build_id());
      !s.ok()) {
    return s;
  }
  absl::StatusOr<longshore::v1::BuildInfo> info =
      coordinator_->GetBuild(request->build_id());
  if (!info.ok()) return ToGrpcStatus(info.status());
  *response = std::move(*info);
  return grpc::Status::OK;
}

grpc::Status BuildServiceImpl::ListBuilds(
    grpc::ServerContext* context,
    const longshore::v1::ListBuildsRequest* request,
    longshore::v1::ListBuildsResponse* response) {
  Identity who;
  if (grpc::Status s = authz_->Authorize(*context, Rpc::kListBuilds, "", &who);
      !s.ok()) {
    return s;
  }
  std::vector<BuildState> states;
  for (int s : request->states()) states.push_back(static_cast<BuildState>(s));
  // A submitter asking for another's builds sees none of them.
  std::string submitter = authz_->ListFilter(who);
  if (submitter.empty()) {
    submitter = request->submitter();
  } else if (!request->submitter().empty() &&
             request->submitter() != submitter) {
    return grpc::Status::OK;
  }
  absl::StatusOr<std::vector<longshore::v1::BuildInfo>> builds =
      coordinator_->ListBuilds(states, request->limit(), submitter,
                               request->since_unix_nanos());
  if (!builds.ok()) return ToGrpcStatus(builds.status());
  for (auto& b : *builds) *response->add_builds() = std::move(b);
  return grpc::Status::OK;
}

grpc::Status BuildServiceImpl::FetchOutput(
    grpc::ServerContext* context,
    const longshore::v1::FetchOutputRequest* request,
    grpc::ServerWriter<longshore::v1::OutputChunk>* writer) {
  if (grpc::Status s =
          authz_->Authorize(*context, Rpc::kFetchOutput, request->build_id());
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> owner = coordinator_->CheckOutputReady(
      request->build_id(), request->output_index());
  if (!owner.ok()) return ToGrpcStatus(owner.status());
  absl::StatusOr<UniqueFd> fd =
      blobs_->OpenOutput(*owner, request->output_index());
  if (!fd.ok()) return ToGrpcStatus(fd.status());
  return ToGrpcStatus(
      StreamFile(fd->get(),
                 absl::StrCat("output ", request->output_index(), " of build ",
                              request->build_id()),
                 kOutputChunkBytes, writer));
}

}  // namespace longshore::scheduler
