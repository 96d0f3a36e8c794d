// The layer cache: a step's cache key ("sha256:<hex>", see DESIGN.md) maps to
// the layer the step produced, or to "no layer" for steps that changed
// nothing on disk.
//
// Tiers: LocalLayerCache (the worker's own records beside its content store),
// RegistryLayerCache (a cache repository in a registry, shared by every worker
// of a farm), and TieredLayerCache which puts the two together the way the
// worker uses them. The cache repository format is described in
// image/README.md.
#ifndef LONGSHORE_IMAGE_LAYER_CACHE_H_
#define LONGSHORE_IMAGE_LAYER_CACHE_H_

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "image/content_store.h"
#include "image/oci.h"
#include "image/reference.h"
#include "image/registry_client.h"

namespace longshore::image {

struct CacheEntry {
  // The layer blob; nullopt for a step that produced no layer.
  std::optional<Descriptor> layer;
  // The layer's diffID (uncompressed digest); empty without a layer.
  std::string diff_id;
  // The image config change the step made, in whatever form the worker
  // chooses (say, JSON of the history entry and changed fields); opaque here,
  // at most kMaxConfigChangeBytes. Must be deterministic, like the layer.
  std::string config_change;

  bool operator==(const CacheEntry& o) const {
    return layer == o.layer && diff_id == o.diff_id &&
           config_change == o.config_change;
  }
};

class LayerCache {
 public:
  virtual ~LayerCache() = default;

  // nullopt on a miss. On a hit with a layer, the layer blob is in `store`
  // when this returns. Errors are for the caller to turn into a miss.
  virtual absl::StatusOr<std::optional<CacheEntry>> Lookup(
      const std::string& key, ContentStore& store) = 0;

  // Records `key` -> `entry`; the layer blob must be in `store`. May finish
  // asynchronously: an entry is only visible once its blob is, and Flush()
  // waits for every Store so far.
  virtual absl::Status Store(const std::string& key, const CacheEntry& entry,
                             ContentStore& store) = 0;

  // Waits until every earlier Store has completed; returns their first error.
  virtual absl::Status Flush() = 0;
};

// Records under `dir`, one small JSON file per key (<dir>/<hex>.json holding
// {has_layer, digest, diff_id, size, media_type} as the worker's step cache
// writes them, plus config_change when set, so existing records stay valid).
// Writes are atomic and synchronous. A record is a hit only while its blob is
// in the store.
class LocalLayerCache : public LayerCache {
 public:
  // Creates `dir` (0700) if needed.
  static absl::StatusOr<std::unique_ptr<LocalLayerCache>> Open(
      const std::string& dir);

  absl::StatusOr<std::optional<CacheEntry>> Lookup(
      const std::string& key, ContentStore& store) override;
  absl::Status Store(const std::string& key, const CacheEntry& entry,
                     ContentStore& store) override;
  absl::Status Flush() override { return absl::OkStatus(); }

 private:
  explicit LocalLayerCache(std::string dir) : dir_(std::move(dir)) {}
  std::string PathFor(const std::string& key) const;
  const std::string dir_;
};

inline constexpr size_t kMaxConfigChangeBytes = 16 << 10;

// Annotation keys of a cache manifest.
inline constexpr char kCacheKeyAnnotation[] = "io.longshore.cache.key";
inline constexpr char kCacheDiffIdAnnotation[] = "io.longshore.cache.diff-id";
inline constexpr char kCacheConfigChangeAnnotation[] =
    "io.longshore.cache.config-change";

// The tag a cache key is stored under: "sha256-<hex>" (71 characters; tags may
// have 128).
std::string CacheTag(const std::string& key);

// The cache manifest for an entry, and its config: a valid single-layer (or
// layer-less) OCI image, so any registry and any OCI tool accept it.
// Deterministic: every worker writes the same bytes for the same entry.
struct CacheManifest {
  std::string config_json;
  Descriptor config;
  std::string manifest_json;
  Descriptor manifest;
};
CacheManifest MakeCacheManifest(const std::string& key,
                                const CacheEntry& entry);

// A cache repository REGISTRY/REPO. Each key is one tagged manifest: a lookup
// is one manifest GET (plus the blob GET on a hit the store lacks); a store is
// a HEAD (and upload) of the layer and config blobs, then one manifest PUT.
// Nothing is rewritten per build, so cost does not grow with the cache.
class RegistryLayerCache : public LayerCache {
 public:
  struct Options {
    // Stores run on this many background threads; 0 makes Store synchronous.
    int threads = 2;
  };

  // `client` must outlive the cache. `repo`'s tag and digest are ignored.
  RegistryLayerCache(RegistryClient* client, Reference repo,
                     const Options& opts);
  RegistryLayerCache(RegistryClient* client, Reference repo)
      : RegistryLayerCache(client, std::move(repo), Options()) {}
  // Flushes.
  ~RegistryLayerCache() override;

  const Reference& repository() const { return repo_; }

  absl::StatusOr<std::optional<CacheEntry>> Lookup(
      const std::string& key, ContentStore& store) override;
  // Validates and takes a lease on the blob at once (so garbage collection
  // cannot remove it), then pushes in the background.
  absl::Status Store(const std::string& key, const CacheEntry& entry,
                     ContentStore& store) override;
  absl::Status Flush() override;

 private:
  absl::Status Push(const std::string& key, const CacheEntry& entry,
                    const std::string& blob_path);
  void Work();

  RegistryClient* const client_;
  const Reference repo_;
  const Options opts_;

  absl::Mutex mu_;
  std::deque<std::function<absl::Status()>> queue_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<absl::Status> errors_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> stored_ ABSL_GUARDED_BY(mu_);  // keys done or queued
  std::vector<std::thread> threads_;
};

// Local first, then remote. A remote hit is recorded locally. Remote errors
// (lookups and stores) degrade to a miss with a warning and never fail a
// build: Flush() reports them through TakeWarnings() and returns OK.
class TieredLayerCache : public LayerCache {
 public:
  struct Options {
    bool read_remote = true;   // --cache-from
    bool write_remote = true;  // --cache-to
  };
  // `remote` may be null (local only). Both must outlive this object.
  TieredLayerCache(LayerCache* local, LayerCache* remote, const Options& opts);
  TieredLayerCache(LayerCache* local, LayerCache* remote)
      : TieredLayerCache(local, remote, Options()) {}

  absl::StatusOr<std::optional<CacheEntry>> Lookup(
      const std::string& key, ContentStore& store) override;
  absl::Status Store(const std::string& key, const CacheEntry& entry,
                     ContentStore& store) override;
  absl::Status Flush() override;

  // Warnings gathered since the last call (for the build's event stream).
  std::vector<std::string> TakeWarnings();

 private:
  void Warn(std::string message);

  LayerCache* const local_;
  LayerCache* const remote_;
  const Options opts_;
  absl::Mutex mu_;
  std::vector<std::string> warnings_ ABSL_GUARDED_BY(mu_);
};

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_LAYER_CACHE_H_
