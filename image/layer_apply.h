// Extracts an OCI layer blob into a snapshot directory in overlay lower-dir
// form.
#ifndef LONGSHORE_IMAGE_LAYER_APPLY_H_
#define LONGSHORE_IMAGE_LAYER_APPLY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace longshore::image {

struct ApplyOptions {
  // Bound on the sum of regular file sizes (as their headers state); 0 = no
  // bound. The decompressed stream as a whole may be at most 2 * max_bytes + 64
  // MiB.
  int64_t max_bytes = 0;
  // Bound on the number of entries; 0 = no bound.
  int64_t max_entries = 0;
  // chown entries to the ids in the tar (needs to be root in the worker's user
  // namespace). When false, files keep the extracting process's ids.
  bool preserve_owner = true;
  // Xattr namespace overlayfs reads: "user.overlay." for mounts with
  // `userxattr` (unprivileged overlay), "trusted.overlay." otherwise.
  std::string overlay_xattr_prefix = "user.overlay.";
  // Refuse relative symlink targets that climb above the layer root
  // ("a/l -> ../../etc"). Absolute targets are kept: they resolve against the
  // container's root at run time, and extraction never follows any symlink.
  bool reject_escaping_symlinks = true;
};

struct AppliedLayer {
  std::string diff_id;  // sha256 of the uncompressed tar stream
  std::string digest;   // sha256 of the blob bytes as read
  int64_t compressed_size = 0;
  int64_t uncompressed_size = 0;
  int64_t extracted_bytes = 0;  // sum of regular file sizes
  int64_t entries = 0;
};

// Extracts the layer at `blob_path` into the existing directory `snapshot_dir`.
//
// The compression is detected by magic (gzip, zstd, or a plain tar);
// `media_type` is only used in messages. Whiteouts become overlay form:
// `.wh.NAME` a 0/0 character device NAME, `.wh..wh..opq` the xattr
// <overlay_xattr_prefix>opaque=y on its directory; other `.wh..wh.` entries are
// AUFS bookkeeping and skipped. Overlay xattrs carried in the tar itself are
// dropped, so a layer cannot forge overlay metadata. Device nodes that the
// kernel refuses (EPERM in a user namespace) are skipped with a warning, as
// rootless BuildKit and Podman do.
//
// Safety: entry names that are absolute or contain "..", hard links whose
// target is absolute, has "..", or is not an earlier entry, and any entry whose
// parent path crosses a symlink are refused with an error naming the entry.
// Every path is resolved one component at a time with O_NOFOLLOW below the
// snapshot's fd, so nothing is ever written outside `snapshot_dir`. On error
// the directory holds a partial extraction; the caller discards it
// (ContentStore does).
absl::StatusOr<AppliedLayer> ApplyLayer(const std::string& blob_path,
                                        const std::string& media_type,
                                        const std::string& snapshot_dir,
                                        const ApplyOptions& opts);

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_LAYER_APPLY_H_
