// Incremental SHA-256 (OpenSSL EVP) and OCI digest strings ("sha256:<hex>").
#ifndef LONGSHORE_COMMON_SHA256_H_
#define LONGSHORE_COMMON_SHA256_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }
  // Lower-case hex of the digest. The object must not be updated afterwards.
  std::string HexDigest();
  // "sha256:" + HexDigest().
  std::string Digest() { return "sha256:" + HexDigest(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "sha256:<hex>" of `data`.
std::string Sha256Digest(absl::string_view data);

// "sha256:<hex>" of the file at `path`.
absl::StatusOr<std::string> Sha256File(const std::string& path);

// True when `digest` is "sha256:" followed by 64 lower-case hex characters.
bool IsValidDigest(absl::string_view digest);

}  // namespace longshore

#endif  // LONGSHORE_COMMON_SHA256_H_
