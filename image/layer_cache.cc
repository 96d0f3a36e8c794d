#include "image/layer_cache.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace longshore::image {
namespace {

absl::Status CheckKey(const std::string& key) {
  if (!IsValidDigest(key)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid cache key \"", key, "\" (want sha256:<hex>)"));
  }
  return absl::OkStatus();
}

absl::Status CheckEntry(const CacheEntry& e) {
  if (e.config_change.size() > kMaxConfigChangeBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache entry config change of ", e.config_change.size(),
                     " bytes exceeds ", kMaxConfigChangeBytes));
  }
  if (!e.layer) {
    if (!e.diff_id.empty()) {
      return absl::InvalidArgumentError(
          "cache entry without a layer has a "
          "diff_id");
    }
    return absl::OkStatus();
  }
  if (!IsValidDigest(e.layer->digest) || !IsValidDigest(e.diff_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache entry with invalid digests: layer \"",
                     e.layer->digest, "\", diff_id \"", e.diff_id, "\""));
  }
  RETURN_IF_ERROR(LayerCompression(e.layer->media_type).status());
  return absl::OkStatus();
}

std::string Hex(const std::string& key) {
  absl::string_view hex = key;
  absl::ConsumePrefix(&hex, "sha256:");
  return std::string(hex);
}

}  // namespace

// ---------------------------------------------------------------------------
// LocalLayerCache

absl::StatusOr<std::unique_ptr<LocalLayerCache>> LocalLayerCache::Open(
    const std::string& dir) {
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  return std::unique_ptr<LocalLayerCache>(new LocalLayerCache(dir));
}

std::string LocalLayerCache::PathFor(const std::string& key) const {
  return absl::StrCat(dir_, "/", Hex(key), ".json");
}

absl::StatusOr<std::optional<CacheEntry>> LocalLayerCache::Lookup(
    const std::string& key, ContentStore& store) {
  RETURN_IF_ERROR(CheckKey(key));
  std::string path = PathFor(key);
  if (!PathExists(path)) return std::optional<CacheEntry>();
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    LS_LOG(WARNING) << "cache record " << path << " is not JSON; ignoring it";
    return std::optional<CacheEntry>();
  }
  CacheEntry e;
  bool typed = true;
  try {
    if (j.value("has_layer", false)) {
      Descriptor d;
      d.digest = j.value("digest", "");
      d.size = j.value("size", int64_t{0});
      d.media_type = j.value("media_type", "");
      e.layer = d;
      e.diff_id = j.value("diff_id", "");
    }
    e.config_change = j.value("config_change", "");
  } catch (const nlohmann::json::type_error&) {
    typed = false;  // a field of the wrong type: malformed as below
  }
  if (!typed || !CheckEntry(e).ok()) {
    LS_LOG(WARNING) << "cache record " << path << " is malformed; ignoring it";
    return std::optional<CacheEntry>();
  }
  // The record outlived its blob (garbage collection): a miss.
  if (e.layer && !store.Has(e.layer->digest))
    return std::optional<CacheEntry>();
  return std::optional<CacheEntry>(e);
}

absl::Status LocalLayerCache::Store(const std::string& key, const CacheEntry& e,
                                    ContentStore& store) {
  RETURN_IF_ERROR(CheckKey(key));
  RETURN_IF_ERROR(CheckEntry(e));
  if (e.layer && !store.Has(e.layer->digest)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cache entry for ", key, ": layer ", e.layer->digest,
                     " is not in the store"));
  }
  nlohmann::json j = {{"has_layer", e.layer.has_value()},
                      {"digest", e.layer ? e.layer->digest : ""},
                      {"diff_id", e.diff_id},
                      {"size", e.layer ? e.layer->size : 0},
                      {"media_type", e.layer ? e.layer->media_type : ""}};
  if (!e.config_change.empty()) j["config_change"] = e.config_change;
  return WriteFileAtomic(PathFor(key), j.dump(), 0600);
}

// ---------------------------------------------------------------------------
// Cache manifests

std::string CacheTag(const std::string& key) {
  return absl::StrCat("sha256-", Hex(key));
}

CacheManifest MakeCacheManifest(const std::string& key,
                                const CacheEntry& entry) {
  CacheManifest out;
  OciConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  if (entry.layer) config.rootfs.diff_ids = {entry.diff_id};
  out.config_json = ToJson(config);
  out.config.media_type = kMediaTypeOciConfig;
  out.config.digest = Sha256Digest(out.config_json);
  out.config.size = static_cast<int64_t>(out.config_json.size());

  Manifest m;
  m.media_type = kMediaTypeOciManifest;
  m.config = out.config;
  if (entry.layer) {
    Descriptor l = *entry.layer;
    l.annotations.clear();
    l.urls.clear();
    l.platform.reset();
    m.layers = {l};
  }
  m.annotations[kCacheKeyAnnotation] = key;
  if (entry.layer) m.annotations[kCacheDiffIdAnnotation] = entry.diff_id;
  if (!entry.config_change.empty()) {
    m.annotations[kCacheConfigChangeAnnotation] = entry.config_change;
  }
  out.manifest_json = ToJson(m);
  out.manifest.media_type = kMediaTypeOciManifest;
  out.manifest.digest = Sha256Digest(out.manifest_json);
  out.manifest.size = static_cast<int64_t>(out.manifest_json.size());
  return out;
}

// ---------------------------------------------------------------------------
// RegistryLayerCache

RegistryLayerCache::RegistryLayerCache(RegistryClient* client, Reference repo,
                                       const Options& opts)
    : client_(client), repo_(std::move(repo)), opts_(opts) {
  for (int i = 0; i < opts_.threads; ++i) {
    threads_.emplace_back([this] { Work(); });
  }
}

RegistryLayerCache::~RegistryLayerCache() {
  absl::Status s = Flush();
  if (!s.ok()) {
    LS_LOG(WARNING) << "layer cache " << repo_.Name() << ": " << s;
  }
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void RegistryLayerCache::Work() {
  while (true) {
    std::function<absl::Status()> job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](RegistryLayerCache* c) {
            return c->stopping_ || !c->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    absl::Status s = job();
    absl::MutexLock lock(&mu_);
    --running_;
    if (!s.ok()) errors_.push_back(s);
  }
}

absl::StatusOr<std::optional<CacheEntry>> RegistryLayerCache::Lookup(
    const std::string& key, ContentStore& store) {
  RETURN_IF_ERROR(CheckKey(key));
  Reference ref = repo_;
  ref.tag = CacheTag(key);
  ref.digest.clear();
  auto raw = client_->GetManifest(ref);
  if (!raw.ok()) {
    if (raw.status().code() == absl::StatusCode::kNotFound) {
      return std::optional<CacheEntry>();
    }
    return raw.status();
  }
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("cache entry ", ref.Normalized(),
                                            " (", raw->descriptor.digest,
                                            "): ", why));
  };
  auto m = ParseManifest(raw->bytes);
  if (!m.ok()) return bad(m.status().message());
  auto k = m->annotations.find(kCacheKeyAnnotation);
  if (k == m->annotations.end() || k->second != key) {
    return bad("its key annotation does not match the tag");
  }
  CacheEntry e;
  if (m->layers.size() > 1) return bad("more than one layer");
  if (m->layers.size() == 1) {
    e.layer = m->layers[0];
    auto d = m->annotations.find(kCacheDiffIdAnnotation);
    if (d == m->annotations.end()) return bad("no diff-id annotation");
    e.diff_id = d->second;
  }
  auto cc = m->annotations.find(kCacheConfigChangeAnnotation);
  if (cc != m->annotations.end()) e.config_change = cc->second;
  if (absl::Status s = CheckEntry(e); !s.ok()) return bad(s.message());
  if (e.layer) RETURN_IF_ERROR(client_->FetchBlob(repo_, *e.layer, store));
  return std::optional<CacheEntry>(e);
}

absl::Status RegistryLayerCache::Push(const std::string& key,
                                      const CacheEntry& e,
                                      const std::string& blob_path) {
  CacheManifest cm = MakeCacheManifest(key, e);
  // Blobs first, the tag last: an entry never points at a missing blob.
  if (e.layer) {
    RETURN_IF_ERROR(
        client_->PushBlob(repo_, *e.layer, blob_path, nullptr).status());
  }
  RETURN_IF_ERROR(
      client_->PushBlobBytes(repo_, cm.config, cm.config_json).status());
  RETURN_IF_ERROR(client_
                      ->PushManifest(repo_, CacheTag(key),
                                     kMediaTypeOciManifest, cm.manifest_json)
                      .status());
  LS_LOG(DEBUG) << "layer cache " << repo_.Name() << ": stored " << key;
  return absl::OkStatus();
}

absl::Status RegistryLayerCache::Store(const std::string& key,
                                       const CacheEntry& e,
                                       ContentStore& store) {
  RETURN_IF_ERROR(CheckKey(key));
  RETURN_IF_ERROR(CheckEntry(e));
  {
    absl::MutexLock lock(&mu_);
    if (!stored_.insert(key).second) return absl::OkStatus();
  }
  auto forget = [&] {
    absl::MutexLock lock(&mu_);
    stored_.erase(key);
  };
  std::shared_ptr<ContentStore::Lease> lease;
  if (e.layer) {
    auto l = store.AcquireBlob(e.layer->digest);
    if (!l.ok()) {
      forget();
      return absl::FailedPreconditionError(
          absl::StrCat("cache entry for ", key, ": layer ", e.layer->digest,
                       " is not in the store: ", l.status().message()));
    }
    lease = std::make_shared<ContentStore::Lease>(std::move(*l));
  }
  auto job = [this, key, e, lease]() -> absl::Status {
    absl::Status s = Push(key, e, lease ? lease->path() : "");
    if (!s.ok()) {
      absl::MutexLock lock(&mu_);
      stored_.erase(key);  // a later Store may try again
    }
    return s;
  };
  if (threads_.empty()) return job();
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(job));
  return absl::OkStatus();
}

absl::Status RegistryLayerCache::Flush() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](RegistryLayerCache* c) {
        return c->queue_.empty() && c->running_ == 0;
      },
      this));
  if (errors_.empty()) return absl::OkStatus();
  absl::Status first = errors_.front();
  size_t n = errors_.size();
  errors_.clear();
  if (n == 1) return first;
  return absl::Status(first.code(),
                      absl::StrCat(first.message(), " (and ", n - 1,
                                   " more cache writes failed)"));
}

// ---------------------------------------------------------------------------
// TieredLayerCache

TieredLayerCache::TieredLayerCache(LayerCache* local, LayerCache* remote,
                                   const Options& opts)
    : local_(local), remote_(remote), opts_(opts) {}

void TieredLayerCache::Warn(std::string message) {
  LS_LOG(WARNING) << message;
  absl::MutexLock lock(&mu_);
  warnings_.push_back(std::move(message));
}

std::vector<std::string> TieredLayerCache::TakeWarnings() {
  absl::MutexLock lock(&mu_);
  return std::exchange(warnings_, {});
}

absl::StatusOr<std::optional<CacheEntry>> TieredLayerCache::Lookup(
    const std::string& key, ContentStore& store) {
  RETURN_IF_ERROR(CheckKey(key));
  auto local = local_->Lookup(key, store);
  if (local.ok() && local->has_value()) return local;
  if (!local.ok()) {
    Warn(absl::StrCat(
        "local layer cache lookup of ", key,
        " failed, treating it as a miss: ", local.status().message()));
  }
  if (remote_ == nullptr || !opts_.read_remote) {
    return std::optional<CacheEntry>();
  }
  auto remote = remote_->Lookup(key, store);
  if (!remote.ok()) {
    Warn(absl::StrCat(
        "remote layer cache lookup of ", key,
        " failed, treating it as a miss: ", remote.status().message()));
    return std::optional<CacheEntry>();
  }
  if (remote->has_value()) {
    absl::Status s = local_->Store(key, **remote, store);
    if (!s.ok()) {
      Warn(absl::StrCat("recording remote cache hit ", key,
                        " locally failed: ", s.message()));
    }
  }
  return remote;
}

absl::Status TieredLayerCache::Store(const std::string& key,
                                     const CacheEntry& entry,
                                     ContentStore& store) {
  RETURN_IF_ERROR(CheckKey(key));
  RETURN_IF_ERROR(CheckEntry(entry));
  absl::Status s = local_->Store(key, entry, store);
  if (!s.ok()) {
    Warn(absl::StrCat("local layer cache store of ", key,
                      " failed: ", s.message()));
  }
  if (remote_ != nullptr && opts_.write_remote) {
    absl::Status r = remote_->Store(key, entry, store);
    if (!r.ok()) {
      Warn(absl::StrCat("remote layer cache store of ", key,
                        " failed: ", r.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status TieredLayerCache::Flush() {
  absl::Status l = local_->Flush();
  if (!l.ok()) Warn(absl::StrCat("local layer cache: ", l.message()));
  if (remote_ != nullptr && opts_.write_remote) {
    absl::Status r = remote_->Flush();
    if (!r.ok()) {
      Warn(absl::StrCat("remote layer cache writes failed: ", r.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace longshore::image
