// A client for registries that speak the OCI distribution spec (Docker
// Registry HTTP API v2): manifests and blobs, pull and push, with anonymous,
// Basic and Bearer-token authentication, TLS with custom CAs, plain HTTP for
// insecure registries, and bounded retries.
//
// Thread-safe: one client serves every build of a worker. Each request uses its
// own libcurl easy handle; tokens, learned auth schemes and schemes (https or
// http) are shared under a mutex.
//
// Names: every call takes a Reference (image/reference.h); only its registry
// and repository matter unless a tag or digest is documented as used. The
// registry "docker.io" is reached at registry-1.docker.io, as Docker does.
//
// Errors name the registry, the repository, the operation and the HTTP status,
// followed by the registry's own error code and message when it sent the
// distribution error JSON ({"errors":[{"code","message"}]}).
#ifndef LONGSHORE_IMAGE_REGISTRY_CLIENT_H_
#define LONGSHORE_IMAGE_REGISTRY_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "image/content_store.h"
#include "image/oci.h"
#include "image/reference.h"
#include "image/registry_parse.h"

namespace longshore::image {

struct RegistryCredential {
  std::string username;
  std::string password;
};

struct RegistryOptions {
  // Registries ("host" or "host:port") reached without certificate checks;
  // plain HTTP is used when the registry does not speak TLS. 127.0.0.1,
  // localhost and [::1] (any port) are always insecure, as in Docker.
  std::vector<std::string> insecure_registries;
  // PEM CA bundle for every registry, and per registry ("host[:port]"); the
  // per-registry file wins. Empty: the system's trust store.
  std::string ca_file;
  std::map<std::string, std::string> ca_files;
  // Credentials per registry ("docker.io", "host:port").
  std::map<std::string, RegistryCredential> credentials;

  // Bound for every request that is not a blob transfer (manifests, HEAD,
  // tokens, upload sessions).
  absl::Duration request_timeout = absl::Seconds(60);
  absl::Duration connect_timeout = absl::Seconds(15);
  // A blob transfer is bounded by this total time and aborted when it moves
  // less than 1 KiB/s for `stall_timeout`.
  absl::Duration blob_timeout = absl::Minutes(30);
  absl::Duration stall_timeout = absl::Seconds(60);

  // Retries after the first attempt, on 429, 5xx and connection errors, with
  // exponential backoff from `initial_backoff` doubling up to `max_backoff`.
  // A Retry-After header (seconds or HTTP date) is honoured up to
  // `max_retry_after`.
  int max_retries = 4;
  absl::Duration initial_backoff = absl::Milliseconds(250);
  absl::Duration max_backoff = absl::Seconds(8);
  absl::Duration max_retry_after = absl::Seconds(60);

  // Blobs up to this size are uploaded with one PUT; bigger ones in PATCH
  // chunks of `chunk_size` bytes.
  int64_t monolithic_upload_max = 32 << 20;
  int64_t chunk_size = 16 << 20;

  // Largest manifest or index accepted (containerd uses 4 MiB), and largest
  // config blob read into memory.
  int64_t max_manifest_bytes = 4 << 20;
  int64_t max_config_bytes = 8 << 20;

  std::string user_agent = "longshore";

  // Told the size of each blob FetchBlob downloaded and each one PushBlob
  // uploaded (not those the store or the registry already had, nor mounts);
  // for metrics. Called from the transferring thread.
  std::function<void(int64_t)> on_blob_pulled;
  std::function<void(int64_t)> on_blob_pushed;
};

// Registry name as Docker keys credentials: "https://index.docker.io/v1/" ->
// "docker.io", "https://reg.example:5000/x" -> "reg.example:5000".
std::string NormalizeRegistryHost(absl::string_view server);

// Reads the `auths` of a Docker config file ({"auths": {"<server>": {"auth":
// base64("user:password")} or {"username", "password"}}}) into
// `credentials`, keyed by NormalizeRegistryHost. Entries already present are
// kept (explicit configuration wins). A missing file is NotFound.
absl::Status LoadDockerConfigCredentials(
    const std::string& path,
    std::map<std::string, RegistryCredential>* credentials);

// $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
std::string DefaultDockerConfigPath();

// What ResolveManifest found.
struct ResolvedManifest {
  // The image manifest (after platform selection when the reference named an
  // index): descriptor, exact bytes, parsed form.
  Descriptor descriptor;
  std::string bytes;
  Manifest manifest;
  // The config blob, digest-verified, and its parsed form.
  std::string config_bytes;
  OciConfig config;
  // Set when the reference named an index or manifest list.
  std::optional<Descriptor> index;
  std::string index_bytes;
};

// How PushBlob got the blob into the repository.
enum class BlobPushResult { kExisted, kMounted, kUploaded };

class RegistryClient {
 public:
  explicit RegistryClient(RegistryOptions options);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  const RegistryOptions& options() const { return options_; }

  // The manifest or index `ref` names (by tag, or by digest when it has one),
  // as raw bytes with its descriptor. Accepts OCI and Docker schema 2
  // manifests and indexes/manifest lists. The bytes are verified against the
  // reference's digest and the registry's Docker-Content-Digest header.
  struct RawManifest {
    Descriptor descriptor;
    std::string bytes;
  };
  absl::StatusOr<RawManifest> GetManifest(const Reference& ref);

  // GetManifest, then: for an index, the entry for `platform` (default
  // linux/amd64) is fetched by digest; then the config blob is fetched and
  // parsed.
  absl::StatusOr<ResolvedManifest> ResolveManifest(const Reference& ref);
  absl::StatusOr<ResolvedManifest> ResolveManifest(const Reference& ref,
                                                   const Platform& platform);

  // HEAD on the blob. false on 404.
  absl::StatusOr<bool> HasBlob(const Reference& repo, absl::string_view digest);

  // Downloads the blob `desc` of `repo` into `store` (nothing to do when the
  // store has it). The bytes are checked against desc.digest and desc.size
  // (when > 0) while streaming; a blob that differs never enters the store.
  absl::Status FetchBlob(const Reference& repo, const Descriptor& desc,
                         ContentStore& store);
  // A small blob (config) into memory, digest-verified; at most `max_bytes`.
  absl::StatusOr<std::string> GetBlob(const Reference& repo,
                                      absl::string_view digest,
                                      int64_t max_bytes);

  // Makes `desc` (whose bytes are the file at `path`) present in `repo`:
  // HEAD first; then, when `mount_from` names another repository of the same
  // registry, a cross-repository mount; else an upload (monolithic up to
  // monolithic_upload_max, chunked PATCHes beyond).
  absl::StatusOr<BlobPushResult> PushBlob(const Reference& repo,
                                          const Descriptor& desc,
                                          const std::string& path,
                                          const Reference* mount_from);
  // The same from memory (configs, small blobs).
  absl::StatusOr<BlobPushResult> PushBlobBytes(const Reference& repo,
                                               const Descriptor& desc,
                                               absl::string_view bytes);

  // PUTs a manifest under `tag_or_digest`. Push every blob it references
  // first. Returns the manifest's digest (checked against the registry's
  // Docker-Content-Digest when sent).
  absl::StatusOr<std::string> PushManifest(const Reference& repo,
                                           absl::string_view tag_or_digest,
                                           absl::string_view media_type,
                                           absl::string_view bytes);

  // Implementation types, public only so that the .cc file's helpers can name
  // them.
  struct Request;
  struct Response;
  class BodySink;

 private:
  struct Host;

  Host& HostFor(absl::string_view registry) ABSL_LOCKS_EXCLUDED(mu_);
  // One request with auth and retries. `scopes` are the token scopes the
  // operation needs.
  absl::StatusOr<Response> Send(const Reference& repo, Request& req,
                                const std::vector<std::string>& scopes,
                                BodySink* sink);
  absl::StatusOr<Response> PerformOnce(Host& host, Request& req,
                                       BodySink* sink);
  absl::Status Authenticate(Host& host, const Reference& repo,
                            const std::vector<std::string>& scopes,
                            const Response& challenge_response);
  std::string AuthorizationFor(Host& host,
                               const std::vector<std::string>& scopes);
  absl::StatusOr<BlobPushResult> PushBlobFrom(const Reference& repo,
                                              const Descriptor& desc, int fd,
                                              absl::string_view bytes,
                                              const Reference* mount_from);

  const RegistryOptions options_;
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Host>> hosts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_REGISTRY_CLIENT_H_
