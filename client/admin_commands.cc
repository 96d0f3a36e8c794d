#include "client/admin_commands.h"

#include <grpcpp/grpcpp.h>
#include <stdio.h>
#include <stdlib.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/progress.h"
#include "client/scheduler_channel.h"
#include "proto/longshore.grpc.pb.h"

namespace longshore::client {
namespace {

void PrintWorker(const v1::WorkerInfo& w) {
  printf("%-30s %5d %5d  %-9s %-9s %-14s %s\n", w.worker_id().c_str(),
         w.slots(), w.free_slots(), w.connected() ? "connected" : "gone",
         w.draining() ? "draining" : "active",
         w.platform().empty() ? "-" : w.platform().c_str(),
         absl::StrJoin(w.running_build_ids(), ",").c_str());
}

int Fail(const std::string& what, const grpc::Status& s) {
  fprintf(stderr, "ERROR: %s: %s\n", what.c_str(),
          DescribeCallError(s).c_str());
  return 1;
}

}  // namespace

int RunAdminCommand(const std::string& command,
                    const std::vector<std::string>& raw_args) {
  std::string scheduler;
  if (const char* env = getenv("LONGSHORE_SCHEDULER")) scheduler = env;
  std::vector<std::string> args;
  for (size_t i = 0; i < raw_args.size(); ++i) {
    const std::string& a = raw_args[i];
    if (a == "--scheduler" && i + 1 < raw_args.size()) {
      scheduler = raw_args[++i];
    } else if (a.rfind("--scheduler=", 0) == 0) {
      scheduler = a.substr(12);
    } else {
      args.push_back(a);
    }
  }
  if (scheduler.empty()) {
    fprintf(stderr,
            "longshore %s: pass --scheduler HOST:PORT or set "
            "LONGSHORE_SCHEDULER\n",
            command.c_str());
    return 2;
  }
  auto dialed = DialScheduler(scheduler, TlsFilesFromEnvironment());
  if (!dialed.ok()) {
    fprintf(stderr, "longshore %s: %s\n", command.c_str(),
            std::string(dialed.status().message()).c_str());
    return 2;
  }
  std::shared_ptr<grpc::Channel> channel = *dialed;
  if (command == "workers") {
    auto stub = v1::AdminService::NewStub(channel);
    grpc::ClientContext cc;
    v1::ListWorkersResponse resp;
    grpc::Status s = stub->ListWorkers(&cc, v1::ListWorkersRequest(), &resp);
    if (!s.ok()) return Fail("list workers", s);
    printf("%-30s %5s %5s  %-9s %-9s %-14s %s\n", "WORKER", "SLOTS", "FREE",
           "STREAM", "STATE", "PLATFORM", "BUILDS");
    for (const auto& w : resp.workers()) PrintWorker(w);
    return 0;
  }
  if (command == "drain" || command == "undrain") {
    if (args.size() != 1) {
      fprintf(stderr, "usage: longshore %s WORKER_ID\n", command.c_str());
      return 2;
    }
    auto stub = v1::AdminService::NewStub(channel);
    grpc::ClientContext cc;
    v1::DrainRequest req;
    req.set_worker_id(args[0]);
    v1::DrainResponse resp;
    grpc::Status s = command == "drain" ? stub->Drain(&cc, req, &resp)
                                        : stub->Undrain(&cc, req, &resp);
    if (!s.ok()) return Fail(command, s);
    PrintWorker(resp.worker());
    return 0;
  }
  if (command == "cancel") {
    if (args.size() != 1) {
      fprintf(stderr, "usage: longshore cancel BUILD_ID\n");
      return 2;
    }
    auto stub = v1::BuildService::NewStub(channel);
    grpc::ClientContext cc;
    v1::CancelRequest req;
    req.set_build_id(args[0]);
    req.set_reason("cancelled with longshore cancel");
    v1::CancelResponse resp;
    grpc::Status s = stub->Cancel(&cc, req, &resp);
    if (!s.ok()) return Fail("cancel", s);
    printf("%s %s\n", args[0].c_str(), BuildStateName(resp.state()));
    return 0;
  }
  fprintf(stderr, "longshore: unknown command %s\n", command.c_str());
  return 2;
}

}  // namespace longshore::client
