// Image layers from a registry or a cache (plain, gzip or zstd tar) applied
// to a snapshot directory with ApplyLayer, as root in the worker's user
// namespace would: owners kept, whiteouts, hard links, devices. Any input may
// fail, but nothing may be written outside the snapshot.
#include <cstddef>
#include <cstdint>

#include "fuzz/playground.h"
#include "image/layer_apply.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static longshore::fuzz::Playground* pg = new longshore::fuzz::Playground();
  pg->Reset(data, size);
  longshore::image::ApplyOptions opts;
  opts.max_bytes = 8 << 20;  // bounds what a small gzip or zstd can expand to
  opts.max_entries = 4096;
  opts.preserve_owner = true;
  (void)longshore::image::ApplyLayer(
      pg->input(), "application/vnd.oci.image.layer.v1.tar", pg->dest(), opts);
  pg->CheckNothingOutside();
  return 0;
}
