// Turns a directory (an overlay upper dir, or a snapshot) into an OCI layer
// blob.
#ifndef LONGSHORE_IMAGE_LAYER_COMMIT_H_
#define LONGSHORE_IMAGE_LAYER_COMMIT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "image/oci.h"

namespace longshore::image {

struct CommitOptions {
  Compression compression = Compression::kGzip;
  // -1: the algorithm's default (gzip 6, zstd 3).
  int level = -1;
  // Compression threads; 0 means the number of online CPUs. Never changes the
  // output.
  int threads = 0;
  // SOURCE_DATE_EPOCH: every mtime later than this is clamped to it.
  std::optional<int64_t> source_date_epoch;
  // Docker media types (gzip only) instead of OCI ones.
  bool docker_media_types = false;
};

struct CommittedLayer {
  std::string digest;   // sha256 of the blob as written
  std::string diff_id;  // sha256 of the uncompressed tar
  int64_t size = 0;     // blob bytes
  int64_t uncompressed_size = 0;
  std::string media_type;

  Descriptor descriptor() const {
    return Descriptor{media_type, digest, size, {}, {}, std::nullopt};
  }
};

// Walks `dir` depth-first in byte-wise name order and writes the layer to
// `out_blob_path` (created or truncated; removed again on error).
//
// The tar is pax-restricted (ustar, with pax records only where ustar cannot
// say it: long names, xattrs, large ids), entries relative without "./",
// directories with a trailing "/", no end-of-archive padding beyond the two
// zero records, mtimes in whole seconds, no atime/ctime/uname/gname. Overlay
// forms become OCI whiteouts: a 0/0 character device NAME becomes an empty
// regular file `.wh.NAME`, a directory with user.overlay.opaque=y (or
// trusted.overlay.opaque=y) gets a `.wh..wh..opq` entry right after its own.
// Owner, mode, mtime, symlinks, hard links (by inode, the first path in walk
// order is the target), device files, fifos and xattrs (sorted;
// security.capability included; overlay and security.selinux ones left out) are
// kept. Sockets are skipped. The diffID and the blob digest are computed while
// streaming; the tree is read once.
absl::StatusOr<CommittedLayer> CommitLayer(const std::string& dir,
                                           const std::string& out_blob_path,
                                           const CommitOptions& opts);

// The media type CommitLayer uses for `opts`.
absl::StatusOr<std::string> LayerMediaType(const CommitOptions& opts);

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_LAYER_COMMIT_H_
