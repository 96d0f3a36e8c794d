// The layer cache tiers: local records, a cache repository in a real
// docker-registry shared by two "workers" (separate content stores), and the
// tiered cache that degrades remote failures to misses.
#include "image/layer_cache.h"

#include <stdlib.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "image/testing/test_registry.h"

namespace longshore::image {
namespace {

using testing::Shell;
using testing::TestRegistry;

std::string Key(const std::string& step) { return Sha256Digest(step); }

int CountOccurrences(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

class LayerCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = getenv("TEST_TMPDIR");
    auto dir = MakeTempDir(t ? t : "/tmp", "layer_cache_test");
    ASSERT_TRUE(dir.ok());
    root_ = *dir;
    for (int i = 0; i < 2; ++i) {
      auto s = ContentStore::Open(absl::StrCat(root_, "/worker", i, "/store"));
      ASSERT_TRUE(s.ok()) << s.status();
      stores_[i] = std::move(*s);
      auto l =
          LocalLayerCache::Open(absl::StrCat(root_, "/worker", i, "/cache"));
      ASSERT_TRUE(l.ok()) << l.status();
      locals_[i] = std::move(*l);
    }
  }
  void TearDown() override { RemoveTree(root_).IgnoreError(); }

  // A layer blob in worker `w`'s store (bytes need not be a tar here).
  CacheEntry PutLayer(int w, const std::string& content) {
    auto digest = stores_[w]->Put(content);
    EXPECT_TRUE(digest.ok());
    CacheEntry e;
    e.layer = Descriptor{kMediaTypeOciLayerGzip,
                         *digest,
                         static_cast<int64_t>(content.size()),
                         {},
                         {},
                         std::nullopt};
    e.diff_id = Sha256Digest("uncompressed " + content);
    return e;
  }

  std::unique_ptr<TestRegistry> StartRegistry() {
    auto r = TestRegistry::StartNew(root_ + "/registry", {});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::move(*r) : nullptr;
  }

  static RegistryOptions FastOptions() {
    RegistryOptions o;
    o.max_retries = 1;
    o.initial_backoff = absl::Milliseconds(10);
    o.connect_timeout = absl::Seconds(2);
    return o;
  }

  std::string root_;
  std::unique_ptr<ContentStore> stores_[2];
  std::unique_ptr<LocalLayerCache> locals_[2];
};

TEST_F(LayerCacheTest, LocalRoundTripAndMissOnceTheBlobIsGone) {
  LocalLayerCache& cache = *locals_[0];
  ContentStore& store = *stores_[0];
  CacheEntry e = PutLayer(0, "layer one");
  ASSERT_TRUE(cache.Store(Key("RUN a"), e, store).ok());
  CacheEntry env;
  env.config_change = R"({"Env":["x=1"]})";
  ASSERT_TRUE(cache.Store(Key("ENV x=1"), env, store).ok());

  auto hit = cache.Lookup(Key("RUN a"), store);
  ASSERT_TRUE(hit.ok()) << hit.status();
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ(**hit, e);
  auto empty = cache.Lookup(Key("ENV x=1"), store);
  ASSERT_TRUE(empty.ok() && empty->has_value());
  EXPECT_FALSE((*empty)->layer.has_value());
  EXPECT_EQ(**empty, env);
  auto miss = cache.Lookup(Key("RUN b"), store);
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());

  // The worker's step cache wrote the same format.
  auto text = ReadFile(
      absl::StrCat(root_, "/worker0/cache/", Key("RUN a").substr(7), ".json"));
  ASSERT_TRUE(text.ok());
  EXPECT_TRUE(absl::StrContains(*text, "\"has_layer\":true")) << *text;

  // Garbage collection removed the blob: the record no longer counts.
  ASSERT_TRUE(store.GarbageCollect(0).ok());
  auto gone = cache.Lookup(Key("RUN a"), store);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());

  EXPECT_EQ(cache.Lookup("not-a-key", store).status().code(),
            absl::StatusCode::kInvalidArgument);
  CacheEntry missing = e;
  missing.layer->digest = Sha256Digest("never stored");
  EXPECT_FALSE(cache.Store(Key("RUN c"), missing, store).ok());
}

TEST_F(LayerCacheTest, RegistryCacheSharedByTwoWorkers) {
  auto reg = StartRegistry();
  ASSERT_NE(reg, nullptr);
  auto repo = ParseReference(reg->host() + "/ci/cache");
  ASSERT_TRUE(repo.ok());
  RegistryClient client_a(FastOptions()), client_b(FastOptions());
  RegistryLayerCache worker_a(&client_a, *repo);
  RegistryLayerCache worker_b(&client_b, *repo);

  CacheEntry layer = PutLayer(0, std::string(100000, 'x') + "step output");
  ASSERT_TRUE(worker_a.Store(Key("RUN make"), layer, *stores_[0]).ok());
  CacheEntry workdir;
  workdir.config_change = R"({"WorkingDir":"/app"})";
  ASSERT_TRUE(worker_a.Store(Key("WORKDIR /app"), workdir, *stores_[0]).ok());
  ASSERT_TRUE(worker_a.Flush().ok());

  // Worker B finds both entries, with identical digests, and gets the blob.
  std::string before = reg->Log();
  auto hit = worker_b.Lookup(Key("RUN make"), *stores_[1]);
  ASSERT_TRUE(hit.ok()) << hit.status();
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ(**hit, layer);
  auto a_bytes = stores_[0]->ReadBlob(layer.layer->digest);
  auto b_bytes = stores_[1]->ReadBlob(layer.layer->digest);
  ASSERT_TRUE(a_bytes.ok() && b_bytes.ok()) << b_bytes.status();
  EXPECT_EQ(*a_bytes, *b_bytes);
  // Bounded: one manifest GET and one blob GET.
  std::string after = reg->Log().substr(before.size());
  EXPECT_EQ(CountOccurrences(after, "\"GET /v2/ci/cache/manifests/"), 1)
      << after;
  EXPECT_EQ(CountOccurrences(after, "\"GET /v2/ci/cache/blobs/"), 1) << after;

  auto no_layer = worker_b.Lookup(Key("WORKDIR /app"), *stores_[1]);
  ASSERT_TRUE(no_layer.ok() && no_layer->has_value()) << no_layer.status();
  EXPECT_FALSE((*no_layer)->layer.has_value());
  EXPECT_EQ((*no_layer)->config_change, workdir.config_change);
  auto miss = worker_b.Lookup(Key("RUN other"), *stores_[1]);
  ASSERT_TRUE(miss.ok()) << miss.status();
  EXPECT_FALSE(miss->has_value());

  // The entry is a plain OCI image under tag sha256-<hex>.
  std::string tag = CacheTag(Key("RUN make"));
  EXPECT_EQ(tag.size(), 71u);
  auto inspect =
      Shell(absl::StrCat("skopeo inspect --raw --tls-verify=false "
                         "docker://",
                         reg->host(), "/ci/cache:", tag));
  ASSERT_EQ(inspect.status, 0) << inspect.out;
  EXPECT_EQ(inspect.out,
            MakeCacheManifest(Key("RUN make"), layer).manifest_json);

  // The same entry stored by worker B is the same manifest: nothing changes.
  RegistryLayerCache sync_b(&client_b, *repo, {0});
  ASSERT_TRUE(sync_b.Store(Key("RUN make"), layer, *stores_[1]).ok());
  auto m = client_b.GetManifest(
      *ParseReference(absl::StrCat(reg->host(), "/ci/cache:", tag)));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->descriptor.digest,
            MakeCacheManifest(Key("RUN make"), layer).manifest.digest);
}

TEST_F(LayerCacheTest, RegistryCacheRefusesAnEntryUnderAnotherKeysTag) {
  auto reg = StartRegistry();
  ASSERT_NE(reg, nullptr);
  auto repo = ParseReference(reg->host() + "/ci/cache");
  RegistryClient client(FastOptions());
  RegistryLayerCache cache(&client, *repo, {0});
  CacheEntry layer = PutLayer(0, "real output");
  ASSERT_TRUE(cache.Store(Key("RUN a"), layer, *stores_[0]).ok());
  // Someone tags key A's manifest as key B.
  CacheManifest cm = MakeCacheManifest(Key("RUN a"), layer);
  ASSERT_TRUE(client
                  .PushManifest(*repo, CacheTag(Key("RUN b")),
                                kMediaTypeOciManifest, cm.manifest_json)
                  .ok());
  auto r = cache.Lookup(Key("RUN b"), *stores_[1]);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
}

TEST_F(LayerCacheTest, TieredRecordsRemoteHitsLocallyAndDegradesErrors) {
  auto reg = StartRegistry();
  ASSERT_NE(reg, nullptr);
  auto repo = ParseReference(reg->host() + "/ci/cache");
  RegistryClient client(FastOptions());
  RegistryLayerCache remote_a(&client, *repo), remote_b(&client, *repo);
  TieredLayerCache a(locals_[0].get(), &remote_a);
  TieredLayerCache b(locals_[1].get(), &remote_b);

  CacheEntry layer = PutLayer(0, "tiered output");
  ASSERT_TRUE(a.Store(Key("RUN t"), layer, *stores_[0]).ok());
  ASSERT_TRUE(a.Flush().ok());
  EXPECT_TRUE(a.TakeWarnings().empty());

  auto hit = b.Lookup(Key("RUN t"), *stores_[1]);
  ASSERT_TRUE(hit.ok() && hit->has_value()) << hit.status();
  EXPECT_EQ(**hit, layer);
  // Recorded locally: found with the registry gone, without a warning.
  reg->Stop();
  auto local_hit = b.Lookup(Key("RUN t"), *stores_[1]);
  ASSERT_TRUE(local_hit.ok() && local_hit->has_value());
  EXPECT_TRUE(b.TakeWarnings().empty());

  // Registry down: a lookup is a miss with a warning, a store and the flush
  // succeed with a warning, and the local tier still gets the entry.
  auto miss = b.Lookup(Key("RUN u"), *stores_[1]);
  ASSERT_TRUE(miss.ok()) << miss.status();
  EXPECT_FALSE(miss->has_value());
  std::vector<std::string> warnings = b.TakeWarnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(warnings[0], reg->host())) << warnings[0];

  CacheEntry other = PutLayer(1, "made while the registry is down");
  ASSERT_TRUE(b.Store(Key("RUN v"), other, *stores_[1]).ok());
  ASSERT_TRUE(b.Flush().ok());
  warnings = b.TakeWarnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(warnings[0], "remote layer cache writes"))
      << warnings[0];
  auto local = locals_[1]->Lookup(Key("RUN v"), *stores_[1]);
  ASSERT_TRUE(local.ok() && local->has_value());
}

}  // namespace
}  // namespace longshore::image
