#include "client/context_packer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "dockerfile/dockerignore.h"

namespace longshore::client {
namespace {

struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// Lists the context in walk order.
class Lister {
 public:
  Lister(const std::string& root,
         std::optional<dockerfile::DockerIgnore> ignore,
         const std::string& dockerfile_rel, std::function<bool()> cancelled,
         std::vector<ListedEntry>* out)
      : root_(root),
        ignore_(std::move(ignore)),
        dockerfile_rel_(dockerfile_rel),
        cancelled_(std::move(cancelled)),
        out_(out) {}

  absl::Status Walk(const std::string& rel) {
    std::string dir = rel.empty() ? root_ : absl::StrCat(root_, "/", rel);
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirSorted(dir));
    for (const std::string& n : names) {
      std::string child = rel.empty() ? n : absl::StrCat(rel, "/", n);
      std::string path = absl::StrCat(root_, "/", child);
      if (cancelled_ && cancelled_()) {
        return absl::CancelledError("packing the context was interrupted");
      }
      struct stat st;
      if (lstat(path.c_str(), &st) != 0) {
        return ErrnoStatus(errno, "lstat(%s)", path);
      }
      bool always = child == dockerfile_rel_ || child == ".dockerignore";
      bool excluded = !always && ignore_ && ignore_->Excluded(child);
      if (S_ISDIR(st.st_mode)) {
        if (!excluded) out_->push_back({child, path, st});
        // An excluded directory may still hold files a `!` pattern re-includes.
        if (!excluded || ignore_->MayReinclude(child)) {
          RETURN_IF_ERROR(Walk(child));
        }
        continue;
      }
      if (excluded) continue;
      if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) continue;
      out_->push_back({child, path, st});
    }
    return absl::OkStatus();
  }

 private:
  std::string root_;
  std::optional<dockerfile::DockerIgnore> ignore_;
  std::string dockerfile_rel_;
  std::function<bool()> cancelled_;
  std::vector<ListedEntry>* out_;
};

class Packer {
 public:
  explicit Packer(archive* ar) : ar_(ar) {}

  int64_t files() const { return files_; }

  absl::Status Add(const std::string& rel, const std::string& path,
                   const struct stat& st) {
    std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), rel.c_str());
    archive_entry_set_mode(entry.get(), st.st_mode);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    archive_entry_set_mtime(entry.get(), st.st_mtim.tv_sec, 0);
    if (S_ISLNK(st.st_mode)) {
      std::string target(st.st_size + 1, '\0');
      ssize_t n = readlink(path.c_str(), target.data(), target.size());
      if (n < 0) return ErrnoStatus(errno, "readlink(%s)", path);
      target.resize(n);
      archive_entry_set_symlink(entry.get(), target.c_str());
      archive_entry_set_size(entry.get(), 0);
    } else if (S_ISREG(st.st_mode)) {
      archive_entry_set_size(entry.get(), st.st_size);
    } else {
      archive_entry_set_size(entry.get(), 0);
    }
    if (archive_write_header(ar_, entry.get()) != ARCHIVE_OK) {
      return absl::InternalError(absl::StrCat("tar header for ", rel, ": ",
                                              archive_error_string(ar_)));
    }
    if (S_ISREG(st.st_mode)) {
      UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return ErrnoStatus(errno, "open(%s)", path);
      char buf[1 << 16];
      int64_t left = st.st_size;
      while (left > 0) {
        ssize_t n = read(fd.get(), buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ErrnoStatus(errno, "read(%s)", path);
        if (cancelled_ && cancelled_()) {
          return absl::CancelledError("packing the context was interrupted");
        }
        if (n == 0) {
          return absl::AbortedError(
              absl::StrCat(path, " shrank while the context was packed"));
        }
        if (n > left) n = left;
        if (archive_write_data(ar_, buf, n) != n) {
          return absl::InternalError(absl::StrCat("tar data for ", rel, ": ",
                                                  archive_error_string(ar_)));
        }
        left -= n;
      }
      ++files_;
    }
    return absl::OkStatus();
  }

 private:
  archive* ar_;
  int64_t files_ = 0;

 public:
  std::function<bool()> cancelled_;
};

}  // namespace

absl::StatusOr<std::vector<ListedEntry>> ListContext(const PackOptions& opts) {
  struct stat st;
  if (stat(opts.context_dir.c_str(), &st) != 0) {
    return ErrnoStatus(errno, "build context %s", opts.context_dir);
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "build context ", opts.context_dir, " is not a directory"));
  }
  std::optional<dockerfile::DockerIgnore> ignore;
  std::string ignore_file;
  if (!opts.dockerfile_path.empty() &&
      PathExists(opts.dockerfile_path + ".dockerignore")) {
    ignore_file = opts.dockerfile_path + ".dockerignore";
  } else if (PathExists(opts.context_dir + "/.dockerignore")) {
    ignore_file = opts.context_dir + "/.dockerignore";
  }
  if (!ignore_file.empty()) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(ignore_file));
    auto parsed = dockerfile::DockerIgnore::Parse(text);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(ignore_file, ": ", parsed.status().message()));
    }
    ignore = std::move(*parsed);
  }

  std::vector<ListedEntry> out;
  Lister lister(
      opts.context_dir, std::move(ignore),
      opts.dockerfile_rel.empty() ? "Dockerfile" : opts.dockerfile_rel,
      opts.cancelled, &out);
  RETURN_IF_ERROR(lister.Walk(""));
  return out;
}

absl::StatusOr<PackedContext> PackContext(const PackOptions& opts) {
  ASSIGN_OR_RETURN(std::vector<ListedEntry> entries, ListContext(opts));
  struct stat st;
  PackedContext out;
  out.tar_path =
      absl::StrCat(opts.temp_dir, "/longshore-context-", getpid(), "-XXXXXX");
  int raw = mkstemp(out.tar_path.data());
  if (raw < 0) return ErrnoStatus(errno, "mkstemp(%s)", out.tar_path);
  UniqueFd fd(raw);
  auto remove_on_error =
      absl::MakeCleanup([&] { unlink(out.tar_path.c_str()); });

  std::unique_ptr<archive, ArchiveWriteDeleter> ar(archive_write_new());
  archive_write_set_format_pax_restricted(ar.get());
  archive_write_set_bytes_in_last_block(ar.get(), 1);
  if (archive_write_open_fd(ar.get(), fd.get()) != ARCHIVE_OK) {
    return absl::InternalError(
        absl::StrCat("tar open: ", archive_error_string(ar.get())));
  }
  Packer packer(ar.get());
  packer.cancelled_ = opts.cancelled;
  for (const ListedEntry& e : entries) {
    RETURN_IF_ERROR(packer.Add(e.rel, e.path, e.st));
  }
  if (archive_write_close(ar.get()) != ARCHIVE_OK) {
    return absl::InternalError(
        absl::StrCat("tar close: ", archive_error_string(ar.get())));
  }
  ASSIGN_OR_RETURN(out.digest, Sha256File(out.tar_path));
  if (fstat(fd.get(), &st) != 0) {
    return ErrnoStatus(errno, "fstat(%s)", out.tar_path);
  }
  out.size = st.st_size;
  out.files = packer.files();
  std::move(remove_on_error).Cancel();
  return out;
}

}  // namespace longshore::client
