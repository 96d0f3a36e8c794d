#include "scheduler/web/tls_peer.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace longshore::scheduler::web {
namespace {

std::string Asn1Text(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace

std::vector<std::string> CertificateNames(const SSL* ssl) {
  std::vector<std::string> names;
  if (ssl == nullptr) return names;
  // A certificate that failed verification never names anyone (the context
  // may be set to ask for one without requiring it).
  if (SSL_get_verify_result(ssl) != X509_V_OK) return names;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return names;
  X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
    std::string cn =
        Asn1Text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
    if (!cn.empty()) names.push_back(std::move(cn));
  }
  auto* alt = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (alt != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(alt); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(alt, i);
      if (gn->type == GEN_DNS || gn->type == GEN_URI || gn->type == GEN_EMAIL) {
        std::string name = Asn1Text(gn->d.ia5);
        if (!name.empty()) names.push_back(std::move(name));
      }
    }
    GENERAL_NAMES_free(alt);
  }
  X509_free(cert);
  return names;
}

}  // namespace longshore::scheduler::web
