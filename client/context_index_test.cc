#include "client/context_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "gtest/gtest.h"

namespace longshore::client {
namespace {

class ContextIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir(::testing::TempDir(), "index-");
    ASSERT_TRUE(dir.ok());
    dir_ = *dir;
  }
  void TearDown() override { RemoveTree(dir_).IgnoreError(); }

  struct stat Stat(const std::string& name) {
    struct stat st;
    EXPECT_EQ(lstat((dir_ + "/" + name).c_str(), &st), 0);
    return st;
  }
  // Sets the file's times an hour back, so entries recorded now are not racy.
  void Age(const std::string& name) {
    struct timespec ts[2] = {{time(nullptr) - 3600, 0},
                             {time(nullptr) - 3600, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, (dir_ + "/" + name).c_str(), ts, 0), 0);
  }
  std::string dir_;
};

TEST_F(ContextIndexTest, UnchangedFileIsFoundAfterSaveAndLoad) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a", "alpha").ok());
  Age("a");
  struct stat st = Stat("a");
  ContextIndex index;
  // ctime is now: recorded a second later it is no longer racy.
  index.Record("a", st, Sha256Digest("alpha"), absl::Now() + absl::Seconds(2));
  std::string path = dir_ + "/cache/longshore/idx";
  ASSERT_TRUE(index.Save(path).ok());
  ContextIndex loaded = ContextIndex::Load(path);
  EXPECT_EQ(loaded.size(), 1u);
  auto got = loaded.Lookup("a", Stat("a"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, Sha256Digest("alpha"));
  EXPECT_FALSE(loaded.Lookup("b", Stat("a")).has_value());
}

TEST_F(ContextIndexTest, RecentlyChangedFileIsHashedAgain) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a", "alpha").ok());
  ContextIndex index;
  index.Record("a", Stat("a"), Sha256Digest("alpha"), absl::Now());
  EXPECT_FALSE(index.Lookup("a", Stat("a")).has_value());
}

// The same size and the old mtime put back: ctime still tells.
TEST_F(ContextIndexTest, EditKeepingSizeAndMtimeIsNoticed) {
  std::string file = dir_ + "/a";
  ASSERT_TRUE(WriteFileAtomic(file, "alpha").ok());
  Age("a");
  struct stat before = Stat("a");
  ContextIndex index;
  index.Record("a", before, Sha256Digest("alpha"),
               absl::Now() + absl::Seconds(2));
  ASSERT_TRUE(index.Lookup("a", before).has_value());
  usleep(50000);  // Past the timestamp granularity (a jiffy).
  int fd = open(file.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "ALPHA", 5, 0), 5);
  close(fd);
  struct timespec ts[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, file.c_str(), ts, 0), 0);
  struct stat after = Stat("a");
  EXPECT_EQ(after.st_size, before.st_size);
  EXPECT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  EXPECT_FALSE(index.Lookup("a", after).has_value());
}

TEST_F(ContextIndexTest, OtherInodeOrSizeMisses) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a", "alpha").ok());
  Age("a");
  struct stat st = Stat("a");
  ContextIndex index;
  index.Record("a", st, Sha256Digest("alpha"), absl::Now() + absl::Seconds(2));
  struct stat other = st;
  other.st_ino += 1;
  EXPECT_FALSE(index.Lookup("a", other).has_value());
  other = st;
  other.st_size += 1;
  EXPECT_FALSE(index.Lookup("a", other).has_value());
}

TEST_F(ContextIndexTest, MalformedFileGivesEmptyIndex) {
  ASSERT_TRUE(
      WriteFileAtomic(dir_ + "/idx", "longshore-context-index 1\n\x05").ok());
  EXPECT_EQ(ContextIndex::Load(dir_ + "/idx").size(), 0u);
  EXPECT_EQ(ContextIndex::Load(dir_ + "/missing").size(), 0u);
}

TEST_F(ContextIndexTest, PathForUsesTheCacheDirectory) {
  setenv("XDG_CACHE_HOME", "/x/cache", 1);
  std::string p = ContextIndex::PathFor("/src/app");
  EXPECT_EQ(p.rfind("/x/cache/longshore/context-index/", 0), 0u) << p;
  EXPECT_NE(p, ContextIndex::PathFor("/src/other"));
}

TEST_F(ContextIndexTest, HashesInParallel) {
  std::vector<std::string> paths;
  for (int i = 0; i < 100; ++i) {
    std::string p = absl::StrCat(dir_, "/f", i);
    ASSERT_TRUE(WriteFileAtomic(p, absl::StrCat("content ", i)).ok());
    paths.push_back(p);
  }
  auto digests = HashFilesInParallel(paths, 4);
  ASSERT_TRUE(digests.ok());
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ((*digests)[i], Sha256Digest(absl::StrCat("content ", i)));
  }
  paths.push_back(dir_ + "/missing");
  EXPECT_FALSE(HashFilesInParallel(paths, 4).ok());
}

}  // namespace
}  // namespace longshore::client
