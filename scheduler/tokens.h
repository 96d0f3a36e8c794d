// Bearer tokens for CI systems where client certificates are awkward.
//
// The scheduler's --tokens-file holds one line per token: the token's SHA-256
// (never the token), the name it authenticates as and its role:
//
//   # sha256:<64 hex>                                                  NAME
//   ROLE sha256:3f1c...e0 team-a-ci submitter
//
// Roles: submitter (submits, and sees and cancels its own builds), operator
// (sees and acts on all builds and workers), worker (registers as a worker).
// `longshore token NAME --role ROLE` makes a token and prints its line.
#ifndef LONGSHORE_SCHEDULER_TOKENS_H_
#define LONGSHORE_SCHEDULER_TOKENS_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::scheduler {

enum class Role { kSubmitter, kOperator, kWorker };

// "submitter", "operator", "worker".
const char* RoleName(Role role);
// Parses a role name; INVALID_ARGUMENT naming the allowed ones.
absl::StatusOr<Role> ParseRole(absl::string_view name);

// "sha256:<hex>" of a token: what --tokens-file stores.
std::string HashToken(absl::string_view token);

// A new random token: "lst_" and 64 hex digits (256 bits from getrandom).
absl::StatusOr<std::string> NewToken();

// Names are what builds are recorded under: letters, digits and ._@/:-,
// at most 128 characters.
bool IsValidIdentityName(absl::string_view name);

struct TokenEntry {
  std::string name;
  Role role = Role::kSubmitter;
};

class TokenTable {
 public:
  // Reads a tokens file. Errors name the file, the line and what is wrong.
  static absl::StatusOr<TokenTable> Load(const std::string& path);
  // Parses the text of a tokens file; `source` names it in errors.
  static absl::StatusOr<TokenTable> Parse(absl::string_view text,
                                          const std::string& source);

  // The entry the token authenticates as, or null.
  const TokenEntry* Find(absl::string_view token) const;
  size_t size() const { return by_hash_.size(); }
  bool has_role(Role role) const;

 private:
  absl::flat_hash_map<std::string, TokenEntry> by_hash_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_TOKENS_H_
