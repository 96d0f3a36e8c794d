// Packs a build context directory into a tar, as `docker build` sends it.
#ifndef LONGSHORE_CLIENT_CONTEXT_PACKER_H_
#define LONGSHORE_CLIENT_CONTEXT_PACKER_H_

#include <sys/stat.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace longshore::client {

struct PackedContext {
  std::string tar_path;  // temporary file; the caller removes it
  std::string digest;    // "sha256:<hex>" of the tar bytes
  int64_t size = 0;
  int64_t files = 0;
  // Content-addressed sync: the manifest root sent in place of a tar
  // (tar_path is then empty).
  std::string root;
};

struct PackOptions {
  std::string context_dir;
  // Path of the Dockerfile relative to the context ("Dockerfile" by default);
  // it and .dockerignore are always sent, whatever .dockerignore says.
  std::string dockerfile_rel;
  // Where the Dockerfile lives on disk, to find "<Dockerfile>.dockerignore"
  // beside it, which takes precedence over the context's .dockerignore (as
  // BuildKit does).
  std::string dockerfile_path;
  std::string temp_dir = "/tmp";
  // Asked between files and reads (Ctrl-C): when it says yes, packing stops
  // with a Cancelled error and its tar is removed.
  std::function<bool()> cancelled;
};

// One entry of the context, in the walk order the tar uses (each
// directory's names in byte order, a directory before what it holds).
struct ListedEntry {
  std::string rel;   // Path inside the context.
  std::string path;  // Path on disk.
  struct stat st;    // lstat of `path`.
};

// The entries `docker build` would send: .dockerignore applied (the
// Dockerfile and .dockerignore always kept), only regular files, directories
// and symlinks.
absl::StatusOr<std::vector<ListedEntry>> ListContext(const PackOptions& opts);

// Entries are sorted, owned by 0:0 with no user or group names, and keep their
// mode and modification time; the same tree gives the same digest. Sockets and
// devices are skipped, as docker does.
absl::StatusOr<PackedContext> PackContext(const PackOptions& opts);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_CONTEXT_PACKER_H_
