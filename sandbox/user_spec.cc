#include "sandbox/user_spec.h"

#include <algorithm>
#include <limits>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace longshore::sandbox {
namespace {

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

// Ids are 32-bit; (uint32_t)-1 is reserved by the kernel as "no change".
bool ParseId(absl::string_view text, uint32_t* out) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), absl::ascii_isdigit)) {
    return false;
  }
  uint64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) ||
      v >= std::numeric_limits<uint32_t>::max()) {
    return false;
  }
  *out = static_cast<uint32_t>(v);
  return true;
}

std::vector<PasswdEntry> ParsePasswd(absl::string_view text) {
  std::vector<PasswdEntry> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() < 4 || f[0].empty()) continue;
    PasswdEntry e;
    e.name = std::string(f[0]);
    if (!ParseId(f[2], &e.uid) || !ParseId(f[3], &e.gid)) continue;
    if (f.size() >= 6) e.home = std::string(f[5]);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<GroupEntry> ParseGroup(absl::string_view text) {
  std::vector<GroupEntry> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() < 3 || f[0].empty()) continue;
    GroupEntry e;
    e.name = std::string(f[0]);
    if (!ParseId(f[2], &e.gid)) continue;
    if (f.size() >= 4) {
      for (absl::string_view m : absl::StrSplit(f[3], ',', absl::SkipEmpty())) {
        e.members.emplace_back(absl::StripAsciiWhitespace(m));
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

absl::StatusOr<ResolvedUser> ResolveUser(absl::string_view spec,
                                         absl::string_view passwd,
                                         absl::string_view group) {
  if (spec.empty()) spec = "0";
  absl::string_view user_part = spec;
  std::optional<absl::string_view> group_part;
  if (size_t colon = spec.find(':'); colon != absl::string_view::npos) {
    user_part = spec.substr(0, colon);
    group_part = spec.substr(colon + 1);
    if (group_part->empty() ||
        group_part->find(':') != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("user '", spec, "': expected user[:group]"));
    }
  }
  if (user_part.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("user '", spec, "': empty user"));
  }
  const std::vector<PasswdEntry> users = ParsePasswd(passwd);
  const std::vector<GroupEntry> groups = ParseGroup(group);

  ResolvedUser out;
  out.home = "/";
  uint32_t uid = 0;
  const PasswdEntry* entry = nullptr;
  if (ParseId(user_part, &uid)) {
    for (const PasswdEntry& e : users) {
      if (e.uid == uid) {
        entry = &e;
        break;
      }
    }
    out.uid = uid;
    out.gid = entry != nullptr ? entry->gid : 0;
  } else {
    for (const PasswdEntry& e : users) {
      if (e.name == user_part) {
        entry = &e;
        break;
      }
    }
    if (entry == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("user '", user_part, "' not found in /etc/passwd"));
    }
    out.uid = entry->uid;
    out.gid = entry->gid;
  }
  if (entry != nullptr) {
    out.name = entry->name;
    if (!entry->home.empty()) out.home = entry->home;
  }

  if (group_part.has_value()) {
    uint32_t gid = 0;
    if (ParseId(*group_part, &gid)) {
      out.gid = gid;
    } else {
      const GroupEntry* g = nullptr;
      for (const GroupEntry& e : groups) {
        if (e.name == *group_part) {
          g = &e;
          break;
        }
      }
      if (g == nullptr) {
        return absl::NotFoundError(
            absl::StrCat("group '", *group_part, "' not found in /etc/group"));
      }
      out.gid = g->gid;
    }
    return out;
  }
  if (!out.name.empty()) {
    for (const GroupEntry& g : groups) {
      if (std::find(g.members.begin(), g.members.end(), out.name) !=
              g.members.end() &&
          std::find(out.groups.begin(), out.groups.end(), g.gid) ==
              out.groups.end()) {
        out.groups.push_back(g.gid);
      }
    }
  }
  return out;
}

}  // namespace longshore::sandbox
