// What a registry or token service answers: WWW-Authenticate challenges,
// token responses, error bodies, manifests served under a generic
// Content-Type, and upload Locations. Every input goes through each parser.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "image/registry_parse.h"

namespace {

using namespace longshore::image;  // NOLINT: a fuzz driver

[[noreturn]] void Fail(const std::string& what, const std::string& input) {
  fprintf(stderr, "registry_fuzzer: %s for input \"%s\"\n", what.c_str(),
          input.c_str());
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<AuthChallenge> c = ParseAuthChallenge(input);
  if (c.ok()) {
    if (c->scheme.empty()) Fail("challenge with an empty scheme", input);
    if (c->scheme != absl::AsciiStrToLower(c->scheme)) {
      Fail("scheme not lower case", input);
    }
    for (const auto& [k, v] : c->params) {
      if (k != absl::AsciiStrToLower(k)) Fail("key not lower case", input);
    }
  }

  absl::StatusOr<TokenResponse> t = ParseTokenResponse(input);
  if (t.ok()) {
    if (t->token.empty()) Fail("token response without a token", input);
    if (t->expires_in_seconds < 1) Fail("token expiring at once", input);
  }

  (void)RegistryErrorSummary(input);
  (void)DeclaredManifestMediaType(input);

  for (const char* base :
       {"https://registry.example:5000/v2/team/app/blobs/"
        "uploads/",
        "http://127.0.0.1:5000/v2/a/blobs/uploads/x?s=1/2", "https://h", ""}) {
    (void)ResolveLocation(base, input);
    (void)ResolveLocation(input, "next?x=1");
  }
  (void)HostOfUrl(input);
  return 0;
}
