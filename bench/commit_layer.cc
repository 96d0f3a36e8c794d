// Commits a directory to an OCI layer blob with image::CommitLayer and prints
// what it wrote, for bench/layer_commit.sh.
//
//   commit_layer --dir DIR --out FILE [--compression gzip|zstd|none]
//                [--level N] [--threads N]
//
// Prints one line: seconds digest diff_id blob_bytes tar_bytes.
#include <stdio.h>

#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "image/layer_commit.h"

ABSL_FLAG(std::string, dir, "", "directory to commit");
ABSL_FLAG(std::string, out, "", "where to write the layer blob");
ABSL_FLAG(std::string, compression, "gzip", "gzip, zstd or none");
ABSL_FLAG(int, level, -1, "compression level (-1: the default)");
ABSL_FLAG(int, threads, 0, "compression threads (0: every CPU)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "commit_layer --dir DIR --out FILE [--compression gzip|zstd|none]");
  absl::ParseCommandLine(argc, argv);
  longshore::image::CommitOptions opts;
  std::string c = absl::GetFlag(FLAGS_compression);
  if (c == "gzip") {
    opts.compression = longshore::image::Compression::kGzip;
  } else if (c == "zstd") {
    opts.compression = longshore::image::Compression::kZstd;
  } else if (c == "none") {
    opts.compression = longshore::image::Compression::kNone;
  } else {
    fprintf(stderr, "commit_layer: unknown --compression %s\n", c.c_str());
    return 2;
  }
  opts.level = absl::GetFlag(FLAGS_level);
  opts.threads = absl::GetFlag(FLAGS_threads);
  if (absl::GetFlag(FLAGS_dir).empty() || absl::GetFlag(FLAGS_out).empty()) {
    fprintf(stderr, "commit_layer: --dir and --out are required\n");
    return 2;
  }
  absl::Time start = absl::Now();
  auto layer = longshore::image::CommitLayer(absl::GetFlag(FLAGS_dir),
                                             absl::GetFlag(FLAGS_out), opts);
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  if (!layer.ok()) {
    fprintf(stderr, "commit_layer: %s\n", layer.status().ToString().c_str());
    return 1;
  }
  printf("%.3f %s %s %lld %lld\n", secs, layer->digest.c_str(),
         layer->diff_id.c_str(), static_cast<long long>(layer->size),
         static_cast<long long>(layer->uncompressed_size));
  return 0;
}
