#include "worker/output_compression.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace longshore::worker {
namespace {

const char* MediaTypeFor(image::Compression c) {
  switch (c) {
    case image::Compression::kZstd:
      return image::kMediaTypeOciLayerZstd;
    case image::Compression::kNone:
      return image::kMediaTypeOciLayer;
    default:
      return image::kMediaTypeOciLayerGzip;
  }
}

absl::StatusOr<image::Descriptor> ConvertLayer(image::ContentStore& store,
                                               const image::Descriptor& layer,
                                               const OutputCompression& want) {
  std::string src = store.BlobPath(layer.digest);
  UniqueFd in(open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return ErrnoStatus(errno, "open(%s)", src);
  ASSIGN_OR_RETURN(auto reader,
                   image::DecompressingReader::Open(in.get(), layer.digest));
  ASSIGN_OR_RETURN(std::string tmp, store.NewTempPath("convert"));
  UniqueFd out(
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) return ErrnoStatus(errno, "open(%s)", tmp);
  image::DigestingFdSink sink(out.get(), tmp);
  image::CompressorOptions copts;
  copts.compression = want.compression;
  copts.level = want.level;
  auto status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto compressor, image::NewCompressor(copts, &sink));
    std::string buf(1 << 20, '\0');
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, reader->Read(buf.data(), buf.size()));
      if (n == 0) break;
      RETURN_IF_ERROR(compressor->Write(buf.data(), n));
    }
    return compressor->Finish();
  }();
  if (!status.ok()) {
    unlink(tmp.c_str());
    return status;
  }
  out.reset();
  image::Descriptor converted;
  converted.media_type = MediaTypeFor(want.compression);
  converted.digest = sink.Digest();
  converted.size = sink.bytes();
  RETURN_IF_ERROR(store.CommitTemp(tmp, converted.digest));
  return converted;
}

}  // namespace

absl::StatusOr<OutputCompression> ParseOutputCompression(
    const v1::OutputSpec& output) {
  OutputCompression c;
  for (const auto& kv : output.attrs()) {
    if (kv.key() == "compression") {
      if (kv.value() == "gzip") {
        c.compression = image::Compression::kGzip;
      } else if (kv.value() == "zstd") {
        c.compression = image::Compression::kZstd;
      } else if (kv.value() == "uncompressed") {
        c.compression = image::Compression::kNone;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--output compression=", kv.value(),
                         ": expected gzip, zstd or uncompressed"));
      }
    } else if (kv.key() == "compression-level") {
      if (!absl::SimpleAtoi(kv.value(), &c.level) || c.level < 0 ||
          c.level > 22) {
        return absl::InvalidArgumentError(
            absl::StrCat("--output compression-level=", kv.value(),
                         ": expected a number from 0 to 22"));
      }
    } else if (kv.key() == "force-compression") {
      c.force = kv.value() == "true";
    }
  }
  if (c.compression == image::Compression::kGzip && c.level > 9) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--output compression-level=", c.level, ": gzip levels are 0 to 9"));
  }
  // A level given for the default compression means recompressing.
  if (c.level >= 0) c.force = true;
  return c;
}

absl::StatusOr<image::Descriptor> ConvertImageLayers(
    image::ContentStore& store, const image::Descriptor& manifest,
    const OutputCompression& want) {
  ASSIGN_OR_RETURN(std::string bytes, store.ReadBlob(manifest.digest));
  ASSIGN_OR_RETURN(image::Manifest m, image::ParseManifest(bytes));
  bool changed = false;
  for (image::Descriptor& layer : m.layers) {
    ASSIGN_OR_RETURN(image::Compression have,
                     image::LayerCompression(layer.media_type));
    if (have == want.compression && !want.force) continue;
    ASSIGN_OR_RETURN(layer, ConvertLayer(store, layer, want));
    changed = true;
  }
  if (!changed) return manifest;
  std::string json = image::ToJson(m);
  image::Descriptor out = manifest;
  ASSIGN_OR_RETURN(out.digest, store.Put(json));
  out.size = static_cast<int64_t>(json.size());
  return out;
}

}  // namespace longshore::worker
