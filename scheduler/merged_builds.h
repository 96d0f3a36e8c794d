// Identical submissions in flight share one execution. A build submitted while
// another of the same submitter with the same inputs is queued or running
// becomes a follower of that leader: it is never queued or leased itself; it
// gets every event of the leader's execution (those before it joined
// included), the leader's outputs and its result. Cancelling a follower
// detaches it alone; cancelling a leader that has followers ends only the
// leader's own view (its stream says CANCELLED) while the execution goes on
// for the followers. Bookkeeping only: the coordinator acts on it.
#ifndef LONGSHORE_SCHEDULER_MERGED_BUILDS_H_
#define LONGSHORE_SCHEDULER_MERGED_BUILDS_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/numeric/int128.h"
#include "proto/longshore.pb.h"

namespace longshore::scheduler {

class MergedBuilds {
 public:
  // What makes two submissions the same execution: every field of the spec
  // a worker acts on (submitter, context digest, Dockerfile, build args,
  // target, platform, tags, output types, cache settings, labels, worker
  // labels, timeout) and the secrets' values, hashed (the first 128 bits of
  // their SHA-256: a chance collision among builds in flight is out of
  // reach). Output destinations are paths on the client and are left out.
  // The key lives in memory only; never 0.
  static absl::uint128 Key(const longshore::v1::BuildSpec& spec);

  // The build executing `key` for others to join, or "" when none.
  std::string Leader(absl::uint128 key) const;
  void StartExecution(absl::uint128 key, const std::string& leader);
  void AddFollower(const std::string& leader, const std::string& follower);
  std::vector<std::string> Followers(const std::string& leader) const;
  // The leader a follower shares, or "".
  std::string LeaderOf(const std::string& follower) const;
  // The follower leaves its leader's execution.
  void Detach(const std::string& follower);
  // The leader's own view is cancelled; its execution goes on for followers
  // and takes no new ones.
  void CancelView(const std::string& leader, absl::uint128 key,
                  const std::string& reason);
  bool ViewCancelled(const std::string& leader) const;
  std::string ViewCancelReason(const std::string& leader) const;
  // The execution ended (or was never shared): forgets it; returns the
  // followers that were still attached.
  std::vector<std::string> EndExecution(const std::string& leader,
                                        absl::uint128 key);

 private:
  // Every build in flight is a possible leader: 16 bytes of key each here,
  // the key itself kept in its BuildRecord.
  absl::flat_hash_map<absl::uint128, std::string> leader_by_key_;
  absl::flat_hash_map<std::string, std::vector<std::string>> followers_;
  absl::flat_hash_map<std::string, std::string> leader_of_;
  absl::flat_hash_map<std::string, std::string> view_cancelled_;  // reason
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_MERGED_BUILDS_H_
