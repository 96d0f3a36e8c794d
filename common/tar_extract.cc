#include "common/tar_extract.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace longshore {
namespace {

struct ReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};

}  // namespace

absl::Status ExtractTarConfined(const std::string& tar_path,
                                const std::string& dir, const std::string& what,
                                bool compressed) {
  std::unique_ptr<archive, ReadDeleter> in(archive_read_new());
  archive_read_support_format_tar(in.get());
  archive_read_support_filter_none(in.get());
  if (compressed) {
    archive_read_support_filter_gzip(in.get());
    archive_read_support_filter_bzip2(in.get());
    archive_read_support_filter_xz(in.get());
    archive_read_support_filter_zstd(in.get());
  }
  if (archive_read_open_filename(in.get(), tar_path.c_str(), 1 << 16) !=
      ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat(what, ": open ", tar_path, ": ",
                                            archive_error_string(in.get())));
  }
  std::unique_ptr<archive, WriteDeleter> out(archive_write_disk_new());
  archive_write_disk_set_options(out.get(),
                                 ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                     ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                     ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) {
      return absl::DataLossError(
          absl::StrCat(what, ": ", archive_error_string(in.get())));
    }
    std::string name = archive_entry_pathname(entry);
    // Entries are prefixed with `dir` below, which makes every path absolute:
    // libarchive's NOABSOLUTEPATHS cannot be used, so absolute entry names are
    // refused here instead (NODOTDOT and SYMLINKS still apply to the result).
    if (!name.empty() && name[0] == '/') {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": entry ", name, " has an absolute path"));
    }
    archive_entry_set_pathname(entry, absl::StrCat(dir, "/", name).c_str());
    if (const char* hl = archive_entry_hardlink(entry)) {
      archive_entry_set_hardlink(entry, absl::StrCat(dir, "/", hl).c_str());
    }
    if (archive_write_header(out.get(), entry) != ARCHIVE_OK) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": entry ", name, ": ", archive_error_string(out.get())));
    }
    const void* buf;
    size_t size;
    la_int64_t offset;
    while ((r = archive_read_data_block(in.get(), &buf, &size, &offset)) ==
           ARCHIVE_OK) {
      if (archive_write_data_block(out.get(), buf, size, offset) !=
          ARCHIVE_OK) {
        return absl::InternalError(absl::StrCat(
            what, ": entry ", name, ": ", archive_error_string(out.get())));
      }
    }
    if (r != ARCHIVE_EOF) {
      return absl::DataLossError(absl::StrCat(what, ": entry ", name, ": ",
                                              archive_error_string(in.get())));
    }
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) {
    return absl::InternalError(
        absl::StrCat(what, ": ", archive_error_string(out.get())));
  }
  return absl::OkStatus();
}

}  // namespace longshore
