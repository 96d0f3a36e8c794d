#include "image/content_store.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "gtest/gtest.h"

namespace longshore::image {
namespace {

std::string TempRoot() {
  const char* t = getenv("TEST_TMPDIR");
  auto dir = MakeTempDir(t ? t : "/tmp", "store_test");
  EXPECT_TRUE(dir.ok()) << dir.status();
  return *dir;
}

std::string DiffId(int i) { return Sha256Digest(absl::StrCat("layer ", i)); }

// Fills a snapshot with `kb` KiB of data.
ContentStore::FillFn FillWith(int kb, std::atomic<int>* calls = nullptr) {
  return [kb, calls](const std::string& dir) {
    if (calls) ++*calls;
    return WriteFileAtomic(dir + "/data", std::string(kb * 1024, 'x'));
  };
}

TEST(ContentStore, PutHasReadAndIngestVerify) {
  std::string root = TempRoot();
  auto store = ContentStore::Open(root + "/store");
  ASSERT_TRUE(store.ok()) << store.status();
  ContentStore& cs = **store;
  auto d = cs.Put("hello");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, Sha256Digest("hello"));
  EXPECT_TRUE(cs.Has(*d));
  EXPECT_EQ(cs.BlobPath(*d), root + "/store/blobs/sha256/" + d->substr(7));
  EXPECT_EQ(*cs.ReadBlob(*d), "hello");
  EXPECT_EQ(*cs.BlobSize(*d), 5);
  struct stat st;
  ASSERT_EQ(stat(cs.BlobPath(*d).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  ASSERT_TRUE(cs.Put("hello").ok());  // idempotent
  EXPECT_FALSE(cs.Has(Sha256Digest("other")));
  EXPECT_FALSE(cs.Has("md5:abc"));

  ASSERT_TRUE(WriteFileAtomic(root + "/file", "payload").ok());
  absl::Status bad = cs.Ingest(root + "/file", Sha256Digest("not payload"));
  EXPECT_EQ(bad.code(), absl::StatusCode::kDataLoss) << bad;
  EXPECT_NE(bad.message().find("digest mismatch"), std::string::npos);
  EXPECT_FALSE(cs.Has(Sha256Digest("not payload")));
  EXPECT_FALSE(PathExists(cs.BlobPath(Sha256Digest("not payload"))));
  ASSERT_TRUE(cs.Ingest(root + "/file", Sha256Digest("payload")).ok());
  EXPECT_EQ(*cs.ReadBlob(Sha256Digest("payload")), "payload");
  EXPECT_TRUE(PathExists(root + "/file"));  // the source stays

  auto tmp = cs.NewTempPath("layer");
  ASSERT_TRUE(tmp.ok());
  ASSERT_TRUE(WriteFileAtomic(*tmp, "blob bytes").ok());
  ASSERT_TRUE(cs.CommitTemp(*tmp, Sha256Digest("blob bytes")).ok());
  EXPECT_FALSE(PathExists(*tmp));
  EXPECT_TRUE(cs.Has(Sha256Digest("blob bytes")));
  EXPECT_EQ(cs.TotalBytes(), 5 + 7 + 10);
}

TEST(ContentStore, SnapshotIsFilledOnceAndShared) {
  std::string root = TempRoot();
  auto store = ContentStore::Open(root + "/store");
  ASSERT_TRUE(store.ok());
  ContentStore& cs = **store;
  std::atomic<int> calls{0};
  absl::Notification go;
  auto slow_fill = [&](const std::string& dir) {
    ++calls;
    go.WaitForNotification();
    return WriteFileAtomic(dir + "/f", "content");
  };
  std::vector<std::thread> threads;
  std::vector<ContentStore::Lease> leases(4);
  std::vector<absl::Status> statuses(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto l = cs.GetOrCreateSnapshot(DiffId(1), slow_fill);
      statuses[i] = l.status();
      if (l.ok()) leases[i] = std::move(*l);
    });
  }
  absl::SleepFor(absl::Milliseconds(100));
  go.Notify();
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i];
    EXPECT_EQ(leases[i].path(), cs.SnapshotPath(DiffId(1)));
  }
  EXPECT_EQ(*ReadFile(cs.SnapshotPath(DiffId(1)) + "/f"), "content");
  EXPECT_EQ(cs.RefCount(DiffId(1), true), 4);
  leases.clear();
  EXPECT_EQ(cs.RefCount(DiffId(1), true), 0);
  EXPECT_TRUE(cs.HasSnapshot(DiffId(1)));
}

TEST(ContentStore, FailedFillLeavesNothingBehind) {
  std::string root = TempRoot();
  auto store = ContentStore::Open(root + "/store");
  ASSERT_TRUE(store.ok());
  ContentStore& cs = **store;
  auto l = cs.GetOrCreateSnapshot(DiffId(2), [](const std::string& dir) {
    EXPECT_TRUE(WriteFileAtomic(dir + "/partial", "x").ok());
    return absl::DataLossError("corrupt layer");
  });
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().message(), "corrupt layer");
  EXPECT_FALSE(cs.HasSnapshot(DiffId(2)));
  EXPECT_FALSE(PathExists(cs.SnapshotPath(DiffId(2))));
  EXPECT_EQ(system(("test -z \"$(ls -A " + root + "/store/tmp)\"").c_str()), 0);
  // A later attempt can still succeed.
  EXPECT_TRUE(cs.GetOrCreateSnapshot(DiffId(2), FillWith(1)).ok());
}

TEST(ContentStore, GcIsLruAndNeverRemovesReferencedItems) {
  std::string root = TempRoot();
  auto store = ContentStore::Open(root + "/store");
  ASSERT_TRUE(store.ok());
  ContentStore& cs = **store;
  // Three 64 KiB snapshots, created in order 1, 2, 3.
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(cs.GetOrCreateSnapshot(DiffId(i), FillWith(64)).ok());
  }
  auto blob = cs.Put(std::string(1000, 'b'));
  ASSERT_TRUE(blob.ok());
  int64_t snap_size = cs.TotalBytes() - 1000;
  snap_size /= 3;
  ASSERT_GE(snap_size, 64 * 1024);
  // Use 1 again: 2 is now the least recently used.
  { ASSERT_TRUE(cs.AcquireSnapshot(DiffId(1)).ok()); }
  auto gc = cs.GarbageCollect(cs.TotalBytes() - 1);
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->snapshots_removed, 1);
  EXPECT_FALSE(cs.HasSnapshot(DiffId(2)));
  EXPECT_TRUE(cs.HasSnapshot(DiffId(1)));
  EXPECT_TRUE(cs.HasSnapshot(DiffId(3)));
  EXPECT_FALSE(PathExists(cs.SnapshotPath(DiffId(2))));

  // A budget of zero removes everything except what is held.
  auto held = cs.AcquireSnapshot(DiffId(3));
  ASSERT_TRUE(held.ok());
  auto held_blob = cs.AcquireBlob(*blob);
  ASSERT_TRUE(held_blob.ok());
  gc = cs.GarbageCollect(0);
  ASSERT_TRUE(gc.ok());
  EXPECT_FALSE(cs.HasSnapshot(DiffId(1)));
  EXPECT_TRUE(cs.HasSnapshot(DiffId(3)));
  EXPECT_TRUE(PathExists(held->path() + "/data"));
  EXPECT_TRUE(cs.Has(*blob));
  EXPECT_GT(gc->bytes_remaining, 0);
  held->Release();
  held_blob->Release();
  gc = cs.GarbageCollect(0);
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->bytes_remaining, 0);
  EXPECT_FALSE(cs.HasSnapshot(DiffId(3)));
  EXPECT_FALSE(cs.Has(*blob));
  EXPECT_EQ(cs.TotalBytes(), 0);
}

TEST(ContentStore, ReopenKeepsContentAndClearsCrashLeftovers) {
  std::string root = TempRoot();
  std::string digest;
  {
    auto store = ContentStore::Open(root + "/store");
    ASSERT_TRUE(store.ok());
    digest = *(*store)->Put("persist");
    ASSERT_TRUE((*store)->GetOrCreateSnapshot(DiffId(7), FillWith(4)).ok());
    // A crashed extraction and a crashed blob write.
    auto tmpdir = (*store)->PrepareSnapshot(DiffId(8));
    ASSERT_TRUE(tmpdir.ok());
    ASSERT_TRUE(WriteFileAtomic(*tmpdir + "/half", "x").ok());
    ASSERT_TRUE(WriteFileAtomic(root + "/store/tmp/put-1-1", "x").ok());
  }
  // A snapshot renamed into place whose size was never written, and a stray
  // size.
  std::string s9 = root + "/store/snapshots/" + DiffId(9).substr(7);
  ASSERT_TRUE(MakeDirs(s9).ok());
  ASSERT_TRUE(WriteFileAtomic(s9 + "/f", std::string(8192, 'y')).ok());
  ASSERT_TRUE(
      WriteFileAtomic(
          root + "/store/snapshots/" + DiffId(10).substr(7) + ".size", "5")
          .ok());
  auto store = ContentStore::Open(root + "/store");
  ASSERT_TRUE(store.ok()) << store.status();
  ContentStore& cs = **store;
  EXPECT_TRUE(cs.Has(digest));
  EXPECT_TRUE(cs.HasSnapshot(DiffId(7)));
  EXPECT_FALSE(cs.HasSnapshot(DiffId(8)));
  EXPECT_TRUE(cs.HasSnapshot(DiffId(9)));
  EXPECT_FALSE(cs.HasSnapshot(DiffId(10)));
  EXPECT_FALSE(
      PathExists(root + "/store/snapshots/" + DiffId(10).substr(7) + ".size"));
  EXPECT_TRUE(PathExists(s9 + ".size"));
  EXPECT_EQ(system(("test -z \"$(ls -A " + root + "/store/tmp)\"").c_str()), 0);
  EXPECT_GE(cs.TotalBytes(), 8192 + 4096 + 7);
}

}  // namespace
}  // namespace longshore::image
