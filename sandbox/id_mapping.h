// Subordinate id ranges (/etc/subuid, /etc/subgid) and the maps written to
// /proc/PID/uid_map and gid_map.
#ifndef LONGSHORE_SANDBOX_ID_MAPPING_H_
#define LONGSHORE_SANDBOX_ID_MAPPING_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::sandbox {

// One line of a uid_map/gid_map: ids [inside, inside+count) of the new
// namespace are ids [outside, outside+count) of its parent.
struct IdMapExtent {
  uint32_t inside = 0;
  uint32_t outside = 0;
  uint32_t count = 0;
  bool operator==(const IdMapExtent& o) const {
    return inside == o.inside && outside == o.outside && count == o.count;
  }
};

// A subordinate range from /etc/subuid or /etc/subgid: `owner:start:count`.
struct SubordinateRange {
  uint32_t start = 0;
  uint32_t count = 0;
};

// The ranges of /etc/subuid or /etc/subgid. Lines name their owner either by
// name or by numeric id (shadow accepts both); comments and malformed lines are
// skipped, as newuidmap does.
class SubordinateIdFile {
 public:
  static absl::StatusOr<SubordinateIdFile> Load(const std::string& path);
  static SubordinateIdFile Parse(absl::string_view text);

  // Every range whose owner field is `name` or the decimal `id`, in file order.
  std::vector<SubordinateRange> RangesFor(absl::string_view name,
                                          uint32_t id) const;
  // The first range of at least `min_count` ids, or NotFound.
  absl::StatusOr<SubordinateRange> FirstRangeFor(absl::string_view name,
                                                 uint32_t id,
                                                 uint32_t min_count) const;

 private:
  struct Entry {
    std::string owner;
    SubordinateRange range;
  };
  std::vector<Entry> entries_;
};

// The text of a uid_map/gid_map file for `extents` ("inside outside
// count\n"...).
std::string FormatIdMap(const std::vector<IdMapExtent>& extents);
// Parses /proc/PID/uid_map text.
absl::StatusOr<std::vector<IdMapExtent>> ParseIdMap(absl::string_view text);
// True when `extents` is the initial namespace's identity map of all ids.
bool IsInitialIdMap(const std::vector<IdMapExtent>& extents);
// How many ids, counting up from 0, the map makes valid inside (0 if 0 is
// unmapped).
uint32_t ContiguousIdsFromZero(const std::vector<IdMapExtent>& extents);

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_ID_MAPPING_H_
