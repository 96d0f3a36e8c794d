// SchedulerInfoService: what a client may show its user about this scheduler
// (the web page's address, for a link to each build).
#ifndef LONGSHORE_SCHEDULER_SCHEDULER_INFO_SERVICE_H_
#define LONGSHORE_SCHEDULER_SCHEDULER_INFO_SERVICE_H_

#include <string>

#include "proto/longshore.grpc.pb.h"
#include "scheduler/authorization.h"

namespace longshore::scheduler {

class SchedulerInfoServiceImpl final
    : public longshore::v1::SchedulerInfoService::Service {
 public:
  // `web_url`: the advertised address of the web page; empty when none.
  SchedulerInfoServiceImpl(std::string web_url, const Authorizer* authz)
      : web_url_(std::move(web_url)), authz_(authz) {}

  grpc::Status GetSchedulerInfo(
      grpc::ServerContext* context,
      const longshore::v1::GetSchedulerInfoRequest* request,
      longshore::v1::SchedulerInfo* response) override;

 private:
  const std::string web_url_;
  const Authorizer* const authz_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_SCHEDULER_INFO_SERVICE_H_
