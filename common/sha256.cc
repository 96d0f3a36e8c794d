#include "common/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"
#include "common/unique_fd.h"

namespace longshore {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(new Impl) {
  impl_->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::Update(const void* data, size_t size) {
  EVP_DigestUpdate(impl_->ctx, data, size);
}

std::string Sha256::HexDigest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

std::string Sha256Digest(absl::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Digest();
}

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  Sha256 h;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read(%s)", path);
    }
    if (n == 0) break;
    h.Update(buf, static_cast<size_t>(n));
  }
  return h.Digest();
}

bool IsValidDigest(absl::string_view digest) {
  if (!absl::ConsumePrefix(&digest, "sha256:")) return false;
  if (digest.size() != 64) return false;
  for (char c : digest) {
    if (!(absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace longshore
