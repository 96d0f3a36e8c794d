#include "scheduler/scheduler_info_service.h"

namespace longshore::scheduler {

grpc::Status SchedulerInfoServiceImpl::GetSchedulerInfo(
    grpc::ServerContext* context,
    const longshore::v1::GetSchedulerInfoRequest* /*request*/,
    longshore::v1::SchedulerInfo* response) {
  if (grpc::Status s = authz_->Authorize(*context, Rpc::kGetSchedulerInfo);
      !s.ok()) {
    return s;
  }
  response->set_web_url(web_url_);
  return grpc::Status::OK;
}

}  // namespace longshore::scheduler
