// AdminService for operators: list workers, drain and undrain them.
#ifndef LONGSHORE_SCHEDULER_ADMIN_SERVICE_H_
#define LONGSHORE_SCHEDULER_ADMIN_SERVICE_H_

#include <string>

#include "proto/longshore.grpc.pb.h"
#include "scheduler/authorization.h"
#include "scheduler/build_coordinator.h"

namespace longshore::scheduler {

class AdminServiceImpl final : public longshore::v1::AdminService::Service {
 public:
  // Every call is first checked by `authz` (scheduler/authorization.h).
  AdminServiceImpl(BuildCoordinator* coordinator, const Authorizer* authz)
      : coordinator_(coordinator), authz_(authz) {}

  grpc::Status ListWorkers(
      grpc::ServerContext* context,
      const longshore::v1::ListWorkersRequest* request,
      longshore::v1::ListWorkersResponse* response) override;
  grpc::Status Drain(grpc::ServerContext* context,
                     const longshore::v1::DrainRequest* request,
                     longshore::v1::DrainResponse* response) override;
  grpc::Status Undrain(grpc::ServerContext* context,
                       const longshore::v1::DrainRequest* request,
                       longshore::v1::DrainResponse* response) override;

 private:
  grpc::Status SetDraining(const longshore::v1::DrainRequest& request,
                           bool draining,
                           longshore::v1::DrainResponse* response);

  BuildCoordinator* coordinator_;
  const Authorizer* const authz_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_ADMIN_SERVICE_H_
