#include "image/registry_parse.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "image/oci.h"
#include "nlohmann/json.hpp"

namespace longshore::image {
namespace {

using Json = nlohmann::json;

// The string at `key`, or "" when it is absent or not a string. (Json::value
// would throw on a number or an object there, and a registry may send
// anything.)
std::string StringField(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

absl::StatusOr<AuthChallenge> ParseAuthChallenge(absl::string_view header) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed WWW-Authenticate \"", header, "\": ", why));
  };
  absl::string_view s = absl::StripAsciiWhitespace(header);
  size_t sp = s.find(' ');
  AuthChallenge c;
  c.scheme = absl::AsciiStrToLower(s.substr(0, sp));
  if (c.scheme.empty()) return bad("no scheme");
  if (sp == absl::string_view::npos) return c;
  s = s.substr(sp + 1);
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
    if (i >= s.size()) break;
    size_t eq = s.find('=', i);
    if (eq == absl::string_view::npos) return bad("parameter without '='");
    std::string key =
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(s.substr(i, eq - i)));
    i = eq + 1;
    while (i < s.size() && s[i] == ' ') ++i;
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        char ch = s[i++];
        if (ch == '\\' && i < s.size()) {
          value.push_back(s[i++]);
        } else if (ch == '"') {
          closed = true;
          break;
        } else {
          value.push_back(ch);
        }
      }
      if (!closed) return bad("unterminated quoted value");
    } else {
      size_t end = s.find(',', i);
      if (end == absl::string_view::npos) end = s.size();
      value = std::string(absl::StripAsciiWhitespace(s.substr(i, end - i)));
      i = end;
    }
    c.params[key] = value;
  }
  return c;
}

absl::StatusOr<TokenResponse> ParseTokenResponse(absl::string_view body) {
  auto j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("token response is not JSON");
  }
  TokenResponse t;
  t.token = StringField(j, "token");
  if (t.token.empty()) t.token = StringField(j, "access_token");
  if (t.token.empty()) {
    return absl::InvalidArgumentError("token response has no token");
  }
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) {
    t.expires_in_seconds = std::max<int64_t>(j["expires_in"].get<int64_t>(), 1);
  }
  return t;
}

std::string RegistryErrorSummary(absl::string_view body) {
  auto j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return "";
  auto it = j.find("errors");
  if (it == j.end() || !it->is_array()) return "";
  std::vector<std::string> parts;
  for (const auto& e : *it) {
    if (!e.is_object()) continue;
    std::string code = StringField(e, "code");
    std::string message = StringField(e, "message");
    parts.push_back(message.empty() ? code : absl::StrCat(code, ": ", message));
  }
  return absl::StrJoin(parts, "; ");
}

std::string DeclaredManifestMediaType(absl::string_view document) {
  auto j = Json::parse(document, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return "";
  std::string declared = StringField(j, "mediaType");
  if (IsManifestMediaType(declared) || IsIndexMediaType(declared)) {
    return declared;
  }
  if (j.contains("manifests")) return kMediaTypeOciIndex;
  if (j.contains("layers")) return kMediaTypeOciManifest;
  return "";
}

std::string ResolveLocation(absl::string_view base_url,
                            absl::string_view location) {
  if (absl::StartsWith(location, "http://") ||
      absl::StartsWith(location, "https://")) {
    return std::string(location);
  }
  size_t scheme_end = base_url.find("://");
  size_t host_end = base_url.find('/', scheme_end + 3);
  absl::string_view origin = base_url.substr(0, host_end);
  if (absl::StartsWith(location, "/")) return absl::StrCat(origin, location);
  // Relative to the path's directory.
  size_t last = base_url.rfind('/');
  size_t q = base_url.find('?');
  if (q != absl::string_view::npos && last > q) last = base_url.rfind('/', q);
  return absl::StrCat(base_url.substr(0, last + 1), location);
}

std::string HostOfUrl(absl::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return "";
  absl::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  size_t at = rest.rfind('@');
  if (at != absl::string_view::npos) rest = rest.substr(at + 1);
  return std::string(rest);
}

}  // namespace longshore::image
