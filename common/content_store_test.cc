#include "common/content_store.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <thread>
#include <vector>

#include "common/file_util.h"
#include "common/sha256.h"
#include "gtest/gtest.h"

namespace longshore {
namespace {

class ContentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir(::testing::TempDir(), "cas-");
    ASSERT_TRUE(dir.ok());
    dir_ = *dir;
    auto store = ContentStore::Open(dir_ + "/store", /*durable=*/true);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override { RemoveTree(dir_).IgnoreError(); }
  std::string dir_;
  std::unique_ptr<ContentStore> store_;
};

TEST_F(ContentStoreTest, PutStatReadRoundTrip) {
  std::string data = "hello context";
  std::string digest = Sha256Digest(data);
  EXPECT_TRUE(absl::IsNotFound(store_->Stat(digest).status()));
  ASSERT_TRUE(store_->Put(digest, data).ok());
  auto size = store_->Stat(digest);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, static_cast<int64_t>(data.size()));
  EXPECT_EQ(*store_->Read(digest), data);
  auto usage = store_->Measure();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->files, 1);
  EXPECT_EQ(usage->bytes, static_cast<int64_t>(data.size()));
}

TEST_F(ContentStoreTest, WrongBytesAreRefusedAndLeaveNothing) {
  std::string digest = Sha256Digest("the announced bytes");
  absl::Status s = store_->Put(digest, "other bytes, same name");
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_FALSE(store_->Has(digest));
  auto tmp = ListDirSorted(dir_ + "/store/tmp");
  ASSERT_TRUE(tmp.ok());
  EXPECT_TRUE(tmp->empty());
}

TEST_F(ContentStoreTest, MoreOrFewerBytesThanAnnouncedAreRefused) {
  std::string data = "12345";
  auto w = store_->NewWriter(Sha256Digest(data), 4);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(absl::IsInvalidArgument((*w)->Append(data)));
  auto w2 = store_->NewWriter(Sha256Digest(data), 6);
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE((*w2)->Append(data).ok());
  EXPECT_TRUE(absl::IsInvalidArgument((*w2)->Commit()));
  EXPECT_FALSE(store_->Has(Sha256Digest(data)));
}

TEST_F(ContentStoreTest, VerifyThenSyncThenPublish) {
  std::vector<std::unique_ptr<ContentStore::Writer>> batch;
  for (int i = 0; i < 3; ++i) {
    std::string data(100 + i, 'a' + i);
    auto w = store_->NewWriter(Sha256Digest(data), data.size());
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(data).ok());
    ASSERT_TRUE((*w)->Verify().ok());
    EXPECT_FALSE(store_->Has(Sha256Digest(data)));  // Not yet published.
    batch.push_back(std::move(*w));
  }
  ASSERT_TRUE(store_->Sync().ok());
  for (auto& w : batch) ASSERT_TRUE(w->Publish().ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(store_->Has(Sha256Digest(std::string(100 + i, 'a' + i))));
  }
  auto bad = store_->NewWriter(Sha256Digest("x"), 1);
  ASSERT_TRUE(bad.ok());
  ASSERT_TRUE((*bad)->Append("y").ok());
  EXPECT_FALSE((*bad)->Verify().ok());
  EXPECT_FALSE((*bad)->Publish().ok());
}

TEST_F(ContentStoreTest, MalformedDigestIsRefused) {
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Stat("sha256:../x").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Put("md5:abc", "x")));
}

TEST_F(ContentStoreTest, ConcurrentWritersOfOneDigest) {
  std::string data(1 << 20, 'z');
  std::string digest = Sha256Digest(data);
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { results[i] = store_->Put(digest, data); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r;
  EXPECT_EQ(*store_->Read(digest), data);
}

TEST_F(ContentStoreTest, RemoveUnusedSinceKeepsTouchedFiles) {
  std::string a = "old", b = "new";
  ASSERT_TRUE(store_->Put(Sha256Digest(a), a).ok());
  ASSERT_TRUE(store_->Put(Sha256Digest(b), b).ok());
  struct timespec old[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, store_->Path(Sha256Digest(a))->c_str(), old, 0),
            0);
  ASSERT_EQ(utimensat(AT_FDCWD, store_->Path(Sha256Digest(b))->c_str(), old, 0),
            0);
  store_->Touch(Sha256Digest(b));
  auto removed = store_->RemoveUnusedSince(absl::Now() - absl::Hours(1));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->files, 1);
  EXPECT_FALSE(store_->Has(Sha256Digest(a)));
  EXPECT_TRUE(store_->Has(Sha256Digest(b)));
}

}  // namespace
}  // namespace longshore
