#include "scheduler/secret_sealer.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"

namespace longshore::scheduler {
namespace {

constexpr absl::string_view kMagic = "LSS1";
constexpr int kNonceBytes = 12;
constexpr int kTagBytes = 16;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

std::string Aad(absl::string_view build_id, absl::string_view secret_id) {
  return absl::StrCat(build_id, std::string(1, '\0'), secret_id);
}

const unsigned char* U(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

absl::StatusOr<SecretSealer> SecretSealer::FromKeyFile(
    const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("--secrets-key-file ", path, ": cannot stat it"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--secrets-key-file ", path, " may be read by others (mode ",
        absl::StrFormat("%o", st.st_mode & 0777),
        "): chmod 600 it; whoever reads it can open every journaled secret"));
  }
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::Status(
        text.status().code(),
        absl::StrCat("--secrets-key-file: ", text.status().message()));
  }
  std::string hex(absl::StripAsciiWhitespace(*text));
  if (hex.size() != 64 ||
      hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--secrets-key-file ", path,
        ": expected 64 hex digits (a 256-bit key, e.g. from `openssl rand "
        "-hex 32`), found ",
        hex.size(), " characters"));
  }
  return FromKey(absl::HexStringToBytes(hex));
}

absl::StatusOr<SecretSealer> SecretSealer::FromKey(absl::string_view key) {
  if (key.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("a secrets key is 32 bytes, not ", key.size()));
  }
  return SecretSealer(std::string(key));
}

absl::StatusOr<std::string> SecretSealer::Seal(absl::string_view build_id,
                                               absl::string_view secret_id,
                                               absl::string_view value) const {
  unsigned char nonce[kNonceBytes];
  if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  Ctx ctx(EVP_CIPHER_CTX_new());
  const std::string aad = Aad(build_id, secret_id);
  std::string out(kMagic);
  out.append(reinterpret_cast<const char*>(nonce), sizeof(nonce));
  const size_t body = out.size();
  out.resize(body + value.size() + kTagBytes);
  unsigned char* dst = reinterpret_cast<unsigned char*>(&out[body]);
  int n = 0, total = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key_),
                         nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, U(aad),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), dst, &n, U(value),
                        static_cast<int>(value.size())) != 1) {
    return absl::InternalError("AES-256-GCM: encryption failed");
  }
  total = n;
  if (EVP_EncryptFinal_ex(ctx.get(), dst + total, &n) != 1) {
    return absl::InternalError("AES-256-GCM: encryption failed");
  }
  total += n;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          dst + total) != 1) {
    return absl::InternalError("AES-256-GCM: no tag");
  }
  out.resize(body + total + kTagBytes);
  return out;
}

absl::StatusOr<std::string> SecretSealer::Open(absl::string_view build_id,
                                               absl::string_view secret_id,
                                               absl::string_view sealed) const {
  auto lost = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("sealed secret \"", secret_id,
                                            "\" of build ", build_id,
                                            " does not open: ", why));
  };
  if (!absl::StartsWith(sealed, kMagic) ||
      sealed.size() < kMagic.size() + kNonceBytes + kTagBytes) {
    return lost("not in the sealed form");
  }
  const absl::string_view nonce = sealed.substr(kMagic.size(), kNonceBytes);
  const absl::string_view cipher =
      sealed.substr(kMagic.size() + kNonceBytes,
                    sealed.size() - kMagic.size() - kNonceBytes - kTagBytes);
  std::string tag(sealed.substr(sealed.size() - kTagBytes));
  const std::string aad = Aad(build_id, secret_id);
  std::string out(cipher.size(), '\0');
  unsigned char* dst = reinterpret_cast<unsigned char*>(out.data());
  Ctx ctx(EVP_CIPHER_CTX_new());
  int n = 0, total = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key_),
                         U(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &n, U(aad),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), dst, &n, U(cipher),
                        static_cast<int>(cipher.size())) != 1) {
    return lost("decryption failed");
  }
  total = n;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                          tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), dst + total, &n) != 1) {
    return lost(
        "wrong key, or altered (was --secrets-key-file changed since it was "
        "sealed?)");
  }
  out.resize(total + n);
  return out;
}

}  // namespace longshore::scheduler
