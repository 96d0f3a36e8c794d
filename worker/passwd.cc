#include "worker/passwd.h"

#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/errno_status.h"
#include "common/status_macros.h"
#include "worker/in_root.h"

namespace longshore::worker {
namespace {

// /etc/passwd or /etc/group of the image; empty when the file is missing.
std::string ReadInRoot(int root_fd, const std::string& path) {
  auto fd = OpenInRoot(root_fd, path, O_RDONLY);
  if (!fd.ok()) return "";
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd->get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, n);
    if (out.size() > (16 << 20)) break;  // a hostile image's giant file
  }
  return out;
}

}  // namespace

absl::StatusOr<std::pair<uid_t, gid_t>> LookupPasswd(
    absl::string_view passwd, absl::string_view name_or_uid) {
  uint32_t want_uid = 0;
  bool numeric = absl::SimpleAtoi(name_or_uid, &want_uid);
  for (absl::string_view line : absl::StrSplit(passwd, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() < 4) continue;
    uint32_t uid, gid;
    if (!absl::SimpleAtoi(f[2], &uid) || !absl::SimpleAtoi(f[3], &gid)) {
      continue;
    }
    if ((numeric && uid == want_uid) || (!numeric && f[0] == name_or_uid)) {
      return std::make_pair(static_cast<uid_t>(uid), static_cast<gid_t>(gid));
    }
  }
  return absl::NotFoundError(absl::StrCat("user ", name_or_uid));
}

absl::StatusOr<gid_t> LookupGroup(absl::string_view group,
                                  absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(group, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() < 3) continue;
    uint32_t gid;
    if (f[0] == name && absl::SimpleAtoi(f[2], &gid)) {
      return static_cast<gid_t>(gid);
    }
  }
  return absl::NotFoundError(absl::StrCat("group ", name));
}

absl::StatusOr<UserSpec> ResolveUser(int root_fd, const std::string& spec) {
  std::vector<std::string> parts =
      absl::StrSplit(spec, absl::MaxSplits(':', 1));
  const std::string& user = parts[0];
  if (user.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("user \"", spec, "\": empty name"));
  }
  UserSpec out;
  uint32_t n = 0;
  std::string passwd;
  if (absl::SimpleAtoi(user, &n)) {
    out.uid = n;
    passwd = ReadInRoot(root_fd, "/etc/passwd");
    auto entry = LookupPasswd(passwd, user);
    out.gid = entry.ok() ? entry->second : 0;
  } else {
    passwd = ReadInRoot(root_fd, "/etc/passwd");
    auto entry = LookupPasswd(passwd, user);
    if (!entry.ok()) {
      return absl::NotFoundError(
          absl::StrCat("unable to find user ", user,
                       ": no matching entries in passwd file"));
    }
    out.uid = entry->first;
    out.gid = entry->second;
  }
  if (parts.size() == 2) {
    const std::string& group = parts[1];
    out.group_given = true;
    if (absl::SimpleAtoi(group, &n)) {
      out.gid = n;
    } else {
      auto g = LookupGroup(ReadInRoot(root_fd, "/etc/group"), group);
      if (!g.ok()) {
        return absl::NotFoundError(
            absl::StrCat("unable to find group ", group,
                         ": no matching entries in group file"));
      }
      out.gid = *g;
    }
  }
  return out;
}

}  // namespace longshore::worker
