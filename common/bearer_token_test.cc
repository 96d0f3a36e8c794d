#include "common/bearer_token.h"

#include <stdlib.h>

#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace longshore {
namespace {

using ::testing::HasSubstr;

TEST(BearerTokenTest, LoopbackTargets) {
  EXPECT_TRUE(IsLoopbackTarget("127.0.0.1:7070"));
  EXPECT_TRUE(IsLoopbackTarget("localhost:7070"));
  EXPECT_TRUE(IsLoopbackTarget("[::1]:7070"));
  EXPECT_TRUE(IsLoopbackTarget("ipv4:127.0.0.2:1"));
  EXPECT_FALSE(IsLoopbackTarget("192.0.2.2:7070"));
  EXPECT_FALSE(IsLoopbackTarget("scheduler.example:7070"));
  EXPECT_FALSE(IsLoopbackTarget("[2001:db8::1]:7070"));
  EXPECT_FALSE(IsLoopbackTarget("127.example.com:7070"));
}

TEST(BearerTokenTest, NeverInPlaintextBeyondLoopback) {
  EXPECT_TRUE(CheckTokenTransport("127.0.0.1:7070", false).ok());
  EXPECT_TRUE(CheckTokenTransport("scheduler.example:7070", true).ok());
  absl::Status st = CheckTokenTransport("192.0.2.2:7070", false);
  EXPECT_TRUE(absl::IsFailedPrecondition(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("plaintext to 192.0.2.2"));
}

TEST(BearerTokenTest, ReadTokenFileNamesTheFlagAndFile) {
  const std::string dir = getenv("TEST_TMPDIR");
  ASSERT_TRUE(WriteFileAtomic(dir + "/tok", "  lst_abc\n").ok());
  absl::StatusOr<std::string> token =
      ReadTokenFile(dir + "/tok", "--token-file");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "lst_abc");
  ASSERT_TRUE(WriteFileAtomic(dir + "/empty", "\n").ok());
  token = ReadTokenFile(dir + "/empty", "--token-file");
  EXPECT_THAT(std::string(token.status().message()),
              HasSubstr("--token-file: " + dir + "/empty holds no token"));
  token = ReadTokenFile(dir + "/missing", "--token-file");
  EXPECT_THAT(std::string(token.status().message()), HasSubstr("--token-file"));
  ASSERT_TRUE(WriteFileAtomic(dir + "/two", "a b\n").ok());
  EXPECT_FALSE(ReadTokenFile(dir + "/two", "--token-file").ok());
}

}  // namespace
}  // namespace longshore
