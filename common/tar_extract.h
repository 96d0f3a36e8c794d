// Extraction of a plain tar (a build context, an OCI layout) into a directory,
// confined to it. Image layers have their own extractor in image/layer_apply,
// which also handles whiteouts and ownership.
#ifndef LONGSHORE_COMMON_TAR_EXTRACT_H_
#define LONGSHORE_COMMON_TAR_EXTRACT_H_

#include <string>

#include "absl/status/status.h"

namespace longshore {

// Extracts `tar_path` into the existing directory `dir`, keeping modes and
// mtimes. Refuses absolute paths, `..` components and writes through symlinks.
// `what` names the tar in errors ("context", "output").
// With `compressed`, a gzip, bzip2, xz or zstd tar is read too (a context
// piped to `longshore build -`, as docker accepts it).
absl::Status ExtractTarConfined(const std::string& tar_path,
                                const std::string& dir, const std::string& what,
                                bool compressed = false);

}  // namespace longshore

#endif  // LONGSHORE_COMMON_TAR_EXTRACT_H_
