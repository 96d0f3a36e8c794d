// WorkerService: the long-lived Connect stream of each worker, context download
// and output upload.
#ifndef LONGSHORE_SCHEDULER_WORKER_SERVICE_H_
#define LONGSHORE_SCHEDULER_WORKER_SERVICE_H_

#include <string>

#include "proto/longshore.grpc.pb.h"
#include "scheduler/authorization.h"
#include "scheduler/blob_store.h"
#include "scheduler/build_coordinator.h"

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

 private:
  BuildCoordinator* coordinator_;
  BlobStore* blobs_;
  const Authorizer* const authz_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_WORKER_SERVICE_H_
