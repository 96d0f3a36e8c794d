#include "common/grpc_tls.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace longshore {
namespace {

// Reads a PEM file given by `flag`; an empty path gives an empty string.
absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    const std::string& flag,
                                    const char* marker) {
  if (path.empty()) return std::string();
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, ": ", pem.status().message()));
  }
  if (!absl::StrContains(*pem, marker)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " ", path, ": not a PEM file (no \"", marker, "\" line)"));
  }
  return pem;
}

struct Pems {
  std::string ca, cert, key;
};

absl::StatusOr<Pems> ReadAll(const TlsFiles& f) {
  if (f.cert.empty() != f.key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.cert_name, " and ", f.key_name, " go together: ",
                     f.cert.empty() ? f.cert_name : f.key_name, " is missing"));
  }
  Pems p;
  ASSIGN_OR_RETURN(p.ca, ReadPem(f.ca, f.ca_name, "-----BEGIN CERTIFICATE"));
  ASSIGN_OR_RETURN(p.cert,
                   ReadPem(f.cert, f.cert_name, "-----BEGIN CERTIFICATE"));
  ASSIGN_OR_RETURN(p.key, ReadPem(f.key, f.key_name, "PRIVATE KEY-----"));
  return p;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const TlsFiles& files) {
  if (!files.any()) return grpc::InsecureChannelCredentials();
  ASSIGN_OR_RETURN(Pems p, ReadAll(files));
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = p.ca;
  options.pem_cert_chain = p.cert;
  options.pem_private_key = p.key;
  return grpc::SslCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& files) {
  if (!files.any()) return grpc::InsecureServerCredentials();
  if (files.cert.empty() || files.key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS needs the server's certificate and key: pass ",
                     files.cert_name, " and ", files.key_name));
  }
  ASSIGN_OR_RETURN(Pems p, ReadAll(files));
  grpc::SslServerCredentialsOptions options(
      p.ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
      : files.client_certificate_optional
          ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = p.ca;
  options.pem_key_cert_pairs.push_back({p.key, p.cert});
  return grpc::SslServerCredentials(options);
}

}  // namespace longshore
