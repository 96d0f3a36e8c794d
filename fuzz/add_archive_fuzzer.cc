// ADD of a local archive (any compression libarchive knows): the worker
// extracts it into a directory of the image root, every path resolved inside
// the root. Here the root is the playground's dest/ and the archive goes to
// /app in it; any input may fail, but nothing may be written outside the root.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "fuzz/playground.h"
#include "worker/archive_extract.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static longshore::fuzz::Playground* pg = new longshore::fuzz::Playground();
  pg->Reset(data, size);
  int archive = open(pg->input().c_str(), O_RDONLY | O_CLOEXEC);
  int root = open(pg->dest().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (archive < 0 || root < 0) {
    perror("add_archive_fuzzer: open");
    abort();
  }
  (void)longshore::worker::LooksLikeArchive(archive);
  longshore::worker::ArchiveExtractOptions opts;
  opts.max_bytes = 8 << 20;
  (void)longshore::worker::ExtractArchiveInRoot(archive, "archive.tar", root,
                                                "/app", opts);
  close(archive);
  close(root);
  pg->CheckNothingOutside();
  return 0;
}
