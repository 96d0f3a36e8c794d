// Workers known to the scheduler: their registration, connection, heartbeat,
// drain flag and the build leases they hold. A worker id survives reconnects
// (its drain flag with it); each Connect stream is one "connection", and
// messages from a connection that has been superseded or expired are not
// attributed to the worker any more. Not thread-safe; the coordinator
// serializes access.
#ifndef LONGSHORE_SCHEDULER_WORKER_REGISTRY_H_
#define LONGSHORE_SCHEDULER_WORKER_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "proto/longshore.pb.h"
#include "scheduler/placement.h"

namespace longshore::scheduler {

// The scheduler's side of one worker's Connect stream.
class WorkerChannel {
 public:
  virtual ~WorkerChannel() = default;
  // Queues a message for the worker; never blocks on the network.
  virtual void Send(const longshore::v1::SchedulerMessage& message) = 0;
  // Ends the stream from the scheduler's side (the worker lost its leases).
  virtual void Close() = 0;
};

struct WorkerEntry {
  std::string id;
  int slots = 0;
  std::vector<longshore::v1::KeyValue> labels;
  std::string version;
  std::string platform;  // what it builds for, e.g. "linux/amd64"
  // The authenticated name that registered it (certificate or token); empty
  // when the scheduler is open.
  std::string identity;
  bool draining = false;
  bool connected = false;
  uint64_t connection = 0;  // Current connection; 0 when disconnected.
  std::shared_ptr<WorkerChannel> channel;
  absl::Time last_heartbeat = absl::InfinitePast();
  absl::Time disconnected_at = absl::InfinitePast();
  // Build id -> attempt, for every build leased to this worker.
  std::map<std::string, int> leases;
  // Affinity keys of its recent builds, from its heartbeats.
  absl::flat_hash_set<uint64_t> warm_keys;  // AffinityHash of each

  int free_slots() const { return slots - static_cast<int>(leases.size()); }
};

struct WorkerCounts {
  int idle = 0;      // Connected, accepting, no builds.
  int busy = 0;      // Connected, accepting, at least one build.
  int draining = 0;  // Connected and draining.
  // Slots of connected workers: leased, and free on accepting workers.
  int slots_busy = 0;
  int slots_free = 0;
};

class WorkerRegistry {
 public:
  struct Registration {
    uint64_t connection = 0;
    // When the id was connected already, the earlier connection is superseded:
    // its channel (to close) and its leases (to interrupt) are handed back.
    std::shared_ptr<WorkerChannel> superseded_channel;
    std::map<std::string, int> superseded_leases;
  };

  Registration Register(const longshore::v1::Register& reg,
                        std::shared_ptr<WorkerChannel> channel, absl::Time now);

  // The worker whose current connection is `connection`, or null.
  WorkerEntry* ByConnection(uint64_t connection);
  WorkerEntry* Find(const std::string& worker_id);

  // Marks the worker of `connection` disconnected and returns its leases (empty
  // when the connection is not current). The channel is dropped, not closed.
  std::map<std::string, int> Disconnect(uint64_t connection, absl::Time now);

  // Connections whose last heartbeat is older than `now - lease`.
  std::vector<uint64_t> ExpiredConnections(absl::Time now,
                                           absl::Duration lease) const;

  // Drops disconnected workers that have been gone since before `cutoff`.
  void ForgetDisconnectedBefore(absl::Time cutoff);

  std::vector<WorkerCapacity> Capacities() const;
  WorkerCounts Counts() const;
  std::vector<const WorkerEntry*> All() const;

 private:
  std::map<std::string, WorkerEntry>
      workers_;  // By id, so listings are sorted.
  std::map<uint64_t, std::string> by_connection_;
  uint64_t next_connection_ = 1;
};

// The wire form of a worker for AdminService.
longshore::v1::WorkerInfo ToWorkerInfo(const WorkerEntry& worker);

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_WORKER_REGISTRY_H_
