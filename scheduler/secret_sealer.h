// Sealing build secrets for the journal (--secrets-key-file).
//
// Without a key, a build's secret values live only in the scheduler's
// memory: the journal keeps their ids, so a build that outlived a restart
// without them fails before it runs, naming the secret. With a key, each
// value is sealed with AES-256-GCM (OpenSSL) and journaled, so queued builds
// keep their secrets across restarts. The sealed form binds the value to its
// build and secret id (as associated data): a value cannot be moved to
// another build or id without failing to open.
//
// Sealed form: "LSS1" | 12-byte random nonce | ciphertext | 16-byte tag.
#ifndef LONGSHORE_SCHEDULER_SECRET_SEALER_H_
#define LONGSHORE_SCHEDULER_SECRET_SEALER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::scheduler {

class SecretSealer {
 public:
  // The key file holds 64 hex digits (32 bytes), e.g. from
  // `openssl rand -hex 32`; surrounding whitespace is ignored. Errors name
  // the file and what is wrong; a key file others may read is refused.
  static absl::StatusOr<SecretSealer> FromKeyFile(const std::string& path);
  // For tests: a 32-byte key.
  static absl::StatusOr<SecretSealer> FromKey(absl::string_view key);

  absl::StatusOr<std::string> Seal(absl::string_view build_id,
                                   absl::string_view secret_id,
                                   absl::string_view value) const;
  // DATA_LOSS when the sealed bytes were made with another key, for another
  // build or id, or were altered.
  absl::StatusOr<std::string> Open(absl::string_view build_id,
                                   absl::string_view secret_id,
                                   absl::string_view sealed) const;

 private:
  explicit SecretSealer(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_SECRET_SEALER_H_
