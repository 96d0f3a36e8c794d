#include <errno.h>
#include <stdlib.h>

#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/flag_names.h"
#include "common/platform.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "gtest/gtest.h"

namespace longshore {
namespace {

TEST(ErrnoStatus, NamesOperationAndReason) {
  absl::Status s = ErrnoStatus(ENOENT, "openat(%s)", "/x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "openat(/x): No such file or directory");
  EXPECT_EQ(ErrnoStatus(EPERM, "mount").code(),
            absl::StatusCode::kPermissionDenied);
}

absl::StatusOr<int> Half(int v) {
  if (v % 2) return absl::InvalidArgumentError("odd");
  return v / 2;
}

absl::Status UseMacros(int v, int* out) {
  ASSIGN_OR_RETURN(int h, Half(v));
  RETURN_IF_ERROR(h > 10 ? absl::OutOfRangeError("big") : absl::OkStatus());
  *out = h;
  return absl::OkStatus();
}

TEST(StatusMacros, PropagateErrorsAndValues) {
  int out = 0;
  EXPECT_TRUE(UseMacros(8, &out).ok());
  EXPECT_EQ(out, 4);
  EXPECT_EQ(UseMacros(3, &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UseMacros(40, &out).code(), absl::StatusCode::kOutOfRange);
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256Digest(""),
            "sha256:"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Digest("abc"),
            "sha256:"
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(IsValidDigest(Sha256Digest("x")));
  EXPECT_FALSE(IsValidDigest("sha256:abc"));
  EXPECT_FALSE(IsValidDigest(
      "md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

TEST(FileUtil, WriteReadRemove) {
  const char* tmp = getenv("TEST_TMPDIR");
  auto dir = MakeTempDir(tmp ? tmp : "/tmp", "fu-");
  ASSERT_TRUE(dir.ok()) << dir.status();
  ASSERT_TRUE(MakeDirs(*dir + "/a/b/c").ok());
  ASSERT_TRUE(WriteFileAtomic(*dir + "/a/b/c/f", "hello").ok());
  auto data = ReadFile(*dir + "/a/b/c/f");
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, "hello");
  auto digest = Sha256File(*dir + "/a/b/c/f");
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(*digest, Sha256Digest("hello"));
  ASSERT_TRUE(RemoveTree(*dir).ok());
  EXPECT_FALSE(PathExists(*dir));
  EXPECT_EQ(ReadFile(*dir + "/nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(FileUtil, CopyFileAtomicWholeOrNothing) {
  const char* tmp = getenv("TEST_TMPDIR");
  auto dir = MakeTempDir(tmp ? tmp : "/tmp", "cp-");
  ASSERT_TRUE(dir.ok());
  std::string big(3 << 20, 'x');  // more than one buffer
  big[12345] = 'y';
  ASSERT_TRUE(WriteFileAtomic(*dir + "/src", big).ok());
  ASSERT_TRUE(CopyFileAtomic(*dir + "/src", *dir + "/dst").ok());
  EXPECT_EQ(*ReadFile(*dir + "/dst"), big);
  absl::Status s = CopyFileAtomic(*dir + "/missing", *dir + "/dst2");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(PathExists(*dir + "/dst2"));
  s = CopyFileAtomic(*dir + "/src", *dir + "/no/such/dir/dst");
  EXPECT_FALSE(s.ok());
  ASSERT_TRUE(RemoveTree(*dir).ok());
}

TEST(FlagNames, DashesBecomeUnderscoresBeforeTerminator) {
  const char* in[] = {"prog", "--work-dir=/a-b", "--slots", "2", "-x",
                      "--",   "--not-a-flag"};
  std::vector<std::string> out = NormalizeFlagNames(7, const_cast<char**>(in));
  EXPECT_EQ(out[1], "--work_dir=/a-b");
  EXPECT_EQ(out[2], "--slots");
  EXPECT_EQ(out[4], "-x");
  EXPECT_EQ(out[6], "--not-a-flag");
  std::vector<char*> ptrs = ArgvPointers(out);
  EXPECT_EQ(ptrs.size(), 8u);
  EXPECT_EQ(ptrs.back(), nullptr);
}

TEST(PlatformTest, Matching) {
  EXPECT_TRUE(PlatformMatches("", "linux/amd64"));
  EXPECT_TRUE(PlatformMatches("", ""));
  EXPECT_TRUE(PlatformMatches("linux/amd64", "linux/amd64"));
  EXPECT_FALSE(PlatformMatches("linux/amd64", "linux/arm64"));
  EXPECT_FALSE(PlatformMatches("linux/amd64", ""));
  EXPECT_TRUE(PlatformMatches("linux/arm64/v8", "linux/arm64"));
  EXPECT_TRUE(PlatformMatches("linux/arm64", "linux/arm64/v8"));
  EXPECT_TRUE(PlatformMatches("linux/arm", "linux/arm/v7"));
  EXPECT_FALSE(PlatformMatches("linux/arm/v6", "linux/arm/v7"));
  EXPECT_FALSE(PlatformMatches("windows/amd64", "linux/amd64"));
}

TEST(PlatformTest, OfMachine) {
  EXPECT_EQ(PlatformOfMachine("x86_64"), "linux/amd64");
  EXPECT_EQ(PlatformOfMachine("aarch64"), "linux/arm64");
  EXPECT_EQ(PlatformOfMachine("armv7l"), "linux/arm/v7");
  EXPECT_EQ(PlatformOfMachine("i686"), "linux/386");
  EXPECT_EQ(PlatformOfMachine("riscv64"), "linux/riscv64");
  EXPECT_EQ(NativePlatform().rfind("linux/", 0), 0u) << NativePlatform();
}

}  // namespace
}  // namespace longshore
