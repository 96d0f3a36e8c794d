// BuildService for CI clients: context upload with dedup, submit, watch,
// cancel, get, list, and fetching client-side outputs.
#ifndef LONGSHORE_SCHEDULER_BUILD_SERVICE_H_
#define LONGSHORE_SCHEDULER_BUILD_SERVICE_H_

#include <atomic>

#include "absl/status/status.h"
#include "proto/longshore.grpc.pb.h"
#include "scheduler/authorization.h"
#include "scheduler/blob_store.h"
#include "scheduler/build_coordinator.h"
#include "scheduler/context_files.h"
#include "scheduler/event_log.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/storage_quota.h"

namespace longshore::scheduler {

// Checks a spec before anything is stored: a well-formed context digest, a
// non-negative size and a Dockerfile that parses. INVALID_ARGUMENT otherwise.
absl::Status ValidateSpec(const longshore::v1::BuildSpec& spec);

class BuildServiceImpl final : public longshore::v1::BuildService::Service {
 public:
  // Every call is first checked by `authz` (scheduler/authorization.h).
  BuildServiceImpl(BuildCoordinator* coordinator, EventLog* events,
                   BlobStore* blobs, SchedulerMetrics* metrics,
                   const std::atomic<bool>* stopping, const Authorizer* authz)
      : coordinator_(coordinator),
        events_(events),
        blobs_(blobs),
        metrics_(metrics),
        stopping_(stopping),
        authz_(authz) {}

  grpc::Status StatContext(
      grpc::ServerContext* context,
      const longshore::v1::StatContextRequest* request,
      longshore::v1::StatContextResponse* response) override;
  grpc::Status Submit(grpc::ServerContext* context,
                      grpc::ServerReader<longshore::v1::SubmitRequest>* reader,
                      longshore::v1::SubmitResponse* response) override;
  grpc::Status Watch(
      grpc::ServerContext* context, const longshore::v1::WatchRequest* request,
      grpc::ServerWriter<longshore::v1::BuildEvent>* writer) override;
  grpc::Status Cancel(grpc::ServerContext* context,
                      const longshore::v1::CancelRequest* request,
                      longshore::v1::CancelResponse* response) override;
  grpc::Status GetBuild(grpc::ServerContext* context,
                        const longshore::v1::GetBuildRequest* request,
                        longshore::v1::BuildInfo* response) override;
  grpc::Status ListBuilds(grpc::ServerContext* context,
                          const longshore::v1::ListBuildsRequest* request,
                          longshore::v1::ListBuildsResponse* response) override;
  grpc::Status FetchOutput(
      grpc::ServerContext* context,
      const longshore::v1::FetchOutputRequest* request,
      grpc::ServerWriter<longshore::v1::OutputChunk>* writer) override;

  // Content-addressed context sync (scheduler/context_files.h): uploads go
  // to the caller's own store, count against `quota` (may be null) and are
  // bounded, each and together, by `max_context_bytes` (0: unbounded).
  void EnableContextSync(ContextFiles* files, StorageQuota* quota,
                         int64_t max_context_bytes) {
    files_ = files;
    quota_ = quota;
    max_context_bytes_ = max_context_bytes;
  }
  grpc::Status FindMissingContent(
      grpc::ServerContext* context,
      const longshore::v1::FindMissingContentRequest* request,
      longshore::v1::FindMissingContentResponse* response) override;
  grpc::Status UploadContent(
      grpc::ServerContext* context,
      grpc::ServerReader<longshore::v1::UploadContentRequest>* reader,
      longshore::v1::UploadContentResponse* response) override;

 private:
  // For a spec with context_manifest: every chunk and file of the stored
  // root is in the submitter's store, and together within the limit.
  absl::Status CheckManifest(const longshore::v1::BuildSpec& spec,
                             const std::string& owner);

  // Stores the context streamed after the spec, or confirms the stored one.
  absl::Status ReceiveContext(
      const longshore::v1::BuildSpec& spec,
      grpc::ServerReader<longshore::v1::SubmitRequest>* reader);

  BuildCoordinator* coordinator_;
  EventLog* events_;
  BlobStore* blobs_;
  SchedulerMetrics* metrics_;
  const std::atomic<bool>* stopping_;
  const Authorizer* const authz_;
  ContextFiles* files_ = nullptr;
  StorageQuota* quota_ = nullptr;
  int64_t max_context_bytes_ = 0;
};

// Whose content store a caller's context files go to: its name, or "" for
// an anonymous caller of an open scheduler.
std::string ContentOwner(const Identity& who);

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_BUILD_SERVICE_H_
