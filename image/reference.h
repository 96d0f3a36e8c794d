// Image references as Docker normalizes them: "python:3" is
// "docker.io/library/python:3", "localhost:5000/app" keeps its registry, a
// reference without tag or digest means ":latest".
#ifndef LONGSHORE_IMAGE_REFERENCE_H_
#define LONGSHORE_IMAGE_REFERENCE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::image {

struct Reference {
  std::string registry;    // "docker.io", "localhost:5000", "ghcr.io"
  std::string repository;  // "library/python", "team/app"
  std::string tag;         // empty when only a digest was given
  std::string digest;      // "sha256:<hex>" or empty

  // "docker.io/library/python:3" (plus "@digest" when pinned).
  std::string Normalized() const;
  // Docker's short form: "python:3", "user/app:1", "localhost:5000/app:latest".
  std::string Familiar() const;
  // "docker.io/library/python" without tag or digest.
  std::string Name() const;
};

// Parses and normalizes; InvalidArgument says what is wrong with `text`.
absl::StatusOr<Reference> ParseReference(absl::string_view text);

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_REFERENCE_H_
