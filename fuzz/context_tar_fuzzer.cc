// Build contexts on the worker (and outputs on the client): a tar from the
// network extracted with ExtractTarConfined. Any input may fail, but nothing
// may be written outside the destination.
#include <cstddef>
#include <cstdint>

#include "common/tar_extract.h"
#include "fuzz/playground.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static longshore::fuzz::Playground* pg = new longshore::fuzz::Playground();
  pg->Reset(data, size);
  (void)longshore::ExtractTarConfined(pg->input(), pg->dest(), "context");
  pg->CheckNothingOutside();
  return 0;
}
