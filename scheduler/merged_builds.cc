#include "scheduler/merged_builds.h"

#include <algorithm>
#include <string>

#include "common/sha256.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace longshore::scheduler {

absl::uint128 MergedBuilds::Key(const longshore::v1::BuildSpec& spec) {
  longshore::v1::BuildSpec copy = spec;
  for (auto& output : *copy.mutable_outputs()) output.clear_dest();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    copy.SerializeToCodedStream(&coded);
  }
  // "sha256:" then lower-case hex: the first 32 digits are the first 128 bits.
  const std::string digest = Sha256Digest(bytes);
  auto nibble = [](char c) -> uint64_t {
    return c <= '9' ? static_cast<uint64_t>(c - '0')
                    : static_cast<uint64_t>(c - 'a' + 10);
  };
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 16; ++i) {
    hi = (hi << 4) | nibble(digest[7 + i]);
    lo = (lo << 4) | nibble(digest[7 + 16 + i]);
  }
  absl::uint128 key = absl::MakeUint128(hi, lo);
  return key == 0 ? 1 : key;
}

std::string MergedBuilds::Leader(absl::uint128 key) const {
  auto it = leader_by_key_.find(key);
  return it == leader_by_key_.end() ? "" : it->second;
}

void MergedBuilds::StartExecution(absl::uint128 key,
                                  const std::string& leader) {
  leader_by_key_[key] = leader;
}

void MergedBuilds::AddFollower(const std::string& leader,
                               const std::string& follower) {
  followers_[leader].push_back(follower);
  leader_of_[follower] = leader;
}

std::vector<std::string> MergedBuilds::Followers(
    const std::string& leader) const {
  auto it = followers_.find(leader);
  return it == followers_.end() ? std::vector<std::string>() : it->second;
}

std::string MergedBuilds::LeaderOf(const std::string& follower) const {
  auto it = leader_of_.find(follower);
  return it == leader_of_.end() ? "" : it->second;
}

void MergedBuilds::Detach(const std::string& follower) {
  auto it = leader_of_.find(follower);
  if (it == leader_of_.end()) return;
  auto list = followers_.find(it->second);
  if (list != followers_.end()) {
    auto& v = list->second;
    v.erase(std::remove(v.begin(), v.end(), follower), v.end());
    if (v.empty()) followers_.erase(list);
  }
  leader_of_.erase(it);
}

void MergedBuilds::CancelView(const std::string& leader, absl::uint128 key,
                              const std::string& reason) {
  view_cancelled_[leader] = reason;
  // Nobody new joins an execution whose own submitter gave it up.
  auto it = leader_by_key_.find(key);
  if (it != leader_by_key_.end() && it->second == leader) {
    leader_by_key_.erase(it);
  }
}

bool MergedBuilds::ViewCancelled(const std::string& leader) const {
  return view_cancelled_.contains(leader);
}

std::string MergedBuilds::ViewCancelReason(const std::string& leader) const {
  auto it = view_cancelled_.find(leader);
  return it == view_cancelled_.end() ? "" : it->second;
}

std::vector<std::string> MergedBuilds::EndExecution(const std::string& leader,
                                                    absl::uint128 key) {
  std::vector<std::string> followers = Followers(leader);
  for (const std::string& f : followers) leader_of_.erase(f);
  followers_.erase(leader);
  view_cancelled_.erase(leader);
  auto it = leader_by_key_.find(key);
  if (it != leader_by_key_.end() && it->second == leader) {
    leader_by_key_.erase(it);
  }
  return followers;
}

}  // namespace longshore::scheduler
