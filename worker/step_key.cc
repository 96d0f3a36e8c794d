// What a step's cache key covers: its parent's key, the expanded
// instruction and everything its result depends on; for COPY/ADD, the sources'
// contents.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "worker/build_run.h"
#include "worker/copy_files.h"

namespace longshore::worker {
namespace build_internal {

std::string KeyOf(const std::vector<std::string>& parts) {
  Sha256 h;
  for (const auto& p : parts) {
    h.Update(p);
    h.Update("\0", 1);
  }
  return h.Digest();
}

absl::StatusOr<std::string> BuildRun::StepKey(
    const dockerfile::ExpandedStep& step, const StageResult& r) {
  // The key covers the parent, the expanded instruction and everything the
  // step's result depends on.
  std::vector<std::string> parts{r.cache_key, step.cache_text};
  switch (step.kind) {
    case dockerfile::ExpandedStep::kRun:
      parts.push_back("run");
      parts.push_back(absl::StrJoin(step.run.argv, "\x1f"));
      parts.push_back(absl::StrJoin(step.run.env, "\x1f"));
      parts.push_back(step.run.user);
      parts.push_back(step.run.workdir);
      // The network the build asked for (not the worker's default, which
      // would split the cache between workers): the step's own, else the
      // build's --network.
      parts.push_back(step.run.network.empty() ? req_.spec.network()
                                               : step.run.network);
      if (step.run.security == "insecure") parts.push_back("insecure");
      // What the step's environment is made of besides its root, when set
      // (as BuildKit's exec op covers extra hosts, ulimits and shm size).
      if (req_.spec.add_hosts_size() > 0 || req_.spec.ulimits_size() > 0 ||
          req_.spec.shm_size() > 0) {
        parts.push_back(
            absl::StrCat("hosts=", absl::StrJoin(req_.spec.add_hosts(), ","),
                         ";ulimits=", absl::StrJoin(req_.spec.ulimits(), ","),
                         ";shm=", req_.spec.shm_size()));
      }
      break;
    case dockerfile::ExpandedStep::kCopy: {
      parts.push_back(step.copy.add ? "add" : "copy");
      parts.push_back(step.copy.dest);
      parts.push_back(step.copy.chown);
      parts.push_back(step.copy.chmod);
      auto sum = SourceChecksum(step.copy, r);
      if (!sum.ok()) return sum.status();
      parts.push_back(*sum);
      break;
    }
    case dockerfile::ExpandedStep::kWorkdir:
      parts.push_back("workdir");
      parts.push_back(step.workdir);
      parts.push_back(r.config.user);
      break;
    default:
      break;
  }
  return KeyOf(parts);
}

absl::StatusOr<std::string> BuildRun::SourceChecksum(
    const dockerfile::CopyStep& c, const StageResult& r) {
  ASSIGN_OR_RETURN(std::vector<std::string> local, LocalSources(c));
  Sha256 h;
  for (const auto& f : c.inline_files) {
    h.Update(f.name);
    h.Update("\0", 1);
    h.Update(f.content);
  }
  // A URL counts by what it served (downloaded on every build, as Docker
  // does), with the name and date the file will get.
  for (const auto& src : c.sources) {
    if (!c.add || !IsUrlSource(src)) continue;
    ASSIGN_OR_RETURN(FetchedUrl f, Fetch(src));
    if (!c.checksum.empty() && c.checksum != f.digest) {
      return absl::InvalidArgumentError(
          absl::StrCat("ADD --checksum=", c.checksum, ": ", src,
                       " served content with digest ", f.digest));
    }
    h.Update(absl::StrCat("url\n", src, "\n", f.digest, "\n", f.file_name, "\n",
                          f.last_modified.value_or(-1), "\n"));
  }
  if (local.empty()) return h.Digest();
  std::string mount_dir = absl::StrCat(tmp_, "/sum-", ++mounts_);
  ASSIGN_OR_RETURN(SourceRoot src, OpenSource(c, mount_dir));
  auto sum = ChecksumSources(src.fd.get(), local);
  if (!sum.ok()) {
    return absl::Status(sum.status().code(),
                        absl::StrCat(c.add ? "ADD" : "COPY",
                                     " failed: ", sum.status().message()));
  }
  h.Update(*sum);
  return h.Digest();
}

}  // namespace build_internal
}  // namespace longshore::worker
