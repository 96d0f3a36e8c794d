#include "image/reference.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/sha256.h"

namespace longshore::image {
namespace {

constexpr char kDockerHub[] = "docker.io";

bool ValidRepoChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '/';
}

bool ValidTag(absl::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  char first = tag[0];
  if (!(isalnum(static_cast<unsigned char>(first)) || first == '_')) {
    return false;
  }
  for (char c : tag) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
          c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string Reference::Name() const {
  return absl::StrCat(registry, "/", repository);
}

std::string Reference::Normalized() const {
  std::string out = Name();
  if (!tag.empty()) absl::StrAppend(&out, ":", tag);
  if (!digest.empty()) absl::StrAppend(&out, "@", digest);
  return out;
}

std::string Reference::Familiar() const {
  std::string name = Name();
  if (registry == kDockerHub) {
    // The short form must read back as the same reference: "library/" goes
    // only from a one-component name ("library/a/b" stays), and "docker.io/"
    // stays when the first component would then read as a registry
    // ("docker.io/a.b/c" is not "a.b/c").
    absl::string_view repo = repository;
    absl::string_view rest = repo;
    if (absl::ConsumePrefix(&rest, "library/") &&
        !absl::StrContains(rest, '/')) {
      repo = rest;
    }
    size_t slash = repo.find('/');
    absl::string_view first = repo.substr(0, slash);
    bool reads_as_registry =
        slash != absl::string_view::npos &&
        (absl::StrContains(first, '.') || absl::StrContains(first, ':') ||
         first == "localhost");
    if (!reads_as_registry) name = std::string(repo);
  }
  if (!tag.empty()) absl::StrAppend(&name, ":", tag);
  if (!digest.empty()) absl::StrAppend(&name, "@", digest);
  return name;
}

absl::StatusOr<Reference> ParseReference(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid image reference \"", text, "\": ", why));
  };
  if (text.empty()) return bad("empty");
  Reference ref;
  absl::string_view rest = text;
  size_t at = rest.find('@');
  if (at != absl::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!IsValidDigest(ref.digest)) return bad("unsupported digest");
  }
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos &&
      (slash == absl::string_view::npos || colon > slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!ValidTag(ref.tag)) return bad("invalid tag");
  }
  size_t first = rest.find('/');
  absl::string_view head = rest.substr(0, first);
  if (first != absl::string_view::npos &&
      (absl::StrContains(head, '.') || absl::StrContains(head, ':') ||
       head == "localhost")) {
    ref.registry = std::string(head);
    rest = rest.substr(first + 1);
  } else {
    ref.registry = kDockerHub;
  }
  if (ref.registry == "index.docker.io" ||
      ref.registry == "registry-1.docker.io") {
    ref.registry = kDockerHub;
  }
  if (rest.empty()) return bad("empty repository");
  for (char c : rest) {
    if (!ValidRepoChar(c)) return bad("repository must be lower-case");
  }
  if (rest.front() == '/' || rest.back() == '/' ||
      absl::StrContains(rest, "//")) {
    return bad("empty path component");
  }
  ref.repository = std::string(rest);
  if (ref.registry == kDockerHub && !absl::StrContains(rest, '/')) {
    ref.repository = absl::StrCat("library/", rest);
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

}  // namespace longshore::image
