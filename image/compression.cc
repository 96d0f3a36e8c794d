#include "image/compression.h"

#include <errno.h>
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/errno_status.h"
#include "common/status_macros.h"

namespace longshore::image {
namespace {

constexpr size_t kGzipBlockSize = 256 << 10;
constexpr size_t kDeflateWindow = 32 << 10;
constexpr int kInFlightPerThread = 16;
// The gzip "level" of the default: ISA-L's igzip instead of zlib.
constexpr int kIgzipLevel = -1;

int DefaultThreads(int requested) {
  if (requested > 0) return requested;
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// ---------------------------------------------------------------------------
// Gzip in independent blocks.

struct GzipBlock {
  std::string input;
  std::string dictionary;  // last 32 KiB of the previous block's input
  bool final = false;
  // Results.
  std::string output;
  uLong crc = 0;
  absl::Status status;
  bool done = false;
};

// Deflates one block as raw deflate data that ends byte-aligned (sync flush),
// or with the final bit set when `block->final`, and sets its CRC-32. One per
// thread, reused across blocks.
class BlockDeflater {
 public:
  virtual ~BlockDeflater() = default;
  virtual void Run(GzipBlock* block) = 0;
};

// The CRC-32 of gzip (ISA-L's folding implementation; equal to zlib's crc32).
uLong BlockCrc(const std::string& input) {
  return crc32_gzip_refl(
      0, reinterpret_cast<const unsigned char*>(input.data()), input.size());
}

// A raw-deflate stream reused across blocks: deflateReset keeps its allocations
// and gives the same output as a fresh deflateInit2 with the same parameters.
class ZlibDeflater : public BlockDeflater {
 public:
  explicit ZlibDeflater(int level) : level_(level) {}
  ~ZlibDeflater() override {
    if (initialized_) deflateEnd(&z_);
  }
  ZlibDeflater(const ZlibDeflater&) = delete;
  ZlibDeflater& operator=(const ZlibDeflater&) = delete;

  void Run(GzipBlock* block) override {
    if (!initialized_) {
      if (deflateInit2(&z_, level_, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
          Z_OK) {
        block->status = absl::InternalError("deflateInit2 failed");
        return;
      }
      initialized_ = true;
    } else if (deflateReset(&z_) != Z_OK) {
      block->status = absl::InternalError("deflateReset failed");
      return;
    }
    if (!block->dictionary.empty()) {
      deflateSetDictionary(
          &z_, reinterpret_cast<const Bytef*>(block->dictionary.data()),
          static_cast<uInt>(block->dictionary.size()));
    }
    // deflateBound covers Z_FINISH; a sync flush adds at most 5 bytes more.
    block->output.resize(deflateBound(&z_, block->input.size()) + 64);
    z_.next_in = reinterpret_cast<Bytef*>(block->input.data());
    z_.avail_in = static_cast<uInt>(block->input.size());
    size_t produced = 0;
    int flush = block->final ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
      z_.next_out = reinterpret_cast<Bytef*>(&block->output[produced]);
      z_.avail_out = static_cast<uInt>(block->output.size() - produced);
      int rc = deflate(&z_, flush);
      produced = block->output.size() - z_.avail_out;
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        block->status = absl::InternalError(absl::StrCat("deflate: ", rc));
        return;
      }
      if (!block->final && z_.avail_in == 0 && z_.avail_out > 0) break;
      if (z_.avail_out == 0) block->output.resize(block->output.size() * 2);
    }
    block->output.resize(produced);
    block->crc = BlockCrc(block->input);
  }

 private:
  const int level_;
  z_stream z_{};
  bool initialized_ = false;
};

// ISA-L's igzip at its level 1: several times zlib's speed, output a few
// percent larger than zlib's level 6. A fresh stream state per block (the
// previous block's tail as dictionary), so a block's bytes depend only on its
// input and dictionary. The deflate stream is the library's own choice of
// matches: it can change with the ISA-L version, and ISA-L picks code paths by
// CPU features (the same bytes on every x86-64 CPU with SSE4.2 and on each
// other architecture, not necessarily across architectures).
class IgzipDeflater : public BlockDeflater {
 public:
  static constexpr int kLevel = 1;
  IgzipDeflater() : level_buf_(ISAL_DEF_LVL1_DEFAULT) {}

  void Run(GzipBlock* block) override {
    isal_zstream& z = *z_;
    isal_deflate_init(&z);
    z.level = kLevel;
    z.level_buf = level_buf_.data();
    z.level_buf_size = static_cast<uint32_t>(level_buf_.size());
    z.gzip_flag = IGZIP_DEFLATE;
    z.flush = block->final ? NO_FLUSH : SYNC_FLUSH;
    z.end_of_stream = block->final ? 1 : 0;
    if (!block->dictionary.empty()) {
      int rc = isal_deflate_set_dict(
          &z, reinterpret_cast<uint8_t*>(block->dictionary.data()),
          static_cast<uint32_t>(block->dictionary.size()));
      if (rc != COMP_OK) {
        block->status =
            absl::InternalError(absl::StrCat("isal_deflate_set_dict: ", rc));
        return;
      }
    }
    // Stored blocks bound the output: 5 bytes per 64 KiB, plus the flush.
    block->output.resize(block->input.size() + block->input.size() / 1024 +
                         1024);
    z.next_in = reinterpret_cast<uint8_t*>(block->input.data());
    z.avail_in = static_cast<uint32_t>(block->input.size());
    size_t produced = 0;
    for (;;) {
      z.next_out = reinterpret_cast<uint8_t*>(&block->output[produced]);
      z.avail_out = static_cast<uint32_t>(block->output.size() - produced);
      int rc = isal_deflate(&z);
      produced = block->output.size() - z.avail_out;
      if (rc != COMP_OK) {
        block->status = absl::InternalError(absl::StrCat("isal_deflate: ", rc));
        return;
      }
      bool done = z.avail_in == 0 && z.avail_out > 0 &&
                  (!block->final || z.internal_state.state == ZSTATE_END);
      if (done) break;
      if (z.avail_out == 0) block->output.resize(block->output.size() * 2);
    }
    block->output.resize(produced);
    block->crc = BlockCrc(block->input);
  }

 private:
  std::vector<uint8_t> level_buf_;
  // Large (its history buffer and hash table): on the heap, kept per thread.
  std::unique_ptr<isal_zstream> z_ = std::make_unique<isal_zstream>();
};

// 0..9: zlib at that level; kIgzipLevel: igzip.
std::unique_ptr<BlockDeflater> NewBlockDeflater(int level) {
  if (level == kIgzipLevel) return std::make_unique<IgzipDeflater>();
  return std::make_unique<ZlibDeflater>(level);
}

class GzipCompressor : public Compressor {
 public:
  GzipCompressor(int level, int threads, DigestingFdSink* out)
      : level_(level), threads_(threads), out_(out) {}

  ~GzipCompressor() override { StopWorkers(); }

  absl::Status Start() {
    // Header (RFC 1952): magic, CM=deflate, FLG=0, MTIME=0, XFL, OS=255
    // (unknown).
    unsigned char xfl =
        level_ == 9 ? 2 : (level_ == 1 || level_ == kIgzipLevel ? 4 : 0);
    const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff};
    return out_->Write(header, sizeof(header));
  }

  absl::Status Write(const void* data, size_t size) override {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      size_t take = std::min(size, kGzipBlockSize - current_.size());
      current_.append(p, take);
      p += take;
      size -= take;
      if (current_.size() == kGzipBlockSize) {
        RETURN_IF_ERROR(Submit(/*final=*/false));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Finish() override {
    RETURN_IF_ERROR(Submit(/*final=*/true));
    while (!pending_.empty()) RETURN_IF_ERROR(EmitOldest());
    StopWorkers();
    unsigned char trailer[8];
    for (int i = 0; i < 4; ++i) {
      trailer[i] = static_cast<unsigned char>((crc_ >> (8 * i)) & 0xff);
      trailer[4 + i] =
          static_cast<unsigned char>((total_in_ >> (8 * i)) & 0xff);
    }
    return out_->Write(trailer, sizeof(trailer));
  }

 private:
  absl::Status Submit(bool final) {
    std::shared_ptr<GzipBlock> block;
    if (free_.empty()) {
      block = std::make_shared<GzipBlock>();
    } else {
      block = std::move(free_.back());
      free_.pop_back();
    }
    // Swap buffers so both keep their capacity: no allocation per block.
    block->input.swap(current_);
    current_.clear();
    block->dictionary.swap(dictionary_);
    block->final = final;
    block->status = absl::OkStatus();
    block->done = false;
    size_t keep = std::min(block->input.size(), kDeflateWindow);
    dictionary_.assign(block->input, block->input.size() - keep, keep);
    total_in_ += block->input.size();

    if (threads_ <= 1 || (final && pending_.empty())) {
      // Inline: one thread requested, or the whole (small) stream is one block.
      inline_deflater_->Run(block.get());
      block->done = true;
      pending_.push_back(block);
      return EmitOldest();
    }
    StartWorkers();
    {
      absl::MutexLock lock(&mu_);
      queue_.push_back(block);
    }
    pending_.push_back(block);
    // Bound memory (kInFlightPerThread blocks of input and output per thread)
    // while keeping enough queued that workers do not idle when the producer is
    // descheduled on a busy machine.
    while (pending_.size() >
           static_cast<size_t>(kInFlightPerThread * threads_)) {
      RETURN_IF_ERROR(EmitOldest());
    }
    return absl::OkStatus();
  }

  // Waits for the oldest block and writes it; output order is input order.
  absl::Status EmitOldest() {
    std::shared_ptr<GzipBlock> block = pending_.front();
    pending_.pop_front();
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](GzipBlock* b) { return b->done; }, block.get()));
    }
    RETURN_IF_ERROR(block->status);
    crc_ = crc32_combine(crc_, block->crc,
                         static_cast<z_off_t>(block->input.size()));
    RETURN_IF_ERROR(out_->Write(block->output.data(), block->output.size()));
    free_.push_back(std::move(block));
    return absl::OkStatus();
  }

  void StartWorkers() {
    if (!workers_.empty()) return;
    for (int i = 0; i < threads_; ++i) {
      workers_.emplace_back([this] { WorkerLoop(); });
    }
  }

  void StopWorkers() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void WorkerLoop() {
    std::unique_ptr<BlockDeflater> deflater = NewBlockDeflater(level_);
    for (;;) {
      std::shared_ptr<GzipBlock> block;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](GzipCompressor* c) {
              c->mu_.AssertHeld();
              return c->stopping_ || !c->queue_.empty();
            },
            this));
        if (queue_.empty()) return;
        block = queue_.front();
        queue_.pop_front();
      }
      deflater->Run(block.get());
      absl::MutexLock lock(&mu_);
      block->done = true;
    }
  }

  const int level_;
  const int threads_;
  DigestingFdSink* out_;
  std::string current_;
  std::string dictionary_;
  uLong crc_ = crc32(0L, Z_NULL, 0);
  uint64_t total_in_ = 0;
  std::unique_ptr<BlockDeflater> inline_deflater_ = NewBlockDeflater(level_);
  // Producer thread only: blocks in output order, and finished ones for reuse.
  std::deque<std::shared_ptr<GzipBlock>> pending_;
  std::vector<std::shared_ptr<GzipBlock>> free_;
  std::vector<std::thread> workers_;

  absl::Mutex mu_;
  std::deque<std::shared_ptr<GzipBlock>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

// ---------------------------------------------------------------------------

class ZstdCompressor : public Compressor {
 public:
  explicit ZstdCompressor(DigestingFdSink* out)
      : out_(out),
        cctx_(ZSTD_createCCtx()),
        buf_(std::max<size_t>(ZSTD_CStreamOutSize(), 1 << 20)) {}
  ~ZstdCompressor() override { ZSTD_freeCCtx(cctx_); }

  absl::Status Init(int level, int threads) {
    if (cctx_ == nullptr)
      return absl::ResourceExhaustedError("ZSTD_createCCtx");
    RETURN_IF_ERROR(
        Check(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level),
              "ZSTD_c_compressionLevel"));
    RETURN_IF_ERROR(Check(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1),
                          "ZSTD_c_checksumFlag"));
    // nbWorkers >= 1 gives output independent of the worker count; 0 would
    // differ.
    RETURN_IF_ERROR(Check(
        ZSTD_CCtx_setParameter(cctx_, ZSTD_c_nbWorkers, std::max(1, threads)),
        "ZSTD_c_nbWorkers (libzstd built without threads?)"));
    return absl::OkStatus();
  }

  absl::Status Write(const void* data, size_t size) override {
    ZSTD_inBuffer in{data, size, 0};
    while (in.pos < in.size) {
      RETURN_IF_ERROR(Step(&in, ZSTD_e_continue).status());
    }
    return absl::OkStatus();
  }

  absl::Status Finish() override {
    ZSTD_inBuffer in{nullptr, 0, 0};
    for (;;) {
      ASSIGN_OR_RETURN(size_t remaining, Step(&in, ZSTD_e_end));
      if (remaining == 0) return absl::OkStatus();
    }
  }

 private:
  static absl::Status Check(size_t rc, const char* what) {
    if (ZSTD_isError(rc)) {
      return absl::InternalError(
          absl::StrCat(what, ": ", ZSTD_getErrorName(rc)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> Step(ZSTD_inBuffer* in, ZSTD_EndDirective mode) {
    ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
    size_t rc = ZSTD_compressStream2(cctx_, &out, in, mode);
    RETURN_IF_ERROR(Check(rc, "ZSTD_compressStream2"));
    if (out.pos > 0) RETURN_IF_ERROR(out_->Write(buf_.data(), out.pos));
    return rc;
  }

  DigestingFdSink* out_;
  ZSTD_CCtx* cctx_;
  std::vector<char> buf_;
};

class PlainCompressor : public Compressor {
 public:
  explicit PlainCompressor(DigestingFdSink* out) : out_(out) {}
  absl::Status Write(const void* data, size_t size) override {
    return out_->Write(data, size);
  }
  absl::Status Finish() override { return absl::OkStatus(); }

 private:
  DigestingFdSink* out_;
};

// ---------------------------------------------------------------------------
// A compressor on its own thread, fed through a bounded queue of chunks.

class PipelinedCompressor : public Compressor {
 public:
  PipelinedCompressor(std::unique_ptr<Compressor> inner, Sha256* uncompressed,
                      const PipelineOptions& opts)
      : inner_(std::move(inner)),
        uncompressed_(uncompressed),
        chunk_size_(std::max<size_t>(opts.chunk_size, 1)),
        max_chunks_(static_cast<size_t>(std::max(opts.max_chunks, 1))) {
    current_.reserve(chunk_size_);
    thread_ = std::thread([this] { Consume(); });
  }

  ~PipelinedCompressor() override {
    {
      absl::MutexLock lock(&mu_);
      abandoned_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Write(const void* data, size_t size) override {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      size_t take = std::min(size, chunk_size_ - current_.size());
      current_.append(p, take);
      p += take;
      size -= take;
      if (current_.size() == chunk_size_) RETURN_IF_ERROR(Hand());
    }
    return absl::OkStatus();
  }

  absl::Status Finish() override {
    if (!current_.empty()) RETURN_IF_ERROR(Hand());
    {
      absl::MutexLock lock(&mu_);
      ended_ = true;
    }
    if (thread_.joinable()) thread_.join();
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  // Passes the current chunk to the compressing thread; waits while the queue
  // is full. Takes a spare chunk (with its capacity) in exchange when there is
  // one.
  absl::Status Hand() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](PipelinedCompressor* c) {
          c->mu_.AssertHeld();
          return c->stopped_ || c->queue_.size() < c->max_chunks_;
        },
        this));
    if (stopped_) {
      return status_.ok() ? absl::InternalError("compressor thread stopped")
                          : status_;
    }
    queue_.push_back(std::move(current_));
    current_.clear();
    if (!spare_.empty()) {
      current_ = std::move(spare_.back());
      spare_.pop_back();
    }
    current_.clear();
    current_.reserve(chunk_size_);
    return absl::OkStatus();
  }

  void Consume() {
    std::string chunk;
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        if (chunk.capacity() > 0) {  // give the last chunk's memory back
          chunk.clear();
          spare_.push_back(std::move(chunk));
          chunk.clear();
        }
        mu_.Await(absl::Condition(
            +[](PipelinedCompressor* c) {
              c->mu_.AssertHeld();
              return c->abandoned_ || c->ended_ || !c->queue_.empty();
            },
            this));
        if (abandoned_) {
          stopped_ = true;
          return;
        }
        if (queue_.empty()) break;  // ended, and everything consumed
        chunk = std::move(queue_.front());
        queue_.pop_front();
      }
      if (uncompressed_ != nullptr) uncompressed_->Update(chunk);
      absl::Status s = inner_->Write(chunk.data(), chunk.size());
      if (!s.ok()) {
        absl::MutexLock lock(&mu_);
        status_ = std::move(s);
        stopped_ = true;
        return;
      }
    }
    absl::Status s = inner_->Finish();
    absl::MutexLock lock(&mu_);
    status_ = std::move(s);
    stopped_ = true;
  }

  const std::unique_ptr<Compressor> inner_;
  Sha256* const uncompressed_;
  const size_t chunk_size_;
  const size_t max_chunks_;
  std::string current_;  // producer thread only
  std::thread thread_;

  absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> spare_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;      // Finish called
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;  // destroyed before Finish
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;    // thread gone
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------
// Decompression.

class BufferedReader : public DecompressingReader {
 protected:
  BufferedReader(int fd, std::string name, std::vector<unsigned char> head)
      : DecompressingReader(fd, std::move(name)), in_(std::move(head)) {
    in_len_ = in_.size();
    in_.resize(std::max<size_t>(in_.size(), 1 << 16));
  }

  // Refills the input buffer once it is used up; sets in_eof_ at the end.
  absl::Status Fill() {
    if (in_pos_ < in_len_ || in_eof_) return absl::OkStatus();
    ASSIGN_OR_RETURN(size_t n, ReadRaw(in_.data(), in_.size()));
    in_pos_ = 0;
    in_len_ = n;
    if (n == 0) in_eof_ = true;
    return absl::OkStatus();
  }

  std::vector<unsigned char> in_;
  size_t in_pos_ = 0;
  size_t in_len_ = 0;
  bool in_eof_ = false;
};

class PlainReader : public BufferedReader {
 public:
  PlainReader(int fd, std::string name, std::vector<unsigned char> head)
      : BufferedReader(fd, std::move(name), std::move(head)) {}
  Compression compression() const override { return Compression::kNone; }

  absl::StatusOr<size_t> Read(void* buf, size_t size) override {
    RETURN_IF_ERROR(Fill());
    size_t n = std::min(size, in_len_ - in_pos_);
    memcpy(buf, in_.data() + in_pos_, n);
    in_pos_ += n;
    CountOut(buf, n);
    return n;
  }
};

class GzipReader : public BufferedReader {
 public:
  GzipReader(int fd, std::string name, std::vector<unsigned char> head)
      : BufferedReader(fd, std::move(name), std::move(head)) {}
  ~GzipReader() override {
    if (initialized_) inflateEnd(&z_);
  }
  Compression compression() const override { return Compression::kGzip; }

  absl::StatusOr<size_t> Read(void* buf, size_t size) override {
    if (!initialized_) {
      if (inflateInit2(&z_, 15 + 16) != Z_OK) {
        return absl::InternalError("inflateInit2 failed");
      }
      initialized_ = true;
    }
    for (;;) {
      RETURN_IF_ERROR(Fill());
      if (member_done_) {
        // Another member may follow (pigz and parallel writers emit several).
        if (in_eof_) return 0;
        inflateReset(&z_);
        member_done_ = false;
      }
      if (in_eof_) {
        return absl::DataLossError(
            absl::StrCat(name_, ": truncated gzip stream"));
      }
      z_.next_in = in_.data() + in_pos_;
      z_.avail_in = static_cast<uInt>(in_len_ - in_pos_);
      z_.next_out = static_cast<Bytef*>(buf);
      z_.avail_out = static_cast<uInt>(size);
      int rc = inflate(&z_, Z_NO_FLUSH);
      in_pos_ = in_len_ - z_.avail_in;
      size_t n = size - z_.avail_out;
      if (rc == Z_STREAM_END) {
        member_done_ = true;
      } else if (rc != Z_OK && !(rc == Z_BUF_ERROR && n == 0)) {
        return absl::DataLossError(absl::StrCat(
            name_,
            ": corrupt gzip stream: ", z_.msg ? z_.msg : "inflate error"));
      }
      if (n > 0) {
        CountOut(buf, n);
        return n;
      }
    }
  }

 private:
  z_stream z_{};
  bool initialized_ = false;
  bool member_done_ = false;
};

class ZstdReader : public BufferedReader {
 public:
  ZstdReader(int fd, std::string name, std::vector<unsigned char> head)
      : BufferedReader(fd, std::move(name), std::move(head)),
        dctx_(ZSTD_createDCtx()) {}
  ~ZstdReader() override { ZSTD_freeDCtx(dctx_); }
  Compression compression() const override { return Compression::kZstd; }

  absl::StatusOr<size_t> Read(void* buf, size_t size) override {
    if (dctx_ == nullptr)
      return absl::ResourceExhaustedError("ZSTD_createDCtx");
    for (;;) {
      RETURN_IF_ERROR(Fill());
      if (in_eof_) {
        if (frame_open_) {
          return absl::DataLossError(
              absl::StrCat(name_, ": truncated zstd stream"));
        }
        return 0;
      }
      ZSTD_inBuffer in{in_.data(), in_len_, in_pos_};
      ZSTD_outBuffer out{buf, size, 0};
      size_t rc = ZSTD_decompressStream(dctx_, &out, &in);
      in_pos_ = in.pos;
      if (ZSTD_isError(rc)) {
        return absl::DataLossError(absl::StrCat(
            name_, ": corrupt zstd stream: ", ZSTD_getErrorName(rc)));
      }
      frame_open_ = rc != 0;
      if (out.pos > 0) {
        CountOut(buf, out.pos);
        return out.pos;
      }
    }
  }

 private:
  ZSTD_DCtx* dctx_;
  bool frame_open_ = false;
};

}  // namespace

absl::Status DigestingFdSink::Write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  sha_.Update(p, size);
  bytes_ += static_cast<int64_t>(size);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write(%s)", name_);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Compressor>> NewCompressor(
    const CompressorOptions& opts, DigestingFdSink* out) {
  int threads = DefaultThreads(opts.threads);
  switch (opts.compression) {
    case Compression::kNone:
      return std::unique_ptr<Compressor>(new PlainCompressor(out));
    case Compression::kGzip: {
      int level = opts.level < 0 ? kIgzipLevel : opts.level;
      if (level > 9) {
        return absl::InvalidArgumentError(
            absl::StrCat("gzip level ", level, " is not in 0..9"));
      }
      auto c = std::make_unique<GzipCompressor>(level, threads, out);
      RETURN_IF_ERROR(c->Start());
      return std::unique_ptr<Compressor>(std::move(c));
    }
    case Compression::kZstd: {
      int level = opts.level < 0 ? 3 : opts.level;
      if (level > ZSTD_maxCLevel()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "zstd level ", level, " is not in 0..", ZSTD_maxCLevel()));
      }
      auto c = std::make_unique<ZstdCompressor>(out);
      RETURN_IF_ERROR(c->Init(level, threads));
      return std::unique_ptr<Compressor>(std::move(c));
    }
  }
  return absl::InvalidArgumentError("unknown compression");
}

std::unique_ptr<Compressor> NewPipelinedCompressor(
    std::unique_ptr<Compressor> inner, Sha256* uncompressed,
    const PipelineOptions& opts) {
  return std::make_unique<PipelinedCompressor>(std::move(inner), uncompressed,
                                               opts);
}

Compression DetectCompression(const unsigned char* head, size_t size) {
  if (size >= 2 && head[0] == 0x1f && head[1] == 0x8b)
    return Compression::kGzip;
  if (size >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f &&
      head[3] == 0xfd) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

absl::StatusOr<size_t> DecompressingReader::ReadRaw(void* buf, size_t size) {
  for (;;) {
    ssize_t n = ::read(fd_, buf, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read(%s)", name_);
    }
    compressed_sha_.Update(buf, static_cast<size_t>(n));
    compressed_bytes_ += n;
    return static_cast<size_t>(n);
  }
}

absl::StatusOr<std::string> DecompressingReader::FinishUncompressedDigest() {
  std::vector<char> buf(1 << 16);
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, Read(buf.data(), buf.size()));
    if (n == 0) break;
  }
  return uncompressed_sha_.Digest();
}

absl::StatusOr<std::unique_ptr<DecompressingReader>> DecompressingReader::Open(
    int fd, std::string name) {
  std::vector<unsigned char> head(4);
  size_t got = 0;
  std::unique_ptr<DecompressingReader> reader;
  {
    // The magic is read here; the chosen reader hashes it and returns it first.
    while (got < head.size()) {
      ssize_t n = ::read(fd, head.data() + got, head.size() - got);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "read(%s)", name);
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    head.resize(got);
  }
  Compression c = DetectCompression(head.data(), head.size());
  switch (c) {
    case Compression::kGzip:
      reader.reset(new GzipReader(fd, name, head));
      break;
    case Compression::kZstd:
      reader.reset(new ZstdReader(fd, name, head));
      break;
    case Compression::kNone:
      reader.reset(new PlainReader(fd, name, head));
      break;
  }
  reader->compressed_sha_.Update(head.data(), head.size());
  reader->compressed_bytes_ += static_cast<int64_t>(head.size());
  return reader;
}

}  // namespace longshore::image
