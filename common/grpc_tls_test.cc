#include "common/grpc_tls.h"

#include <string>

#include "common/file_util.h"
#include "gtest/gtest.h"

namespace longshore {
namespace {

class GrpcTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    auto dir = MakeTempDir(tmp != nullptr ? tmp : "/tmp", "grpc-tls-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/not-pem", "hello\n").ok());
  }
  void TearDown() override { RemoveTree(dir_).IgnoreError(); }
  std::string dir_;
};

TEST_F(GrpcTlsTest, NothingGivenIsPlaintext) {
  EXPECT_TRUE(ClientCredentials(TlsFiles()).ok());
  EXPECT_TRUE(ServerCredentials(TlsFiles()).ok());
}

TEST_F(GrpcTlsTest, ACertificateNeedsItsKey) {
  TlsFiles f;
  f.cert = dir_ + "/cert.pem";
  f.key_name = "LONGSHORE_TLS_KEY";
  auto c = ClientCredentials(f);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("LONGSHORE_TLS_KEY is missing"),
            std::string::npos)
      << c.status();
}

TEST_F(GrpcTlsTest, ServerNeedsCertificateAndKey) {
  TlsFiles f;
  f.ca = dir_ + "/ca.pem";
  auto s = ServerCredentials(f);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("pass --tls-cert and --tls-key"),
            std::string::npos)
      << s.status();
}

TEST_F(GrpcTlsTest, FilesAreNamedInErrors) {
  TlsFiles missing;
  missing.ca = dir_ + "/absent.pem";
  auto c = ClientCredentials(missing);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--tls-ca " + dir_ + "/absent.pem"),
            std::string::npos)
      << c.status();

  TlsFiles garbage;
  garbage.ca = dir_ + "/not-pem";
  c = ClientCredentials(garbage);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("not a PEM file"), std::string::npos)
      << c.status();
}

}  // namespace
}  // namespace longshore
