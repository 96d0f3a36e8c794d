// Registry documents: image manifests, indexes (manifest lists), image
// configs and descriptors, OCI or Docker schema 2. Every input goes through
// each parser; what parses must serialize to JSON that parses back to the
// same value and serializes to the same bytes (digests depend on it).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "image/oci.h"

namespace {

using namespace longshore::image;  // NOLINT: a fuzz driver

template <typename T, typename ParseFn>
void RoundTrip(const std::string& input, ParseFn parse, const char* what) {
  absl::StatusOr<T> first = parse(input);
  if (!first.ok()) return;
  std::string json = ToJson(*first);
  absl::StatusOr<T> second = parse(json);
  if (!second.ok()) {
    fprintf(stderr, "%s: own JSON does not parse: %s\n%s\n", what,
            second.status().ToString().c_str(), json.c_str());
    abort();
  }
  if (!(*second == *first)) {
    fprintf(stderr, "%s: value changed through JSON:\n%s\n", what,
            json.c_str());
    abort();
  }
  if (ToJson(*second) != json) {
    fprintf(stderr, "%s: JSON not stable:\n%s\n%s\n", what, json.c_str(),
            ToJson(*second).c_str());
    abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  RoundTrip<Manifest>(input, ParseManifest, "manifest");
  RoundTrip<OciConfig>(input, ParseConfig, "config");
  RoundTrip<Descriptor>(input, ParseDescriptor, "descriptor");
  RoundTrip<Index>(input, ParseIndex, "index");
  absl::StatusOr<Index> index = ParseIndex(input);
  if (index.ok()) {
    Platform p;
    p.os = "linux";
    p.architecture = "amd64";
    (void)SelectPlatform(*index, p);
    p.architecture = "arm64";
    p.variant = "v8";
    (void)SelectPlatform(*index, p);
  }
  absl::StatusOr<Manifest> m = ParseManifest(input);
  if (m.ok()) {
    for (const Descriptor& l : m->layers) (void)LayerCompression(l.media_type);
  }
  return 0;
}
