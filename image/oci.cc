#include "image/oci.h"

#include <time.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace longshore::image {
namespace {

using Json = nlohmann::json;

// nlohmann::json keeps object members in a std::map, so dump() already sorts
// keys; dump() with no indent emits no insignificant whitespace.
std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json StringMap(const std::map<std::string, std::string>& m) {
  Json j = Json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

// Docker's "set" encoding: {"80/tcp": {}}.
Json StringSet(const std::vector<std::string>& v) {
  Json j = Json::object();
  for (const auto& k : v) j[k] = Json::object();
  return j;
}

Json PlatformJson(const Platform& p) {
  Json j = Json::object();
  j["architecture"] = p.architecture;
  j["os"] = p.os;
  if (!p.os_version.empty()) j["os.version"] = p.os_version;
  if (!p.os_features.empty()) j["os.features"] = p.os_features;
  if (!p.variant.empty()) j["variant"] = p.variant;
  return j;
}

Json DescriptorJson(const Descriptor& d) {
  Json j = Json::object();
  j["mediaType"] = d.media_type;
  j["digest"] = d.digest;
  j["size"] = d.size;
  if (!d.urls.empty()) j["urls"] = d.urls;
  if (!d.annotations.empty()) j["annotations"] = StringMap(d.annotations);
  if (d.platform) j["platform"] = PlatformJson(*d.platform);
  return j;
}

Json HealthcheckJson(const Healthcheck& h) {
  Json j = Json::object();
  if (!h.test.empty()) j["Test"] = h.test;
  if (h.interval) j["Interval"] = h.interval;
  if (h.timeout) j["Timeout"] = h.timeout;
  if (h.start_period) j["StartPeriod"] = h.start_period;
  if (h.start_interval) j["StartInterval"] = h.start_interval;
  if (h.retries) j["Retries"] = h.retries;
  return j;
}

Json ContainerConfigJson(const ContainerConfig& c) {
  Json j = Json::object();
  if (!c.user.empty()) j["User"] = c.user;
  if (!c.exposed_ports.empty()) j["ExposedPorts"] = StringSet(c.exposed_ports);
  if (!c.env.empty()) j["Env"] = c.env;
  if (!c.entrypoint.empty()) j["Entrypoint"] = c.entrypoint;
  if (!c.cmd.empty()) j["Cmd"] = c.cmd;
  if (!c.volumes.empty()) j["Volumes"] = StringSet(c.volumes);
  if (!c.working_dir.empty()) j["WorkingDir"] = c.working_dir;
  if (!c.labels.empty()) j["Labels"] = StringMap(c.labels);
  if (!c.stop_signal.empty()) j["StopSignal"] = c.stop_signal;
  if (c.args_escaped) j["ArgsEscaped"] = true;
  if (c.healthcheck) j["Healthcheck"] = HealthcheckJson(*c.healthcheck);
  if (!c.shell.empty()) j["Shell"] = c.shell;
  if (!c.on_build.empty()) j["OnBuild"] = c.on_build;
  return j;
}

// ---------------------------------------------------------------------------
// Parsing helpers: each names the JSON path of a bad field.

absl::Status TypeError(const std::string& path, const char* want) {
  return absl::InvalidArgumentError(
      absl::StrCat("field ", path, ": expected ", want));
}

absl::StatusOr<Json> ParseObject(absl::string_view text, const char* what) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": invalid JSON"));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": top level is not a JSON object"));
  }
  return j;
}

// Optional fields: absent or null leave `out` untouched.
absl::Status GetString(const Json& j, const char* key, const std::string& path,
                       std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return TypeError(path + "." + key, "string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status GetInt(const Json& j, const char* key, const std::string& path,
                    int64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer()) return TypeError(path + "." + key, "integer");
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

absl::Status GetBool(const Json& j, const char* key, const std::string& path,
                     bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) return TypeError(path + "." + key, "boolean");
  *out = it->get<bool>();
  return absl::OkStatus();
}

absl::Status GetStringList(const Json& j, const char* key,
                           const std::string& path,
                           std::vector<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  // Docker accepts a bare string for Cmd/Entrypoint (strslice); so do we.
  if (it->is_string()) {
    *out = {it->get<std::string>()};
    return absl::OkStatus();
  }
  if (!it->is_array()) return TypeError(path + "." + key, "array of strings");
  out->clear();
  for (const auto& e : *it) {
    if (!e.is_string()) return TypeError(path + "." + key, "array of strings");
    out->push_back(e.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status GetStringMap(const Json& j, const char* key,
                          const std::string& path,
                          std::map<std::string, std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_object()) return TypeError(path + "." + key, "object of strings");
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) return TypeError(path + "." + key + "." + k, "string");
    (*out)[k] = v.get<std::string>();
  }
  return absl::OkStatus();
}

absl::Status GetStringSet(const Json& j, const char* key,
                          const std::string& path,
                          std::vector<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_object()) return TypeError(path + "." + key, "object");
  out->clear();
  for (const auto& [k, v] : it->items()) out->push_back(k);
  return absl::OkStatus();
}

absl::Status ParsePlatformJson(const Json& j, const std::string& path,
                               Platform* p) {
  if (!j.is_object()) return TypeError(path, "object");
  RETURN_IF_ERROR(GetString(j, "architecture", path, &p->architecture));
  RETURN_IF_ERROR(GetString(j, "os", path, &p->os));
  RETURN_IF_ERROR(GetString(j, "os.version", path, &p->os_version));
  RETURN_IF_ERROR(GetStringList(j, "os.features", path, &p->os_features));
  RETURN_IF_ERROR(GetString(j, "variant", path, &p->variant));
  return absl::OkStatus();
}

absl::Status ParseDescriptorJson(const Json& j, const std::string& path,
                                 Descriptor* d) {
  if (!j.is_object()) return TypeError(path, "object");
  RETURN_IF_ERROR(GetString(j, "mediaType", path, &d->media_type));
  RETURN_IF_ERROR(GetString(j, "digest", path, &d->digest));
  RETURN_IF_ERROR(GetInt(j, "size", path, &d->size));
  RETURN_IF_ERROR(GetStringList(j, "urls", path, &d->urls));
  RETURN_IF_ERROR(GetStringMap(j, "annotations", path, &d->annotations));
  if (d->digest.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field ", path, ".digest: missing"));
  }
  if (!IsValidDigest(d->digest)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field ", path, ".digest: unsupported digest \"", d->digest, "\""));
  }
  if (d->size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("field ", path, ".size: negative"));
  }
  auto it = j.find("platform");
  if (it != j.end() && !it->is_null()) {
    Platform p;
    RETURN_IF_ERROR(ParsePlatformJson(*it, path + ".platform", &p));
    d->platform = std::move(p);
  }
  return absl::OkStatus();
}

absl::Status ParseDescriptorList(const Json& j, const char* key,
                                 const std::string& path,
                                 std::vector<Descriptor>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) return TypeError(path + "." + key, "array");
  for (size_t i = 0; i < it->size(); ++i) {
    Descriptor d;
    RETURN_IF_ERROR(ParseDescriptorJson(
        (*it)[i], absl::StrCat(path, ".", key, "[", i, "]"), &d));
    out->push_back(std::move(d));
  }
  return absl::OkStatus();
}

absl::Status ParseHealthcheckJson(const Json& j, const std::string& path,
                                  Healthcheck* h) {
  if (!j.is_object()) return TypeError(path, "object");
  RETURN_IF_ERROR(GetStringList(j, "Test", path, &h->test));
  RETURN_IF_ERROR(GetInt(j, "Interval", path, &h->interval));
  RETURN_IF_ERROR(GetInt(j, "Timeout", path, &h->timeout));
  RETURN_IF_ERROR(GetInt(j, "StartPeriod", path, &h->start_period));
  RETURN_IF_ERROR(GetInt(j, "StartInterval", path, &h->start_interval));
  int64_t retries = 0;
  RETURN_IF_ERROR(GetInt(j, "Retries", path, &retries));
  h->retries = static_cast<int>(retries);
  return absl::OkStatus();
}

absl::Status ParseContainerConfigJson(const Json& j, const std::string& path,
                                      ContainerConfig* c) {
  if (!j.is_object()) return TypeError(path, "object");
  RETURN_IF_ERROR(GetString(j, "User", path, &c->user));
  RETURN_IF_ERROR(GetStringList(j, "Env", path, &c->env));
  RETURN_IF_ERROR(GetStringList(j, "Entrypoint", path, &c->entrypoint));
  RETURN_IF_ERROR(GetStringList(j, "Cmd", path, &c->cmd));
  RETURN_IF_ERROR(GetString(j, "WorkingDir", path, &c->working_dir));
  RETURN_IF_ERROR(GetStringMap(j, "Labels", path, &c->labels));
  RETURN_IF_ERROR(GetStringSet(j, "ExposedPorts", path, &c->exposed_ports));
  RETURN_IF_ERROR(GetStringSet(j, "Volumes", path, &c->volumes));
  RETURN_IF_ERROR(GetString(j, "StopSignal", path, &c->stop_signal));
  RETURN_IF_ERROR(GetStringList(j, "Shell", path, &c->shell));
  RETURN_IF_ERROR(GetStringList(j, "OnBuild", path, &c->on_build));
  RETURN_IF_ERROR(GetBool(j, "ArgsEscaped", path, &c->args_escaped));
  auto it = j.find("Healthcheck");
  if (it != j.end() && !it->is_null()) {
    Healthcheck h;
    RETURN_IF_ERROR(ParseHealthcheckJson(*it, path + ".Healthcheck", &h));
    c->healthcheck = std::move(h);
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------

absl::StatusOr<Compression> LayerCompression(absl::string_view media_type) {
  if (media_type == kMediaTypeOciLayer ||
      media_type == "application/vnd.oci.image.layer.nondistributable.v1.tar") {
    return Compression::kNone;
  }
  if (media_type == kMediaTypeOciLayerGzip ||
      media_type == kMediaTypeOciLayerNondistributableGzip ||
      media_type == kMediaTypeDockerLayerGzip ||
      media_type == kMediaTypeDockerForeignLayerGzip) {
    return Compression::kGzip;
  }
  if (media_type == kMediaTypeOciLayerZstd ||
      media_type ==
          "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd") {
    return Compression::kZstd;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("not a layer media type: \"", media_type, "\""));
}

bool IsManifestMediaType(absl::string_view media_type) {
  return media_type == kMediaTypeOciManifest ||
         media_type == kMediaTypeDockerManifest;
}

bool IsIndexMediaType(absl::string_view media_type) {
  return media_type == kMediaTypeOciIndex ||
         media_type == kMediaTypeDockerManifestList;
}

bool Platform::operator==(const Platform& o) const {
  return architecture == o.architecture && os == o.os &&
         os_version == o.os_version && os_features == o.os_features &&
         variant == o.variant;
}

bool Descriptor::operator==(const Descriptor& o) const {
  return media_type == o.media_type && digest == o.digest && size == o.size &&
         urls == o.urls && annotations == o.annotations &&
         platform == o.platform;
}

bool Healthcheck::operator==(const Healthcheck& o) const {
  return test == o.test && interval == o.interval && timeout == o.timeout &&
         start_period == o.start_period && start_interval == o.start_interval &&
         retries == o.retries;
}

bool ContainerConfig::operator==(const ContainerConfig& o) const {
  return user == o.user && env == o.env && entrypoint == o.entrypoint &&
         cmd == o.cmd && working_dir == o.working_dir && labels == o.labels &&
         exposed_ports == o.exposed_ports && volumes == o.volumes &&
         stop_signal == o.stop_signal && healthcheck == o.healthcheck &&
         shell == o.shell && on_build == o.on_build &&
         args_escaped == o.args_escaped;
}

bool RootFs::operator==(const RootFs& o) const {
  return type == o.type && diff_ids == o.diff_ids;
}

bool HistoryEntry::operator==(const HistoryEntry& o) const {
  return created == o.created && created_by == o.created_by &&
         author == o.author && comment == o.comment &&
         empty_layer == o.empty_layer;
}

bool OciConfig::operator==(const OciConfig& o) const {
  return created == o.created && author == o.author &&
         architecture == o.architecture && os == o.os && variant == o.variant &&
         os_version == o.os_version && config == o.config &&
         rootfs == o.rootfs && history == o.history;
}

bool Manifest::operator==(const Manifest& o) const {
  return schema_version == o.schema_version && media_type == o.media_type &&
         artifact_type == o.artifact_type && config == o.config &&
         layers == o.layers && subject == o.subject &&
         annotations == o.annotations;
}

bool Index::operator==(const Index& o) const {
  return schema_version == o.schema_version && media_type == o.media_type &&
         manifests == o.manifests && annotations == o.annotations;
}

std::string ToJson(const Descriptor& d) { return Dump(DescriptorJson(d)); }

std::string ToJson(const OciConfig& c) {
  Json j = Json::object();
  if (c.created) j["created"] = *c.created;
  if (!c.author.empty()) j["author"] = c.author;
  j["architecture"] = c.architecture;
  j["os"] = c.os;
  if (!c.variant.empty()) j["variant"] = c.variant;
  if (!c.os_version.empty()) j["os.version"] = c.os_version;
  j["config"] = ContainerConfigJson(c.config);
  Json rootfs = Json::object();
  rootfs["type"] = c.rootfs.type;
  rootfs["diff_ids"] = c.rootfs.diff_ids;  // always present, [] when empty
  j["rootfs"] = std::move(rootfs);
  if (!c.history.empty()) {
    Json hist = Json::array();
    for (const auto& h : c.history) {
      Json e = Json::object();
      if (!h.created.empty()) e["created"] = h.created;
      if (!h.created_by.empty()) e["created_by"] = h.created_by;
      if (!h.author.empty()) e["author"] = h.author;
      if (!h.comment.empty()) e["comment"] = h.comment;
      if (h.empty_layer) e["empty_layer"] = true;
      hist.push_back(std::move(e));
    }
    j["history"] = std::move(hist);
  }
  return Dump(j);
}

std::string ToJson(const Manifest& m) {
  Json j = Json::object();
  j["schemaVersion"] = m.schema_version;
  if (!m.media_type.empty()) j["mediaType"] = m.media_type;
  if (!m.artifact_type.empty()) j["artifactType"] = m.artifact_type;
  j["config"] = DescriptorJson(m.config);
  Json layers = Json::array();
  for (const auto& l : m.layers) layers.push_back(DescriptorJson(l));
  j["layers"] = std::move(layers);
  if (m.subject) j["subject"] = DescriptorJson(*m.subject);
  if (!m.annotations.empty()) j["annotations"] = StringMap(m.annotations);
  return Dump(j);
}

std::string ToJson(const Index& i) {
  Json j = Json::object();
  j["schemaVersion"] = i.schema_version;
  if (!i.media_type.empty()) j["mediaType"] = i.media_type;
  Json manifests = Json::array();
  for (const auto& d : i.manifests) manifests.push_back(DescriptorJson(d));
  j["manifests"] = std::move(manifests);
  if (!i.annotations.empty()) j["annotations"] = StringMap(i.annotations);
  return Dump(j);
}

absl::StatusOr<Descriptor> ParseDescriptor(absl::string_view json) {
  ASSIGN_OR_RETURN(Json j, ParseObject(json, "descriptor"));
  Descriptor d;
  RETURN_IF_ERROR(ParseDescriptorJson(j, "descriptor", &d));
  return d;
}

absl::StatusOr<OciConfig> ParseConfig(absl::string_view json) {
  ASSIGN_OR_RETURN(Json j, ParseObject(json, "image config"));
  OciConfig c;
  const std::string path = "config";
  auto created = j.find("created");
  if (created != j.end() && !created->is_null()) {
    if (!created->is_string()) return TypeError("config.created", "string");
    c.created = created->get<std::string>();
  }
  RETURN_IF_ERROR(GetString(j, "author", path, &c.author));
  RETURN_IF_ERROR(GetString(j, "architecture", path, &c.architecture));
  RETURN_IF_ERROR(GetString(j, "os", path, &c.os));
  RETURN_IF_ERROR(GetString(j, "variant", path, &c.variant));
  RETURN_IF_ERROR(GetString(j, "os.version", path, &c.os_version));
  auto cfg = j.find("config");
  if (cfg != j.end() && !cfg->is_null()) {
    RETURN_IF_ERROR(ParseContainerConfigJson(*cfg, "config.config", &c.config));
  }
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) {
    return absl::InvalidArgumentError("field config.rootfs: missing");
  }
  RETURN_IF_ERROR(GetString(*rootfs, "type", "config.rootfs", &c.rootfs.type));
  RETURN_IF_ERROR(
      GetStringList(*rootfs, "diff_ids", "config.rootfs", &c.rootfs.diff_ids));
  if (c.rootfs.type != "layers") {
    return absl::InvalidArgumentError(absl::StrCat(
        "field config.rootfs.type: \"", c.rootfs.type, "\", want \"layers\""));
  }
  for (const auto& id : c.rootfs.diff_ids) {
    if (!IsValidDigest(id)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field config.rootfs.diff_ids: unsupported digest \"", id, "\""));
    }
  }
  auto hist = j.find("history");
  if (hist != j.end() && !hist->is_null()) {
    if (!hist->is_array()) return TypeError("config.history", "array");
    for (size_t i = 0; i < hist->size(); ++i) {
      const Json& e = (*hist)[i];
      std::string p = absl::StrCat("config.history[", i, "]");
      if (!e.is_object()) return TypeError(p, "object");
      HistoryEntry h;
      RETURN_IF_ERROR(GetString(e, "created", p, &h.created));
      RETURN_IF_ERROR(GetString(e, "created_by", p, &h.created_by));
      RETURN_IF_ERROR(GetString(e, "author", p, &h.author));
      RETURN_IF_ERROR(GetString(e, "comment", p, &h.comment));
      RETURN_IF_ERROR(GetBool(e, "empty_layer", p, &h.empty_layer));
      c.history.push_back(std::move(h));
    }
  }
  return c;
}

absl::StatusOr<Manifest> ParseManifest(absl::string_view json) {
  ASSIGN_OR_RETURN(Json j, ParseObject(json, "manifest"));
  Manifest m;
  m.media_type.clear();
  int64_t version = 0;
  RETURN_IF_ERROR(GetInt(j, "schemaVersion", "manifest", &version));
  if (version != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("field manifest.schemaVersion: ", version, ", want 2"));
  }
  m.schema_version = 2;
  RETURN_IF_ERROR(GetString(j, "mediaType", "manifest", &m.media_type));
  if (!m.media_type.empty() && !IsManifestMediaType(m.media_type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field manifest.mediaType: \"", m.media_type, "\" is not a manifest"));
  }
  RETURN_IF_ERROR(GetString(j, "artifactType", "manifest", &m.artifact_type));
  auto cfg = j.find("config");
  if (cfg == j.end()) {
    return absl::InvalidArgumentError("field manifest.config: missing");
  }
  RETURN_IF_ERROR(ParseDescriptorJson(*cfg, "manifest.config", &m.config));
  RETURN_IF_ERROR(ParseDescriptorList(j, "layers", "manifest", &m.layers));
  auto subject = j.find("subject");
  if (subject != j.end() && !subject->is_null()) {
    Descriptor d;
    RETURN_IF_ERROR(ParseDescriptorJson(*subject, "manifest.subject", &d));
    m.subject = std::move(d);
  }
  RETURN_IF_ERROR(GetStringMap(j, "annotations", "manifest", &m.annotations));
  return m;
}

absl::StatusOr<Index> ParseIndex(absl::string_view json) {
  ASSIGN_OR_RETURN(Json j, ParseObject(json, "index"));
  Index idx;
  idx.media_type.clear();
  int64_t version = 0;
  RETURN_IF_ERROR(GetInt(j, "schemaVersion", "index", &version));
  if (version != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("field index.schemaVersion: ", version, ", want 2"));
  }
  RETURN_IF_ERROR(GetString(j, "mediaType", "index", &idx.media_type));
  if (!idx.media_type.empty() && !IsIndexMediaType(idx.media_type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field index.mediaType: \"", idx.media_type, "\" is not an index"));
  }
  RETURN_IF_ERROR(ParseDescriptorList(j, "manifests", "index", &idx.manifests));
  RETURN_IF_ERROR(GetStringMap(j, "annotations", "index", &idx.annotations));
  return idx;
}

std::string FormatRfc3339(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec);
}

absl::StatusOr<Descriptor> SelectPlatform(const Index& index,
                                          const Platform& platform) {
  std::vector<std::string> offered;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    const Platform& p = *d.platform;
    offered.push_back(
        p.variant.empty()
            ? absl::StrCat(p.os, "/", p.architecture)
            : absl::StrCat(p.os, "/", p.architecture, "/", p.variant));
    if (p.os != platform.os || p.architecture != platform.architecture) {
      continue;
    }
    if (!platform.variant.empty() && !p.variant.empty() &&
        p.variant != platform.variant) {
      continue;
    }
    return d;
  }
  return absl::NotFoundError(absl::StrCat(
      "no manifest for ", platform.os, "/", platform.architecture,
      " in index; it offers [", absl::StrJoin(offered, ", "), "]"));
}

}  // namespace longshore::image
