// The `longshore build` command line: --build-arg and --label KEY=VALUE,
// --output, --cache-from/--cache-to, --worker-label, --platform and the rest.
// The input is an argument vector, one argument per line; each line is also
// given to the single-value parsers, and every output spec to the worker's
// reading of its compression attributes (a submitter's KEY=VALUE the worker
// parses). Parsed pairs must have usable keys. --secret is left out: it reads
// files and the environment by design.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "client/build_flags.h"
#include "worker/output_compression.h"

namespace {

using namespace longshore::client;  // NOLINT: a fuzz driver

[[noreturn]] void Fail(const std::string& what, const std::string& input) {
  fprintf(stderr, "build_flags_fuzzer: %s; input:\n%s\n", what.c_str(),
          input.c_str());
  abort();
}

void CheckPairs(const std::vector<std::pair<std::string, std::string>>& kvs,
                const char* flag, const std::string& input) {
  for (const auto& [k, v] : kvs) {
    if (k.empty()) Fail(std::string(flag) + " with an empty key", input);
    if (absl::StrContains(k, '=')) {
      Fail(std::string(flag) + " key \"" + k + "\" holds '='", input);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args = absl::StrSplit(input, '\n');
  if (args.size() > 64) return 0;
  for (const std::string& a : args) {
    if (absl::StrContains(a, "secret")) return 0;
  }
  absl::StatusOr<BuildFlags> f = ParseBuildFlags(args, "127.0.0.1:7070");
  if (f.ok()) {
    CheckPairs(f->build_args, "--build-arg", input);
    CheckPairs(f->labels, "--label", input);
    CheckPairs(f->worker_labels, "--worker-label", input);
    for (const auto& o : f->outputs) {
      (void)longshore::worker::ParseOutputCompression(o);
    }
  }
  for (const std::string& a : args) {
    absl::StatusOr<longshore::v1::OutputSpec> o = ParseOutputFlag(a);
    if (o.ok()) (void)longshore::worker::ParseOutputCompression(*o);
    (void)ParseCacheFlag("--cache-from", a);
    (void)NormalizeTag(a);
  }
  return 0;
}
