// The OCI image model (image-spec v1.1) and Docker image manifest schema 2:
// media types, descriptors, image configs, manifests and indexes, with
// deterministic JSON.
//
// Serialization rules (what makes digests reproducible): object keys sorted, no
// insignificant whitespace, empty optional fields omitted as Docker and
// BuildKit omit them. Parsing accepts both OCI and Docker schema 2 documents
// and ignores fields it does not model.
#ifndef LONGSHORE_IMAGE_OCI_H_
#define LONGSHORE_IMAGE_OCI_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::image {

// OCI media types.
inline constexpr char kMediaTypeOciManifest[] =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kMediaTypeOciIndex[] =
    "application/vnd.oci.image.index.v1+json";
inline constexpr char kMediaTypeOciConfig[] =
    "application/vnd.oci.image.config.v1+json";
inline constexpr char kMediaTypeOciLayer[] =
    "application/vnd.oci.image.layer.v1.tar";
inline constexpr char kMediaTypeOciLayerGzip[] =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr char kMediaTypeOciLayerZstd[] =
    "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr char kMediaTypeOciLayerNondistributableGzip[] =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

// Docker image manifest v2, schema 2.
inline constexpr char kMediaTypeDockerManifest[] =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kMediaTypeDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kMediaTypeDockerConfig[] =
    "application/vnd.docker.container.image.v1+json";
inline constexpr char kMediaTypeDockerLayerGzip[] =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr char kMediaTypeDockerForeignLayerGzip[] =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

// Annotation keys used in index.json of an OCI layout.
inline constexpr char kAnnotationRefName[] =
    "org.opencontainers.image.ref.name";
inline constexpr char kAnnotationContainerdImageName[] =
    "io.containerd.image.name";

// Layer compression as told by a layer media type.
enum class Compression { kNone, kGzip, kZstd };

// The compression a layer media type implies; InvalidArgument for non-layer
// types.
absl::StatusOr<Compression> LayerCompression(absl::string_view media_type);
bool IsManifestMediaType(absl::string_view media_type);
bool IsIndexMediaType(absl::string_view media_type);

struct Platform {
  std::string architecture;
  std::string os;
  std::string os_version;                // "os.version"
  std::vector<std::string> os_features;  // "os.features"
  std::string variant;

  bool operator==(const Platform& o) const;
};

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  int64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;

  bool operator==(const Descriptor& o) const;
};

// Docker's HEALTHCHECK extension of the image config. Durations in nanoseconds.
struct Healthcheck {
  std::vector<std::string>
      test;  // ["NONE"], ["CMD", ...], ["CMD-SHELL", "..."]
  int64_t interval = 0;
  int64_t timeout = 0;
  int64_t start_period = 0;
  int64_t start_interval = 0;
  int retries = 0;

  bool operator==(const Healthcheck& o) const;
};

// The execution parameters ("config" object). Empty fields are omitted in JSON.
struct ContainerConfig {
  std::string user;
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::vector<std::string>
      exposed_ports;                 // "80/tcp"; a JSON object of {} values
  std::vector<std::string> volumes;  // "/data"; a JSON object of {} values
  std::string stop_signal;
  std::optional<Healthcheck> healthcheck;
  std::vector<std::string> shell;
  std::vector<std::string> on_build;
  bool args_escaped =
      false;  // Docker's Windows-only flag, kept for round trips

  bool operator==(const ContainerConfig& o) const;
};

struct RootFs {
  std::string type = "layers";
  std::vector<std::string> diff_ids;

  bool operator==(const RootFs& o) const;
};

struct HistoryEntry {
  std::string created;  // RFC 3339; omitted when empty
  std::string created_by;
  std::string author;
  std::string comment;
  bool empty_layer = false;

  bool operator==(const HistoryEntry& o) const;
};

// The image configuration (application/vnd.oci.image.config.v1+json, or
// Docker's container.image.v1+json which is a superset with the same names).
struct OciConfig {
  std::optional<std::string> created;  // RFC 3339
  std::string author;
  std::string architecture;
  std::string os;
  std::string variant;
  std::string os_version;
  ContainerConfig config;
  RootFs rootfs;
  std::vector<HistoryEntry> history;

  bool operator==(const OciConfig& o) const;
};

struct Manifest {
  int schema_version = 2;
  std::string media_type = kMediaTypeOciManifest;
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  bool operator==(const Manifest& o) const;
};

struct Index {
  int schema_version = 2;
  std::string media_type = kMediaTypeOciIndex;
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;

  bool operator==(const Index& o) const;
};

// Deterministic JSON (sorted keys, compact, empty optional fields omitted).
std::string ToJson(const Descriptor& d);
std::string ToJson(const OciConfig& c);
std::string ToJson(const Manifest& m);
std::string ToJson(const Index& i);

// Parsing; InvalidArgument names the field that is missing or has the wrong
// type.
absl::StatusOr<Descriptor> ParseDescriptor(absl::string_view json);
absl::StatusOr<OciConfig> ParseConfig(absl::string_view json);
absl::StatusOr<Manifest> ParseManifest(absl::string_view json);
absl::StatusOr<Index> ParseIndex(absl::string_view json);

// Formats seconds since the epoch as RFC 3339 UTC ("2024-01-02T03:04:05Z").
std::string FormatRfc3339(int64_t unix_seconds);

// The entry of `index` matching `platform` (architecture, os, and variant when
// the wanted one is non-empty); NotFound lists what the index offers.
absl::StatusOr<Descriptor> SelectPlatform(const Index& index,
                                          const Platform& platform);

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_OCI_H_
