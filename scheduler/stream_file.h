// Sends a file over a gRPC server stream in fixed-size chunks.
#ifndef LONGSHORE_SCHEDULER_STREAM_FILE_H_
#define LONGSHORE_SCHEDULER_STREAM_FILE_H_

#include <errno.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "common/errno_status.h"
#include "grpcpp/support/sync_stream.h"

namespace longshore::scheduler {

// Reads `fd` to its end, writing each chunk as a `Chunk` message with its
// `data` set. CANCELLED when the peer goes away.
template <typename Chunk>
absl::Status StreamFile(int fd, const std::string& what, size_t chunk_size,
                        grpc::ServerWriter<Chunk>* writer) {
  std::string buf(chunk_size, '\0');
  Chunk chunk;
  while (true) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read(%s)", what);
    }
    if (n == 0) return absl::OkStatus();
    chunk.set_data(buf.data(), static_cast<size_t>(n));
    if (!writer->Write(chunk)) {
      return absl::CancelledError("client went away while reading " + what);
    }
  }
}

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_STREAM_FILE_H_
