#include "scheduler/tokens.h"

#include <errno.h>
#include <sys/random.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/sha256.h"

namespace longshore::scheduler {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kSubmitter:
      return "submitter";
    case Role::kOperator:
      return "operator";
    case Role::kWorker:
      return "worker";
  }
  return "?";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  if (name == "submitter") return Role::kSubmitter;
  if (name == "operator") return Role::kOperator;
  if (name == "worker") return Role::kWorker;
  return absl::InvalidArgumentError(absl::StrCat(
      "role \"", name, "\" is not one of submitter, operator, worker"));
}

std::string HashToken(absl::string_view token) { return Sha256Digest(token); }

absl::StatusOr<std::string> NewToken() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("getrandom: errno ", errno));
    }
    got += static_cast<size_t>(n);
  }
  return absl::StrCat(
      "lst_", absl::BytesToHexString(absl::string_view(
                  reinterpret_cast<const char*>(bytes), sizeof(bytes))));
}

bool IsValidIdentityName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        absl::string_view("._@/:-").find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::Status(
        text.status().code(),
        absl::StrCat("--tokens-file: ", text.status().message()));
  }
  return Parse(*text, path);
}

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view text,
                                             const std::string& source) {
  TokenTable table;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_number, ": ", what));
    };
    if (fields.size() != 3) {
      return bad(absl::StrCat(
          "expected \"sha256:<64 hex> NAME ROLE\", found ", fields.size(),
          " fields (a line holds a token's hash, never the token)"));
    }
    const absl::string_view hash = fields[0];
    if (absl::StartsWith(hash, "lst_")) {
      return bad(
          "this is a token, not its hash: store the line `longshore token` "
          "printed (sha256:...), and give the token only to its client");
    }
    if (!absl::StartsWith(hash, "sha256:") || hash.size() != 7 + 64 ||
        hash.substr(7).find_first_not_of("0123456789abcdef") !=
            absl::string_view::npos) {
      return bad(
          absl::StrCat("\"", hash, "\" is not sha256:<64 lower-case hex>"));
    }
    if (!IsValidIdentityName(fields[1])) {
      return bad(absl::StrCat("name \"", fields[1],
                              "\" must be 1-128 letters, digits or ._@/:-"));
    }
    absl::StatusOr<Role> role = ParseRole(fields[2]);
    if (!role.ok()) return bad(role.status().message());
    TokenEntry entry{std::string(fields[1]), *role};
    if (!table.by_hash_.emplace(std::string(hash), std::move(entry)).second) {
      return bad("this hash is listed twice");
    }
  }
  return table;
}

const TokenEntry* TokenTable::Find(absl::string_view token) const {
  auto it = by_hash_.find(HashToken(token));
  return it == by_hash_.end() ? nullptr : &it->second;
}

bool TokenTable::has_role(Role role) const {
  for (const auto& [hash, entry] : by_hash_) {
    if (entry.role == role) return true;
  }
  return false;
}

}  // namespace longshore::scheduler
