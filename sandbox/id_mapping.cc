#include "sandbox/id_mapping.h"

#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace longshore::sandbox {

absl::StatusOr<SubordinateIdFile> SubordinateIdFile::Load(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return Parse(text);
}

SubordinateIdFile SubordinateIdFile::Parse(absl::string_view text) {
  SubordinateIdFile file;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ':');
    if (fields.size() != 3 || fields[0].empty()) continue;
    Entry e;
    e.owner = std::string(fields[0]);
    if (!absl::SimpleAtoi(fields[1], &e.range.start) ||
        !absl::SimpleAtoi(fields[2], &e.range.count) || e.range.count == 0) {
      continue;
    }
    // A range that wraps past the largest id is unusable.
    if (static_cast<uint64_t>(e.range.start) + e.range.count >
        std::numeric_limits<uint32_t>::max()) {
      continue;
    }
    file.entries_.push_back(std::move(e));
  }
  return file;
}

std::vector<SubordinateRange> SubordinateIdFile::RangesFor(
    absl::string_view name, uint32_t id) const {
  const std::string id_text = absl::StrCat(id);
  std::vector<SubordinateRange> out;
  for (const Entry& e : entries_) {
    if ((!name.empty() && e.owner == name) || e.owner == id_text) {
      out.push_back(e.range);
    }
  }
  return out;
}

absl::StatusOr<SubordinateRange> SubordinateIdFile::FirstRangeFor(
    absl::string_view name, uint32_t id, uint32_t min_count) const {
  for (const SubordinateRange& r : RangesFor(name, id)) {
    if (r.count >= min_count) return r;
  }
  return absl::NotFoundError(absl::StrCat("no subordinate range of at least ",
                                          min_count, " ids for ", name, " (",
                                          id, ")"));
}

std::string FormatIdMap(const std::vector<IdMapExtent>& extents) {
  std::string out;
  for (const IdMapExtent& e : extents) {
    absl::StrAppend(&out, e.inside, " ", e.outside, " ", e.count, "\n");
  }
  return out;
}

absl::StatusOr<std::vector<IdMapExtent>> ParseIdMap(absl::string_view text) {
  std::vector<IdMapExtent> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    IdMapExtent e;
    if (f.size() != 3 || !absl::SimpleAtoi(f[0], &e.inside) ||
        !absl::SimpleAtoi(f[1], &e.outside) ||
        !absl::SimpleAtoi(f[2], &e.count)) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed id map line: '", line, "'"));
    }
    out.push_back(e);
  }
  return out;
}

bool IsInitialIdMap(const std::vector<IdMapExtent>& extents) {
  return extents.size() == 1 && extents[0].inside == 0 &&
         extents[0].outside == 0 &&
         extents[0].count == std::numeric_limits<uint32_t>::max();
}

uint32_t ContiguousIdsFromZero(const std::vector<IdMapExtent>& extents) {
  uint64_t next = 0;
  bool grew = true;
  while (grew) {
    grew = false;
    for (const IdMapExtent& e : extents) {
      if (e.inside == next && e.count > 0) {
        next += e.count;
        grew = true;
      }
    }
    if (next >= std::numeric_limits<uint32_t>::max()) break;
  }
  return static_cast<uint32_t>(
      std::min<uint64_t>(next, std::numeric_limits<uint32_t>::max()));
}

}  // namespace longshore::sandbox
