#include "scheduler/worker_service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "scheduler/grpc_status.h"
#include "scheduler/stream_file.h"

namespace longshore::scheduler {
namespace {

using longshore::v1::SchedulerMessage;
using longshore::v1::WorkerMessage;

constexpr size_t kContextChunkBytes = 64 << 10;
constexpr size_t kContextFileChunkBytes = 1 << 20;

// Messages to one worker go through a queue drained by one writer thread: gRPC
// allows a single writer per stream, while the coordinator sends from whichever
// thread handles the event that caused the message.
class StreamWorkerChannel : public WorkerChannel {
 public:
  StreamWorkerChannel(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<SchedulerMessage, WorkerMessage>* stream)
      : context_(context), stream_(stream) {
    writer_ = std::thread([this] { WriteLoop(); });
  }
  ~StreamWorkerChannel() override { Finish(); }

  void Send(const SchedulerMessage& message) override {
    absl::MutexLock lock(&mu_);
    if (!finished_) outgoing_.push_back(message);
  }

  void Close() override {
    absl::MutexLock lock(&mu_);
    if (context_ != nullptr) context_->TryCancel();
  }

  // Called by the handler before it returns: writes what is queued, stops the
  // writer and forgets the stream, which dies with the handler.
  void Finish() {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    writer_.join();
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
  }

 private:
  void WriteLoop() {
    while (true) {
      SchedulerMessage message;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](StreamWorkerChannel* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
              return !c->outgoing_.empty() || c->finished_;
            },
            this));
        if (outgoing_.empty()) return;  // Finished and drained.
        message = std::move(outgoing_.front());
        outgoing_.pop_front();
      }
      if (!stream_->Write(message)) {
        // The worker is gone; the read loop notices and disconnects it.
        absl::MutexLock lock(&mu_);
        outgoing_.clear();
        if (context_ != nullptr) context_->TryCancel();
      }
    }
  }

  absl::Mutex mu_;
  grpc::ServerContext* context_ ABSL_GUARDED_BY(mu_);
  grpc::ServerReaderWriter<SchedulerMessage, WorkerMessage>* const stream_;
  std::deque<SchedulerMessage> outgoing_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace

grpc::Status WorkerServiceImpl::Connect(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<SchedulerMessage, WorkerMessage>* stream) {
  Identity who;
  if (grpc::Status s = authz_->Authorize(*context, Rpc::kConnect, "", &who);
      !s.ok()) {
    return s;
  }
  WorkerMessage message;
  if (!stream->Read(&message)) {
    return grpc::Status(grpc::StatusCode::CANCELLED,
                        "Connect: stream ended before Register");
  }
  if (!message.has_register_()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "Connect: the first message must be Register");
  }
  auto channel = std::make_shared<StreamWorkerChannel>(context, stream);
  absl::StatusOr<uint64_t> connection =
      coordinator_->ConnectWorker(message.register_(), channel, who.name);
  if (!connection.ok()) {
    channel->Finish();
    return ToGrpcStatus(connection.status());
  }
  while (stream->Read(&message)) {
    coordinator_->HandleWorkerMessage(*connection, message);
  }
  coordinator_->DisconnectWorker(*connection);
  channel->Finish();
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::FetchContext(
    grpc::ServerContext* context,
    const longshore::v1::FetchContextRequest* request,
    grpc::ServerWriter<longshore::v1::ContextChunk>* writer) {
  if (request->build_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "FetchContext: build_id is empty: a worker reads the "
                        "context of a build leased to it");
  }
  if (grpc::Status s =
          authz_->Authorize(*context, Rpc::kFetchContext, request->build_id(),
                            nullptr, request->digest());
      !s.ok()) {
    return s;
  }
  absl::StatusOr<UniqueFd> fd = blobs_->OpenContext(request->digest());
  if (!fd.ok()) return ToGrpcStatus(fd.status());
  return ToGrpcStatus(StreamFile(fd->get(), "context " + request->digest(),
                                 kContextChunkBytes, writer));
}

absl::StatusOr<std::shared_ptr<const WorkerServiceImpl::BuildContents>>
WorkerServiceImpl::ContentsOf(const std::string& build_id) {
  {
    absl::MutexLock l(&mu_);
    auto it = contents_.find(build_id);
    if (it != contents_.end()) return it->second;
  }
  absl::StatusOr<longshore::v1::BuildInfo> info =
      coordinator_->GetBuild(build_id);
  if (!info.ok()) return info.status();
  const longshore::v1::BuildSpec& spec = info->spec();
  if (!spec.context_manifest()) {
    return absl::FailedPreconditionError(
        absl::StrCat("build ", build_id,
                     " has a context tar, not a manifest: use FetchContext"));
  }
  ASSIGN_OR_RETURN(std::string path,
                   blobs_->ContextPath(spec.context_digest()));
  ASSIGN_OR_RETURN(std::string root, ReadFile(path));
  auto out = std::make_shared<BuildContents>();
  out->owner = open_ ? "" : spec.submitter();
  ASSIGN_OR_RETURN(out->contents, files_->Resolve(out->owner, root));
  absl::MutexLock l(&mu_);
  // A handful of builds fetch at once; the rest are done with theirs.
  if (contents_.size() >= 16) contents_.clear();
  contents_[build_id] = out;
  return std::shared_ptr<const BuildContents>(out);
}

grpc::Status WorkerServiceImpl::FetchContextFiles(
    grpc::ServerContext* context,
    const longshore::v1::FetchContextFilesRequest* request,
    grpc::ServerWriter<longshore::v1::ContextFileChunk>* writer) {
  if (request->build_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "FetchContextFiles: build_id is empty: a worker reads "
                        "the context of a build leased to it");
  }
  if (grpc::Status s = authz_->Authorize(*context, Rpc::kFetchContextFiles,
                                         request->build_id());
      !s.ok()) {
    return s;
  }
  if (files_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "this scheduler does not take context manifests");
  }
  absl::StatusOr<std::shared_ptr<const BuildContents>> contents =
      ContentsOf(request->build_id());
  if (!contents.ok()) return ToGrpcStatus(contents.status());
  absl::StatusOr<ContentStore*> store = files_->For((*contents)->owner);
  if (!store.ok()) return ToGrpcStatus(store.status());
  // Checked first: nothing outside the build's context is ever sent.
  for (const std::string& d : request->digests()) {
    if (!(*contents)->contents.digests.contains(d)) {
      return grpc::Status(
          grpc::StatusCode::PERMISSION_DENIED,
          absl::StrCat("FetchContextFiles: ", d, " is not part of build ",
                       request->build_id(), "'s context"));
    }
  }
  std::string buf(kContextFileChunkBytes, '\0');
  for (int i = 0; i < request->digests_size(); ++i) {
    absl::StatusOr<UniqueFd> fd = (*store)->Open(request->digests(i));
    if (!fd.ok()) return ToGrpcStatus(fd.status());
    struct stat st;
    if (fstat(fd->get(), &st) != 0) {
      return ToGrpcStatus(ErrnoStatus(errno, "fstat(%s)", request->digests(i)));
    }
    int64_t left = st.st_size;
    do {
      ssize_t n = 0;
      if (left > 0) {
        n = read(fd->get(), buf.data(),
                 static_cast<size_t>(std::min<int64_t>(
                     left, static_cast<int64_t>(buf.size()))));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          return ToGrpcStatus(
              ErrnoStatus(errno, "read(%s)", request->digests(i)));
        }
        if (n == 0) {
          return grpc::Status(grpc::StatusCode::DATA_LOSS,
                              absl::StrCat(request->digests(i), " shrank"));
        }
      }
      left -= n;
      longshore::v1::ContextFileChunk chunk;
      chunk.set_index(i);
      chunk.set_data(buf.data(), static_cast<size_t>(n));
      chunk.set_last(left == 0);
      if (!writer->Write(chunk)) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "worker went away");
      }
    } while (left > 0);
  }
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::UploadOutput(
    grpc::ServerContext* context,
    grpc::ServerReader<longshore::v1::UploadOutputRequest>* reader,
    longshore::v1::UploadOutputResponse*) {
  longshore::v1::UploadOutputRequest req;
  if (!reader->Read(&req) || !req.has_header()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "UploadOutput: the first message must be the header");
  }
  const auto header = req.header();
  if (grpc::Status s =
          authz_->Authorize(*context, Rpc::kUploadOutput, header.build_id());
      !s.ok()) {
    return s;
  }
  if (!IsValidDigest(header.digest())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("UploadOutput: digest \"", header.digest(),
                                     "\" is not sha256:<64 hex>"));
  }
  absl::Status st = coordinator_->CheckUploadAllowed(
      header.build_id(), header.attempt(), header.output_index());
  if (!st.ok()) return ToGrpcStatus(st);
  absl::StatusOr<std::unique_ptr<VerifiedFileWriter>> writer =
      blobs_->NewOutputWriter(header.build_id());
  if (!writer.ok()) return ToGrpcStatus(writer.status());
  while (reader->Read(&req)) {
    if (!req.has_data()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "UploadOutput: only the first message is a header");
    }
    st = (*writer)->Append(req.data());
    if (!st.ok()) return ToGrpcStatus(st);
  }
  return ToGrpcStatus(coordinator_->CommitOutput(
      header.build_id(), header.attempt(), header.output_index(),
      header.digest(), writer->get()));
}

}  // namespace longshore::scheduler
