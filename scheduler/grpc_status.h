// absl::Status <-> grpc::Status at the service boundary. The two share code
// numbers.
#ifndef LONGSHORE_SCHEDULER_GRPC_STATUS_H_
#define LONGSHORE_SCHEDULER_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace longshore::scheduler {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_GRPC_STATUS_H_
