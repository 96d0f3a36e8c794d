#include "scheduler/worker_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace longshore::scheduler {

WorkerRegistry::Registration WorkerRegistry::Register(
    const longshore::v1::Register& reg, std::shared_ptr<WorkerChannel> channel,
    absl::Time now) {
  Registration out;
  WorkerEntry& w = workers_[reg.worker_id()];
  if (w.connected) {
    by_connection_.erase(w.connection);
    out.superseded_channel = std::move(w.channel);
    out.superseded_leases = std::move(w.leases);
    w.leases.clear();
  }
  w.id = reg.worker_id();
  w.slots = reg.slots();
  w.labels.assign(reg.labels().begin(), reg.labels().end());
  w.version = reg.version();
  w.platform = reg.platform();
  w.connected = true;
  w.connection = next_connection_++;
  w.channel = std::move(channel);
  w.last_heartbeat = now;
  by_connection_[w.connection] = w.id;
  out.connection = w.connection;
  return out;
}

WorkerEntry* WorkerRegistry::ByConnection(uint64_t connection) {
  auto it = by_connection_.find(connection);
  if (it == by_connection_.end()) return nullptr;
  return Find(it->second);
}

WorkerEntry* WorkerRegistry::Find(const std::string& worker_id) {
  auto it = workers_.find(worker_id);
  return it == workers_.end() ? nullptr : &it->second;
}

std::map<std::string, int> WorkerRegistry::Disconnect(uint64_t connection,
                                                      absl::Time now) {
  WorkerEntry* w = ByConnection(connection);
  if (w == nullptr) return {};
  by_connection_.erase(connection);
  w->connected = false;
  w->connection = 0;
  w->channel.reset();
  w->disconnected_at = now;
  std::map<std::string, int> leases = std::move(w->leases);
  w->leases.clear();
  return leases;
}

std::vector<uint64_t> WorkerRegistry::ExpiredConnections(
    absl::Time now, absl::Duration lease) const {
  std::vector<uint64_t> out;
  for (const auto& [id, w] : workers_) {
    if (w.connected && w.last_heartbeat + lease < now) {
      out.push_back(w.connection);
    }
  }
  return out;
}

void WorkerRegistry::ForgetDisconnectedBefore(absl::Time cutoff) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (!it->second.connected && it->second.disconnected_at < cutoff) {
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<WorkerCapacity> WorkerRegistry::Capacities() const {
  std::vector<WorkerCapacity> out;
  for (const auto& [id, w] : workers_) {
    WorkerCapacity c{id, w.free_slots(), w.connected && !w.draining,
                     w.platform};
    c.slots = w.slots;
    c.warm = &w.warm_keys;
    for (const auto& kv : w.labels) {
      c.labels.push_back(absl::StrCat(kv.key(), "=", kv.value()));
    }
    out.push_back(std::move(c));
  }
  return out;
}

WorkerCounts WorkerRegistry::Counts() const {
  WorkerCounts counts;
  for (const auto& [id, w] : workers_) {
    if (!w.connected) continue;
    counts.slots_busy += static_cast<int>(w.leases.size());
    if (!w.draining) counts.slots_free += std::max(0, w.free_slots());
    if (w.draining) {
      ++counts.draining;
    } else if (w.leases.empty()) {
      ++counts.idle;
    } else {
      ++counts.busy;
    }
  }
  return counts;
}

std::vector<const WorkerEntry*> WorkerRegistry::All() const {
  std::vector<const WorkerEntry*> out;
  for (const auto& [id, w] : workers_) out.push_back(&w);
  return out;
}

longshore::v1::WorkerInfo ToWorkerInfo(const WorkerEntry& w) {
  longshore::v1::WorkerInfo info;
  info.set_worker_id(w.id);
  info.set_slots(w.slots);
  info.set_free_slots(w.connected ? w.free_slots() : 0);
  info.set_draining(w.draining);
  info.set_connected(w.connected);
  for (const auto& [build_id, attempt] : w.leases) {
    info.add_running_build_ids(build_id);
  }
  for (const auto& kv : w.labels) *info.add_labels() = kv;
  info.set_platform(w.platform);
  if (w.last_heartbeat != absl::InfinitePast()) {
    info.set_last_heartbeat_unix_nanos(absl::ToUnixNanos(w.last_heartbeat));
  }
  return info;
}

}  // namespace longshore::scheduler
