// Streaming layer compression and decompression: gzip (compressed in parallel
// blocks the way pigz does it: by default with ISA-L's igzip, with zlib when a
// level is given), zstd (libzstd), or none.
//
// Determinism: the compressed bytes depend only on the input, the algorithm and
// the level (and the library's version), never on the thread count or on thread
// timing. Gzip splits the input into fixed 256 KiB blocks, each deflated with
// the previous block's last 32 KiB as its dictionary and ended with a sync
// flush; the blocks concatenate into one ordinary gzip member (header with
// mtime 0, no file name, OS 255; CRC-32 combined). The default deflater is
// igzip level 1 (about 5x zlib 6's speed per core, output about 3% larger on a
// mixed tree and up to 15% on executables); igzip chooses code by CPU
// features, and gives the same bytes on every x86-64 CPU with SSE4.2. Zstd
// always runs libzstd's multi-threaded mode with at least one worker, whose
// output does not depend on the worker count.
#ifndef LONGSHORE_IMAGE_COMPRESSION_H_
#define LONGSHORE_IMAGE_COMPRESSION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/sha256.h"
#include "image/oci.h"

namespace longshore::image {

// Where compressed bytes go: a file descriptor, with the sha256 and byte count
// of everything written.
class DigestingFdSink {
 public:
  // `fd` is borrowed; `name` appears in error messages.
  DigestingFdSink(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  absl::Status Write(const void* data, size_t size);
  int64_t bytes() const { return bytes_; }
  // "sha256:<hex>"; call once, after the last Write.
  std::string Digest() { return sha_.Digest(); }

 private:
  int fd_;
  std::string name_;
  Sha256 sha_;
  int64_t bytes_ = 0;
};

// Compresses a byte stream into a DigestingFdSink.
class Compressor {
 public:
  virtual ~Compressor() = default;
  virtual absl::Status Write(const void* data, size_t size) = 0;
  // Flushes everything and writes the trailer. No Write afterwards.
  virtual absl::Status Finish() = 0;
};

struct CompressorOptions {
  Compression compression = Compression::kGzip;
  // -1 picks the default: gzip by igzip level 1, zstd 3. Gzip 0..9 is zlib at
  // that level.
  int level = -1;
  // Compression threads; 0 means the number of online CPUs.
  int threads = 0;
};

// `out` must outlive the compressor.
absl::StatusOr<std::unique_ptr<Compressor>> NewCompressor(
    const CompressorOptions& opts, DigestingFdSink* out);

struct PipelineOptions {
  // Bytes per hand-over between the two threads.
  size_t chunk_size = 1 << 20;
  // Chunks that may wait for the compressing thread before Write blocks. The
  // default lets the tree walk run up to 64 MiB ahead: a layer's big files
  // keep the compressor busy while the walk races ahead, and its many small
  // files (slow to read, fast to compress) then drain that lead.
  int max_chunks = 64;
};

// Runs `inner` on a thread of its own behind a bounded queue, so that the
// producer (the tar writer walking a tree) keeps going while the compressor
// waits for its workers or for the disk, and the other way round. Write copies
// the bytes into chunks and blocks only while `max_chunks` full chunks wait.
// The compressing thread feeds every byte, in the order written, to
// `uncompressed` (when not null; it must outlive the returned object) and then
// to `inner`, so the compressed bytes are exactly those `inner` alone would
// write. Once `inner` fails, Write and Finish return its error. Destroying the
// object without Finish abandons the stream and joins the thread.
std::unique_ptr<Compressor> NewPipelinedCompressor(
    std::unique_ptr<Compressor> inner, Sha256* uncompressed,
    const PipelineOptions& opts = {});

// The stream format told by the first bytes of a blob.
Compression DetectCompression(const unsigned char* head, size_t size);

// Reads the uncompressed stream of a blob from an fd, detecting gzip (one or
// more members), zstd (one or more frames) or an uncompressed tar by magic.
// Keeps the sha256 of the compressed bytes read and of the uncompressed bytes
// returned.
class DecompressingReader {
 public:
  static absl::StatusOr<std::unique_ptr<DecompressingReader>> Open(
      int fd, std::string name);
  virtual ~DecompressingReader() = default;
  // Up to `size` uncompressed bytes; 0 at the end of the stream. A truncated or
  // corrupt stream is an error naming the blob.
  virtual absl::StatusOr<size_t> Read(void* buf, size_t size) = 0;
  virtual Compression compression() const = 0;

  // Total uncompressed bytes returned so far.
  int64_t uncompressed_bytes() const { return uncompressed_bytes_; }
  int64_t compressed_bytes() const { return compressed_bytes_; }
  // Reads to the end, then returns "sha256:<hex>" of the uncompressed stream
  // (the diffID) / of the compressed bytes (the blob digest). Call each once.
  absl::StatusOr<std::string> FinishUncompressedDigest();
  std::string CompressedDigest() { return compressed_sha_.Digest(); }

 protected:
  DecompressingReader(int fd, std::string name)
      : fd_(fd), name_(std::move(name)) {}
  // Reads raw bytes from the fd, hashing them.
  absl::StatusOr<size_t> ReadRaw(void* buf, size_t size);
  void CountOut(const void* data, size_t n) {
    uncompressed_sha_.Update(data, n);
    uncompressed_bytes_ += static_cast<int64_t>(n);
  }

  int fd_;
  std::string name_;

 private:
  Sha256 compressed_sha_;
  Sha256 uncompressed_sha_;
  int64_t compressed_bytes_ = 0;
  int64_t uncompressed_bytes_ = 0;
};

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_COMPRESSION_H_
