#include "image/registry_parse.h"

#include "gtest/gtest.h"
#include "image/oci.h"

namespace longshore::image {
namespace {

TEST(TokenResponseTest, ReadsTokenOrAccessTokenAndExpiry) {
  auto t = ParseTokenResponse(R"({"token":"abc","expires_in":300})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->token, "abc");
  EXPECT_EQ(t->expires_in_seconds, 300);
  auto oauth = ParseTokenResponse(R"({"access_token":"xyz","expires_in":0})");
  ASSERT_TRUE(oauth.ok()) << oauth.status();
  EXPECT_EQ(oauth->token, "xyz");
  EXPECT_EQ(oauth->expires_in_seconds, 1);
  EXPECT_EQ(ParseTokenResponse(R"({"token":"a"})")->expires_in_seconds, 60);
}

// Found while writing fuzz/registry_fuzzer.cc: a token, error code or media
// type of another JSON type threw out of the parser and ended the process
// (fuzz/corpus/registry/regression-*).
TEST(TokenResponseTest, FieldsOfAnotherTypeAreErrorsNotCrashes) {
  auto n = ParseTokenResponse(R"({"token":1})");
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(n.status().message(), "token response has no token");
  EXPECT_FALSE(
      ParseTokenResponse(R"({"token":"","access_token":{"a":1}})").ok());
  auto bad = ParseTokenResponse("<html>");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "token response is not JSON");
}

TEST(RegistryErrorSummaryTest, JoinsCodesAndMessages) {
  EXPECT_EQ(
      RegistryErrorSummary(
          R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"},{"code":"DENIED"}]})"),
      "MANIFEST_UNKNOWN: manifest unknown; DENIED");
  EXPECT_EQ(RegistryErrorSummary("not json"), "");
  EXPECT_EQ(RegistryErrorSummary(R"({"errors":[{"code":404,"message":[1]}]})"),
            "");
  EXPECT_EQ(
      RegistryErrorSummary(R"({"errors":[{"code":404,"message":"gone"}]})"),
      ": gone");
}

TEST(DeclaredManifestMediaTypeTest, FromMediaTypeOrShape) {
  EXPECT_EQ(
      DeclaredManifestMediaType(
          R"({"mediaType":"application/vnd.docker.distribution.manifest.v2+json"})"),
      kMediaTypeDockerManifest);
  EXPECT_EQ(DeclaredManifestMediaType(R"({"manifests":[]})"),
            kMediaTypeOciIndex);
  EXPECT_EQ(DeclaredManifestMediaType(R"({"mediaType":2,"layers":[]})"),
            kMediaTypeOciManifest);
  EXPECT_EQ(DeclaredManifestMediaType(R"({"mediaType":"text/plain"})"), "");
  EXPECT_EQ(DeclaredManifestMediaType("[1,2]"), "");
}

TEST(ResolveLocationTest, AbsolutePathAndRelative) {
  const char* base = "http://127.0.0.1:5000/v2/a/blobs/uploads/?x=1/2";
  EXPECT_EQ(ResolveLocation(base, "https://s.example/u"),
            "https://s.example/u");
  EXPECT_EQ(ResolveLocation(base, "/v2/a/blobs/uploads/id"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/id");
  EXPECT_EQ(ResolveLocation(base, "id?s=1"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/id?s=1");
  EXPECT_EQ(HostOfUrl("https://u:p@h.example:8443/x?y"), "h.example:8443");
  EXPECT_EQ(HostOfUrl("no-scheme"), "");
}

}  // namespace
}  // namespace longshore::image
