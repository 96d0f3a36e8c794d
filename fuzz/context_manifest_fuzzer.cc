// Context manifests, which a submitter sends (content-addressed context
// sync): the input is a root and chunks, separated by a NUL line; each is
// parsed and checked as the scheduler and the workers do before trusting it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/context_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts =
      absl::StrSplit(input, absl::ByString(std::string("\n\0\n", 3)));
  absl::StatusOr<longshore::ParsedManifest> root =
      longshore::ParseManifest(parts[0]);
  std::vector<longshore::v1::ContextManifestChunk> chunks;
  for (size_t i = 1; i < parts.size(); ++i) {
    auto chunk = longshore::ParseChunk(parts[i]);
    if (chunk.ok()) chunks.push_back(*std::move(chunk));
  }
  if (root.ok()) (void)longshore::CheckEntries(*root, chunks);
  // Building a manifest from what parsed must give one that parses again.
  std::vector<longshore::ContextFile> files;
  for (const auto& c : chunks) {
    for (const auto& e : c.entries()) {
      longshore::ContextFile f;
      f.entry = e;
      f.mtime = static_cast<int64_t>(files.size()) * 7 - 3;
      files.push_back(f);
    }
  }
  longshore::BuiltManifest built = longshore::BuildManifest(files);
  absl::StatusOr<longshore::ParsedManifest> again =
      longshore::ParseManifest(built.root);
  if (!again.ok() || again->mtimes.size() != files.size()) __builtin_trap();
  for (size_t i = 0; i < files.size(); ++i) {
    if (again->mtimes[i] != files[i].mtime) __builtin_trap();
  }
  return 0;
}
