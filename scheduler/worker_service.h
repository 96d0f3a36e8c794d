// WorkerService: the long-lived Connect stream of each worker, context download
// and output upload.
#ifndef LONGSHORE_SCHEDULER_WORKER_SERVICE_H_
#define LONGSHORE_SCHEDULER_WORKER_SERVICE_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "proto/longshore.grpc.pb.h"
#include "scheduler/authorization.h"
#include "scheduler/blob_store.h"
#include "scheduler/build_coordinator.h"
#include "scheduler/context_files.h"

namespace longshore::scheduler {

class WorkerServiceImpl final : public longshore::v1::WorkerService::Service {
 public:
  // Every call is first checked by `authz` (scheduler/authorization.h).
  WorkerServiceImpl(BuildCoordinator* coordinator, BlobStore* blobs,
                    const Authorizer* authz)
      : coordinator_(coordinator), blobs_(blobs), authz_(authz) {}

  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<longshore::v1::SchedulerMessage,
                               longshore::v1::WorkerMessage>* stream) override;
  grpc::Status FetchContext(
      grpc::ServerContext* context,
      const longshore::v1::FetchContextRequest* request,
      grpc::ServerWriter<longshore::v1::ContextChunk>* writer) override;
  grpc::Status UploadOutput(
      grpc::ServerContext* context,
      grpc::ServerReader<longshore::v1::UploadOutputRequest>* reader,
      longshore::v1::UploadOutputResponse* response) override;

  // Content-addressed context sync: `open` is whether the scheduler is
  // open (its context files then belong to the anonymous owner "").
  void EnableContextSync(ContextFiles* files, bool open) {
    files_ = files;
    open_ = open;
  }
  grpc::Status FetchContextFiles(
      grpc::ServerContext* context,
      const longshore::v1::FetchContextFilesRequest* request,
      grpc::ServerWriter<longshore::v1::ContextFileChunk>* writer) override;

 private:
  // The owner and the chunks and files of the build's context manifest,
  // remembered for the few builds fetched most recently.
  struct BuildContents {
    std::string owner;
    ManifestContents contents;
  };
  absl::StatusOr<std::shared_ptr<const BuildContents>> ContentsOf(
      const std::string& build_id);

  BuildCoordinator* coordinator_;
  BlobStore* blobs_;
  const Authorizer* const authz_;
  ContextFiles* files_ = nullptr;
  bool open_ = false;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const BuildContents>>
      contents_ ABSL_GUARDED_BY(mu_);
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_WORKER_SERVICE_H_
