#include "scheduler/secret_sealer.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace longshore::scheduler {
namespace {

using ::testing::HasSubstr;

TEST(SecretSealerTest, SealsAndOpensBoundToBuildAndId) {
  absl::StatusOr<SecretSealer> s = SecretSealer::FromKey(std::string(32, 'k'));
  ASSERT_TRUE(s.ok());
  absl::StatusOr<std::string> sealed = s->Seal("b1", "npm", "hunter2");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->find("hunter2"), std::string::npos);
  absl::StatusOr<std::string> again = s->Seal("b1", "npm", "hunter2");
  EXPECT_NE(*sealed, *again) << "a fresh nonce each time";
  absl::StatusOr<std::string> opened = s->Open("b1", "npm", *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "hunter2");
  // Moved to another build or id, altered, or under another key: refused.
  EXPECT_TRUE(absl::IsDataLoss(s->Open("b2", "npm", *sealed).status()));
  EXPECT_TRUE(absl::IsDataLoss(s->Open("b1", "pip", *sealed).status()));
  std::string altered = *sealed;
  altered[altered.size() / 2] ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(s->Open("b1", "npm", altered).status()));
  absl::StatusOr<SecretSealer> other =
      SecretSealer::FromKey(std::string(32, 'x'));
  absl::Status st = other->Open("b1", "npm", *sealed).status();
  EXPECT_THAT(std::string(st.message()), HasSubstr("wrong key"));
  EXPECT_TRUE(absl::IsDataLoss(s->Open("b1", "npm", "short").status()));
  // An empty value seals too.
  absl::StatusOr<std::string> empty = s->Seal("b1", "e", "");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*s->Open("b1", "e", *empty), "");
}

TEST(SecretSealerTest, KeyFileChecks) {
  const std::string dir = getenv("TEST_TMPDIR");
  const std::string key = dir + "/key";
  ASSERT_TRUE(WriteFileAtomic(key, std::string(64, 'a') + "\n", 0600).ok());
  EXPECT_TRUE(SecretSealer::FromKeyFile(key).ok());
  chmod(key.c_str(), 0644);
  absl::Status st = SecretSealer::FromKeyFile(key).status();
  EXPECT_THAT(std::string(st.message()), HasSubstr("chmod 600"));
  ASSERT_TRUE(WriteFileAtomic(dir + "/short", "abcd\n", 0600).ok());
  st = SecretSealer::FromKeyFile(dir + "/short").status();
  EXPECT_THAT(std::string(st.message()), HasSubstr("expected 64 hex digits"));
  st = SecretSealer::FromKeyFile(dir + "/missing").status();
  EXPECT_THAT(std::string(st.message()), HasSubstr("--secrets-key-file"));
}

}  // namespace
}  // namespace longshore::scheduler
