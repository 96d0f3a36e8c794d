// Local image outputs: an OCI image layout (directory or tar) and a `docker
// load` archive, written from a ContentStore.
//
// index.json lists the image once per name, annotated as BuildKit does:
// io.containerd.image.name = the normalized name ("docker.io/library/app:1"),
// org.opencontainers.image.ref.name = its tag ("1"), so `skopeo ... oci:DIR:1`
// and containerd's importer both find it. The docker archive is the same layout
// plus Docker's manifest.json ({Config, RepoTags, Layers} pointing into
// blobs/sha256/, RepoTags in Docker's short form), the form Docker 25+ writes
// and `docker load`, `podman load` and skopeo's docker-archive: transport read.
// Layers stay compressed; all of those readers detect the compression.
//
// Tars are deterministic: sorted entries, mtime 0, uid/gid 0, modes 0644/0755.
#ifndef LONGSHORE_IMAGE_OCI_LAYOUT_H_
#define LONGSHORE_IMAGE_OCI_LAYOUT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "image/content_store.h"
#include "image/oci.h"

namespace longshore::image {

struct ImageExport {
  // The image manifest (or an index of manifests) to export.
  Descriptor manifest;
  // Full or short references ("app:1", "registry.example/team/app:1"); may be
  // empty.
  std::vector<std::string> names;
};

// Writes an OCI image layout into `dir` (created if missing; an existing
// index.json and oci-layout are replaced, existing blobs kept).
absl::Status WriteOciLayoutDir(ContentStore& store, const ImageExport& image,
                               const std::string& dir);
// The same layout as a tar stream on `fd` (not closed).
absl::Status WriteOciLayoutTar(ContentStore& store, const ImageExport& image,
                               int fd);
// A `docker load` tarball on `fd` (not closed). Needs an image manifest, not an
// index, and at least one name with a tag to be loaded under a name.
absl::Status WriteDockerArchive(ContentStore& store, const ImageExport& image,
                                int fd);

// Convenience: create/truncate `path` and write the tar into it atomically.
absl::Status WriteOciLayoutTarFile(ContentStore& store,
                                   const ImageExport& image,
                                   const std::string& path);
absl::Status WriteDockerArchiveFile(ContentStore& store,
                                    const ImageExport& image,
                                    const std::string& path);

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_OCI_LAYOUT_H_
