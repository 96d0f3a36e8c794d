// Layer compression of an output (`--output type=...,compression=zstd,
// compression-level=N,force-compression=true`), as BuildKit's exporters take
// it: layers are committed as gzip; an output that asks for another compression
// gets its layers converted, with the same diffIDs and so the same config.
#ifndef LONGSHORE_WORKER_OUTPUT_COMPRESSION_H_
#define LONGSHORE_WORKER_OUTPUT_COMPRESSION_H_

#include "absl/status/statusor.h"
#include "image/compression.h"
#include "image/content_store.h"
#include "image/oci.h"
#include "proto/longshore.pb.h"

namespace longshore::worker {

struct OutputCompression {
  image::Compression compression = image::Compression::kGzip;
  int level = -1;
  // Recompress layers already in the wanted compression too (to apply a level).
  bool force = false;
};

// Reads the output's attrs; errors name the attribute and the allowed values.
absl::StatusOr<OutputCompression> ParseOutputCompression(
    const v1::OutputSpec& output);

// The manifest of the same image with its layers in `want`: layers already in
// that compression are kept unless `force`; converted blobs and the new
// manifest are written into `store`. Deterministic for the same inputs.
absl::StatusOr<image::Descriptor> ConvertImageLayers(
    image::ContentStore& store, const image::Descriptor& manifest,
    const OutputCompression& want);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_OUTPUT_COMPRESSION_H_
