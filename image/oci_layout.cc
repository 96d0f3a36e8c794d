#include "image/oci_layout.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "image/reference.h"
#include "nlohmann/json.hpp"

namespace longshore::image {
namespace {

constexpr char kOciLayoutFile[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

// Everything an export needs, with the blobs leased so GC cannot remove them
// while they are copied.
struct ExportPlan {
  std::vector<std::string> digests;  // sorted, unique
  std::vector<ContentStore::Lease> leases;
  std::string index_json;
};

absl::Status Collect(ContentStore& store, const Descriptor& desc, int depth,
                     std::set<std::string>* out) {
  if (depth > 4) return absl::InvalidArgumentError("index nesting too deep");
  if (!store.Has(desc.digest)) {
    return absl::NotFoundError(absl::StrCat("blob ", desc.digest, " (",
                                            desc.media_type,
                                            ") is not in the local store"));
  }
  out->insert(desc.digest);
  if (IsManifestMediaType(desc.media_type)) {
    ASSIGN_OR_RETURN(std::string json, store.ReadBlob(desc.digest));
    ASSIGN_OR_RETURN(Manifest m, ParseManifest(json));
    RETURN_IF_ERROR(Collect(store, m.config, depth + 1, out));
    for (const Descriptor& l : m.layers) {
      RETURN_IF_ERROR(Collect(store, l, depth + 1, out));
    }
  } else if (IsIndexMediaType(desc.media_type)) {
    ASSIGN_OR_RETURN(std::string json, store.ReadBlob(desc.digest));
    ASSIGN_OR_RETURN(Index idx, ParseIndex(json));
    for (const Descriptor& d : idx.manifests) {
      RETURN_IF_ERROR(Collect(store, d, depth + 1, out));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> IndexJson(const ImageExport& image) {
  Index idx;
  std::set<std::string> seen;
  for (const std::string& name : image.names) {
    ASSIGN_OR_RETURN(Reference ref, ParseReference(name));
    std::string normalized = ref.Normalized();
    if (!seen.insert(normalized).second) continue;
    Descriptor d = image.manifest;
    d.annotations[kAnnotationContainerdImageName] = normalized;
    if (!ref.tag.empty()) d.annotations[kAnnotationRefName] = ref.tag;
    idx.manifests.push_back(std::move(d));
  }
  if (idx.manifests.empty()) idx.manifests.push_back(image.manifest);
  return ToJson(idx);
}

absl::StatusOr<ExportPlan> Plan(ContentStore& store, const ImageExport& image) {
  if (!IsManifestMediaType(image.manifest.media_type) &&
      !IsIndexMediaType(image.manifest.media_type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("export needs a manifest or index, not \"",
                     image.manifest.media_type, "\""));
  }
  ExportPlan plan;
  std::set<std::string> digests;
  RETURN_IF_ERROR(Collect(store, image.manifest, 0, &digests));
  for (const std::string& d : digests) {
    ASSIGN_OR_RETURN(ContentStore::Lease lease, store.AcquireBlob(d));
    plan.leases.push_back(std::move(lease));
    plan.digests.push_back(d);
  }
  ASSIGN_OR_RETURN(plan.index_json, IndexJson(image));
  return plan;
}

std::string BlobEntry(const std::string& digest) {
  return absl::StrCat("blobs/sha256/", digest.substr(7));
}

class TarOut {
 public:
  absl::Status Open(int fd) {
    a_ = archive_write_new();
    if (a_ == nullptr) return absl::ResourceExhaustedError("archive_write_new");
    if (archive_write_set_format_pax_restricted(a_) != ARCHIVE_OK ||
        archive_write_open_fd(a_, fd) != ARCHIVE_OK) {
      return Error("open tar writer");
    }
    return absl::OkStatus();
  }
  ~TarOut() {
    if (a_ != nullptr) archive_write_free(a_);
  }

  absl::Status Dir(const std::string& name) {
    return Header(name, AE_IFDIR, 0755, 0);
  }

  absl::Status File(const std::string& name, const std::string& data) {
    RETURN_IF_ERROR(Header(name, AE_IFREG, 0644, data.size()));
    if (!data.empty() && archive_write_data(a_, data.data(), data.size()) !=
                             static_cast<la_ssize_t>(data.size())) {
      return Error(absl::StrCat("write ", name));
    }
    return absl::OkStatus();
  }

  absl::Status FileFrom(const std::string& name, const std::string& path) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return ErrnoStatus(errno, "open(%s)", path);
    struct stat st;
    if (fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat(%s)", path);
    RETURN_IF_ERROR(Header(name, AE_IFREG, 0644, st.st_size));
    std::vector<char> buf(1 << 20);
    int64_t left = st.st_size;
    while (left > 0) {
      ssize_t n = read(fd.get(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "read(%s)", path);
      }
      if (n == 0) {
        return absl::DataLossError(absl::StrCat(path, ": shrank while read"));
      }
      if (n > left) n = static_cast<ssize_t>(left);
      if (archive_write_data(a_, buf.data(), static_cast<size_t>(n)) != n) {
        return Error(absl::StrCat("write ", name));
      }
      left -= n;
    }
    return absl::OkStatus();
  }

  absl::Status Close() {
    if (archive_write_close(a_) != ARCHIVE_OK) return Error("close tar");
    return absl::OkStatus();
  }

 private:
  absl::Status Header(const std::string& name, int type, int perm,
                      int64_t size) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_size(e, size);
    archive_entry_set_mtime(e, 0, 0);
    int rc = archive_write_header(a_, e);
    archive_entry_free(e);
    if (rc < ARCHIVE_WARN) return Error(absl::StrCat("write header ", name));
    return absl::OkStatus();
  }

  absl::Status Error(const std::string& what) {
    const char* msg = archive_error_string(a_);
    return absl::InternalError(
        absl::StrCat(what, ": ", msg ? msg : "libarchive error"));
  }

  archive* a_ = nullptr;
};

// Blobs in digest order, then the named files in name order (all sort after
// "blobs/").
absl::Status WriteTar(
    ContentStore& store, const ExportPlan& plan,
    const std::vector<std::pair<std::string, std::string>>& files, int fd) {
  TarOut tar;
  RETURN_IF_ERROR(tar.Open(fd));
  RETURN_IF_ERROR(tar.Dir("blobs/"));
  RETURN_IF_ERROR(tar.Dir("blobs/sha256/"));
  for (const std::string& d : plan.digests) {
    RETURN_IF_ERROR(tar.FileFrom(BlobEntry(d), store.BlobPath(d)));
  }
  for (const auto& [name, data] : files) RETURN_IF_ERROR(tar.File(name, data));
  return tar.Close();
}

template <typename WriteFn>
absl::Status WriteFileVia(const std::string& path, WriteFn write) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  UniqueFd fd(
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return ErrnoStatus(errno, "open(%s)", tmp);
  absl::Status s = write(fd.get());
  if (s.ok() && fsync(fd.get()) != 0) s = ErrnoStatus(errno, "fsync(%s)", tmp);
  if (s.ok() && close(fd.release()) != 0) {
    s = ErrnoStatus(errno, "close(%s)", tmp);
  }
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    s = ErrnoStatus(errno, "rename(%s, %s)", tmp, path);
  }
  if (!s.ok()) unlink(tmp.c_str());
  return s;
}

}  // namespace

absl::Status WriteOciLayoutDir(ContentStore& store, const ImageExport& image,
                               const std::string& dir) {
  ASSIGN_OR_RETURN(ExportPlan plan, Plan(store, image));
  RETURN_IF_ERROR(MakeDirs(dir + "/blobs/sha256"));
  for (const std::string& d : plan.digests) {
    std::string dest = absl::StrCat(dir, "/", BlobEntry(d));
    struct stat st;
    ASSIGN_OR_RETURN(int64_t size, store.BlobSize(d));
    if (stat(dest.c_str(), &st) == 0 && st.st_size == size) continue;
    RETURN_IF_ERROR(CopyFileAtomic(store.BlobPath(d), dest));
  }
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/oci-layout", kOciLayoutFile));
  return WriteFileAtomic(dir + "/index.json", plan.index_json);
}

absl::Status WriteOciLayoutTar(ContentStore& store, const ImageExport& image,
                               int fd) {
  ASSIGN_OR_RETURN(ExportPlan plan, Plan(store, image));
  return WriteTar(
      store, plan,
      {{"index.json", plan.index_json}, {"oci-layout", kOciLayoutFile}}, fd);
}

absl::Status WriteDockerArchive(ContentStore& store, const ImageExport& image,
                                int fd) {
  if (!IsManifestMediaType(image.manifest.media_type)) {
    return absl::InvalidArgumentError(
        "a docker archive holds one image manifest, not an index");
  }
  ASSIGN_OR_RETURN(ExportPlan plan, Plan(store, image));
  ASSIGN_OR_RETURN(std::string json, store.ReadBlob(image.manifest.digest));
  ASSIGN_OR_RETURN(Manifest m, ParseManifest(json));
  nlohmann::json entry = nlohmann::json::object();
  entry["Config"] = BlobEntry(m.config.digest);
  nlohmann::json tags = nlohmann::json::array();
  std::set<std::string> seen;
  for (const std::string& name : image.names) {
    ASSIGN_OR_RETURN(Reference ref, ParseReference(name));
    if (ref.tag.empty()) continue;  // docker load names images by tag only
    Reference tagged = ref;
    tagged.digest.clear();
    if (seen.insert(tagged.Familiar()).second)
      tags.push_back(tagged.Familiar());
  }
  entry["RepoTags"] = tags;
  nlohmann::json layers = nlohmann::json::array();
  for (const Descriptor& l : m.layers) layers.push_back(BlobEntry(l.digest));
  entry["Layers"] = layers;
  nlohmann::json manifest_json = nlohmann::json::array({entry});
  return WriteTar(store, plan,
                  {{"index.json", plan.index_json},
                   {"manifest.json", manifest_json.dump()},
                   {"oci-layout", kOciLayoutFile}},
                  fd);
}

absl::Status WriteOciLayoutTarFile(ContentStore& store,
                                   const ImageExport& image,
                                   const std::string& path) {
  return WriteFileVia(
      path, [&](int fd) { return WriteOciLayoutTar(store, image, fd); });
}

absl::Status WriteDockerArchiveFile(ContentStore& store,
                                    const ImageExport& image,
                                    const std::string& path) {
  return WriteFileVia(
      path, [&](int fd) { return WriteDockerArchive(store, image, fd); });
}

}  // namespace longshore::image
