#include "scheduler/admin_service.h"

#include "scheduler/grpc_status.h"

namespace longshore::scheduler {

grpc::Status AdminServiceImpl::ListWorkers(
    grpc::ServerContext* context, const longshore::v1::ListWorkersRequest*,
    longshore::v1::ListWorkersResponse* response) {
  if (grpc::Status s = authz_->Authorize(*context, Rpc::kListWorkers);
      !s.ok()) {
    return s;
  }
  for (auto& w : coordinator_->ListWorkers()) {
    *response->add_workers() = std::move(w);
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::SetDraining(
    const longshore::v1::DrainRequest& request, bool draining,
    longshore::v1::DrainResponse* response) {
  absl::StatusOr<longshore::v1::WorkerInfo> info =
      coordinator_->SetDraining(request.worker_id(), draining);
  if (!info.ok()) return ToGrpcStatus(info.status());
  *response->mutable_worker() = std::move(*info);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::Drain(grpc::ServerContext* context,
                                     const longshore::v1::DrainRequest* request,
                                     longshore::v1::DrainResponse* response) {
  if (grpc::Status s = authz_->Authorize(*context, Rpc::kDrain); !s.ok()) {
    return s;
  }
  return SetDraining(*request, true, response);
}

grpc::Status AdminServiceImpl::Undrain(
    grpc::ServerContext* context, const longshore::v1::DrainRequest* request,
    longshore::v1::DrainResponse* response) {
  if (grpc::Status s = authz_->Authorize(*context, Rpc::kUndrain); !s.ok()) {
    return s;
  }
  return SetDraining(*request, false, response);
}

}  // namespace longshore::scheduler
