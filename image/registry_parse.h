// What a registry or its token service sends that the client reads before
// trusting anything: WWW-Authenticate challenges, token responses,
// distribution error bodies, the media type a manifest declares, and upload
// Locations. Each takes the bytes as received; none throws or aborts on any
// input.
#ifndef LONGSHORE_IMAGE_REGISTRY_PARSE_H_
#define LONGSHORE_IMAGE_REGISTRY_PARSE_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::image {

// A parsed WWW-Authenticate challenge: scheme ("bearer", "basic"; lower case)
// and its parameters (keys lower case).
struct AuthChallenge {
  std::string scheme;
  std::map<std::string, std::string> params;
};
// Parses one WWW-Authenticate header value; quoted values may contain commas
// and backslash escapes. InvalidArgument on a malformed header.
absl::StatusOr<AuthChallenge> ParseAuthChallenge(absl::string_view header);

// A token service's answer ({"token": ..., "expires_in": N}, or
// "access_token" as OAuth2 spells it).
struct TokenResponse {
  std::string token;
  int64_t expires_in_seconds = 60;  // the spec's default; at least 1
};
// InvalidArgument when the body is not a JSON object or holds no token
// string.
absl::StatusOr<TokenResponse> ParseTokenResponse(absl::string_view body);

// "MANIFEST_UNKNOWN: manifest unknown; ..." from a distribution error body
// ({"errors": [{"code", "message"}]}); empty when the body says nothing
// usable.
std::string RegistryErrorSummary(absl::string_view body);

// The media type a manifest or index document says it is, for registries that
// answer with a generic Content-Type: its "mediaType" when that names a
// manifest or index, else an OCI index when it has "manifests", an OCI
// manifest when it has "layers"; empty when none of these.
std::string DeclaredManifestMediaType(absl::string_view document);

// Resolves an upload Location header against the URL of the request it
// answered (absolute, a path, or relative to the request's directory).
std::string ResolveLocation(absl::string_view base_url,
                            absl::string_view location);

// "host:port" of an http(s) URL (user info dropped); empty when `url` has no
// scheme.
std::string HostOfUrl(absl::string_view url);

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_REGISTRY_PARSE_H_
