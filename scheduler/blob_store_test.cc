#include "scheduler/blob_store.h"

#include <dirent.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/sha256.h"
#include "gtest/gtest.h"

namespace longshore::scheduler {
namespace {

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return {"opendir failed: " + dir};
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    auto dir = MakeTempDir(tmp != nullptr ? tmp : "/tmp", "blobs-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    auto store = BlobStore::Open(dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override { ASSERT_TRUE(RemoveTree(dir_).ok()); }

  std::string dir_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, StoresAContextOnlyWhenDigestAndSizeMatch) {
  const std::string data = "context bytes";
  const std::string digest = Sha256Digest(data);
  EXPECT_TRUE(absl::IsNotFound(store_->StatContext(digest).status()));
  auto path = store_->ContextPath(digest);
  ASSERT_TRUE(path.ok());

  auto bad = store_->NewContextWriter();
  ASSERT_TRUE(bad.ok());
  ASSERT_TRUE((*bad)->Append("context bytez").ok());
  auto bad_commit = (*bad)->Commit(*path, digest, -1);
  EXPECT_TRUE(absl::IsInvalidArgument(bad_commit.status()));
  EXPECT_FALSE(PathExists(*path));

  auto wrong_size = store_->NewContextWriter();
  ASSERT_TRUE(wrong_size.ok());
  ASSERT_TRUE((*wrong_size)->Append(data).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(
      (*wrong_size)->Commit(*path, digest, 3).status()));

  auto good = store_->NewContextWriter();
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE((*good)->Append("context ").ok());
  ASSERT_TRUE((*good)->Append("bytes").ok());
  auto size = (*good)->Commit(*path, digest, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, static_cast<int64_t>(data.size()));
  auto stat = store_->StatContext(digest);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(*stat, static_cast<int64_t>(data.size()));
  auto read = ReadFile(*path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, data);
  // Failed writers leave nothing behind: only the published file remains.
  bad->reset();
  wrong_size->reset();
  EXPECT_EQ(Entries(dir_ + "/contexts/sha256"),
            std::vector<std::string>{digest.substr(7)});
}

TEST_F(BlobStoreTest, RejectsMalformedNames) {
  EXPECT_TRUE(absl::IsInvalidArgument(
      store_->StatContext("sha256:../../etc").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->OutputPath("../x", 0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->OutputPath("..", 0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->OutputPath("b", -1).status()));
  auto ok = store_->OutputPath("b1", 2);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, dir_ + "/outputs/b1/2");
}

TEST_F(BlobStoreTest, OpenRemovesInterruptedUploads) {
  ASSERT_TRUE(MakeDirs(dir_ + "/outputs/b1").ok());
  ASSERT_TRUE(
      WriteFileAtomic(dir_ + "/contexts/sha256/.incoming.abc", "x").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/outputs/b1/.incoming.def", "y").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/outputs/b1/0", "kept").ok());
  auto reopened = BlobStore::Open(dir_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_FALSE(PathExists(dir_ + "/contexts/sha256/.incoming.abc"));
  EXPECT_FALSE(PathExists(dir_ + "/outputs/b1/.incoming.def"));
  EXPECT_TRUE(PathExists(dir_ + "/outputs/b1/0"));
}

}  // namespace
}  // namespace longshore::scheduler
