// rpc_probe: makes one scheduler RPC as whoever LONGSHORE_TOKEN (or the
// LONGSHORE_TLS_* files) says, and prints its outcome, for the tenancy test's
// table of cross-tenant attempts. Unlike the longshore client it sends a
// token over any transport, so the scheduler's own refusal can be seen.
//
//   rpc_probe ADDRESS get|watch|cancel BUILD
//   rpc_probe ADDRESS fetch-output BUILD INDEX
//   rpc_probe ADDRESS fetch-context BUILD DIGEST
//   rpc_probe ADDRESS list | workers | connect WORKER_ID
//   rpc_probe ADDRESS find-missing DIGEST
//   rpc_probe ADDRESS upload-content DIGEST BYTES
//   rpc_probe ADDRESS fetch-context-files BUILD DIGEST
//
// Prints "OK <detail>" and exits 0, or "<CODE>: <message>" and exits 1.
#include <stdio.h>
#include <stdlib.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/bearer_token.h"
#include "common/grpc_tls.h"
#include "grpcpp/grpcpp.h"
#include "proto/longshore.grpc.pb.h"

namespace v1 = longshore::v1;

namespace {

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    default:
      return "ERROR";
  }
}

int Report(const grpc::Status& s, const std::string& detail) {
  if (s.ok()) {
    printf("OK %s\n", detail.c_str());
    return 0;
  }
  printf("%s: %s\n", CodeName(s.error_code()), s.error_message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: rpc_probe ADDRESS OP [ARGS]\n");
    return 2;
  }
  const std::string address = argv[1];
  const std::string op = argv[2];
  auto arg = [&](int i) { return std::string(i < argc ? argv[i] : ""); };
  longshore::TlsFiles tls;
  if (const char* v = getenv("LONGSHORE_TLS_CA")) tls.ca = v;
  if (const char* v = getenv("LONGSHORE_TLS_CERT")) tls.cert = v;
  if (const char* v = getenv("LONGSHORE_TLS_KEY")) tls.key = v;
  auto credentials = longshore::ClientCredentials(tls);
  if (!credentials.ok()) {
    fprintf(stderr, "rpc_probe: %s\n",
            std::string(credentials.status().message()).c_str());
    return 2;
  }
  const char* token = getenv("LONGSHORE_TOKEN");
  grpc::ChannelArguments args;
  auto channel = longshore::CreateChannelWithToken(
      address, *credentials, args, token != nullptr ? token : "");
  auto builds = v1::BuildService::NewStub(channel);
  auto workers = v1::WorkerService::NewStub(channel);
  auto admin = v1::AdminService::NewStub(channel);
  grpc::ClientContext cc;
  cc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));

  if (op == "get") {
    v1::GetBuildRequest req;
    req.set_build_id(arg(3));
    v1::BuildInfo info;
    grpc::Status s = builds->GetBuild(&cc, req, &info);
    return Report(
        s, absl::StrCat(info.build_id(), " submitter=", info.spec().submitter(),
                        " context=", info.spec().context_digest()));
  }
  if (op == "watch") {
    v1::WatchRequest req;
    req.set_build_id(arg(3));
    auto reader = builds->Watch(&cc, req);
    v1::BuildEvent ev;
    int n = 0;
    // The first events are enough to show access; do not wait for the end.
    while (n < 1 && reader->Read(&ev)) ++n;
    if (n > 0) {
      cc.TryCancel();
      reader->Finish();
      return Report(grpc::Status::OK, absl::StrCat(n, " events"));
    }
    return Report(reader->Finish(), "0 events");
  }
  if (op == "cancel") {
    v1::CancelRequest req;
    req.set_build_id(arg(3));
    req.set_reason("probe");
    v1::CancelResponse resp;
    grpc::Status s = builds->Cancel(&cc, req, &resp);
    return Report(s, v1::BuildState_Name(resp.state()));
  }
  if (op == "list") {
    v1::ListBuildsRequest req;
    v1::ListBuildsResponse resp;
    grpc::Status s = builds->ListBuilds(&cc, req, &resp);
    std::string ids;
    for (const auto& b : resp.builds()) {
      absl::StrAppend(&ids, " ", b.build_id(), ":", b.spec().submitter());
    }
    return Report(s, absl::StrCat(resp.builds_size(), " builds", ids));
  }
  if (op == "fetch-output") {
    v1::FetchOutputRequest req;
    req.set_build_id(arg(3));
    req.set_output_index(atoi(arg(4).c_str()));
    auto reader = builds->FetchOutput(&cc, req);
    v1::OutputChunk chunk;
    size_t bytes = 0;
    while (reader->Read(&chunk)) bytes += chunk.data().size();
    return Report(reader->Finish(), absl::StrCat(bytes, " bytes"));
  }
  if (op == "fetch-context") {
    v1::FetchContextRequest req;
    req.set_build_id(arg(3));
    req.set_digest(arg(4));
    auto reader = workers->FetchContext(&cc, req);
    v1::ContextChunk chunk;
    size_t bytes = 0;
    while (reader->Read(&chunk)) bytes += chunk.data().size();
    return Report(reader->Finish(), absl::StrCat(bytes, " bytes"));
  }
  if (op == "find-missing") {
    v1::FindMissingContentRequest req;
    req.add_digests(arg(3));
    v1::FindMissingContentResponse resp;
    grpc::Status s = builds->FindMissingContent(&cc, req, &resp);
    return Report(s, resp.missing_size() > 0 ? "missing" : "held");
  }
  if (op == "upload-content") {
    v1::UploadContentResponse resp;
    auto writer = builds->UploadContent(&cc, &resp);
    v1::UploadContentRequest header;
    header.mutable_header()->set_digest(arg(3));
    header.mutable_header()->set_size(static_cast<int64_t>(arg(4).size()));
    v1::UploadContentRequest data;
    data.set_data(arg(4));
    if (writer->Write(header)) writer->Write(data);
    writer->WritesDone();
    return Report(writer->Finish(), "uploaded");
  }
  if (op == "fetch-context-files") {
    v1::FetchContextFilesRequest req;
    req.set_build_id(arg(3));
    req.add_digests(arg(4));
    auto reader = workers->FetchContextFiles(&cc, req);
    v1::ContextFileChunk chunk;
    size_t bytes = 0;
    while (reader->Read(&chunk)) bytes += chunk.data().size();
    return Report(reader->Finish(), absl::StrCat(bytes, " bytes"));
  }
  if (op == "workers") {
    v1::ListWorkersResponse resp;
    grpc::Status s = admin->ListWorkers(&cc, v1::ListWorkersRequest(), &resp);
    return Report(s, absl::StrCat(resp.workers_size(), " workers"));
  }
  if (op == "connect") {
    auto stream = workers->Connect(&cc);
    v1::WorkerMessage reg;
    reg.mutable_register_()->set_worker_id(arg(3));
    reg.mutable_register_()->set_slots(1);
    reg.mutable_register_()->set_version("probe");
    stream->Write(reg);
    v1::SchedulerMessage m;
    if (stream->Read(&m) && m.has_registered()) {
      cc.TryCancel();
      stream->Finish();
      return Report(grpc::Status::OK, "registered");
    }
    stream->WritesDone();
    return Report(stream->Finish(), "");
  }
  fprintf(stderr, "rpc_probe: unknown op %s\n", op.c_str());
  return 2;
}
