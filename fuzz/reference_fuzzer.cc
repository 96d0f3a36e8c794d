// Image references: FROM lines of submitted Dockerfiles, --build-arg values
// that become them, -t tags, cache repositories. A parsed reference must
// print (normalized and familiar) to text that parses back to the same
// reference, and a tag `longshore build -t` accepts must be one the worker
// can parse when it pushes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "client/build_flags.h"
#include "image/reference.h"

namespace {

using longshore::image::ParseReference;
using longshore::image::Reference;

bool Same(const Reference& a, const Reference& b) {
  return a.registry == b.registry && a.repository == b.repository &&
         a.tag == b.tag && a.digest == b.digest;
}

[[noreturn]] void Fail(const std::string& what, const std::string& input,
                       const std::string& detail) {
  fprintf(stderr, "reference_fuzzer: %s: input \"%s\": %s\n", what.c_str(),
          input.c_str(), detail.c_str());
  abort();
}

void CheckPrintsBack(const Reference& ref, const std::string& input) {
  for (const std::string& text : {ref.Normalized(), ref.Familiar()}) {
    absl::StatusOr<Reference> again = ParseReference(text);
    if (!again.ok()) {
      Fail("printed form does not parse", input,
           text + ": " + again.status().ToString());
    }
    if (!Same(*again, ref)) {
      Fail("printed form parses to another reference", input,
           text + " -> " + again->Normalized());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Reference> ref = ParseReference(input);
  if (ref.ok()) CheckPrintsBack(*ref, input);

  absl::StatusOr<std::string> tag = longshore::client::NormalizeTag(input);
  if (tag.ok()) {
    absl::StatusOr<Reference> pushed = ParseReference(*tag);
    if (!pushed.ok()) {
      Fail("a tag -t accepts does not parse as a reference", input,
           *tag + ": " + pushed.status().ToString());
    }
    CheckPrintsBack(*pushed, input);
  }
  return 0;
}
