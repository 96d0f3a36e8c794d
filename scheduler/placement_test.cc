#include "scheduler/placement.h"

#include <memory>

#include "gtest/gtest.h"
#include "scheduler/build_queue.h"
#include "scheduler/worker_registry.h"

namespace longshore::scheduler {
namespace {

std::vector<QueuedBuild> Queue(int n) {
  BuildQueue q;
  // Pushed out of order on purpose: the queue orders by submission order.
  for (int i = n; i >= 1; --i) q.Push({"b" + std::to_string(i), "", i, 0});
  return q.Entries();
}

TEST(BuildQueueTest, OrdersBySubmissionAndReportsPositions) {
  BuildQueue q;
  q.Push({"late", "", 9, 0});
  q.Push({"early", "", 2, 0});
  q.Push({"mid", "", 5, 0});
  EXPECT_EQ(q.Position("early"), 1);
  EXPECT_EQ(q.Position("mid"), 2);
  EXPECT_EQ(q.Position("late"), 3);
  EXPECT_EQ(q.Position("absent"), 0);
  EXPECT_TRUE(q.Remove("mid"));
  EXPECT_FALSE(q.Remove("mid"));
  EXPECT_EQ(q.Position("late"), 2);
  EXPECT_EQ(q.size(), 2u);
}

TEST(BuildQueueTest, LanesPerSubmitterAndPlatformWithCounts) {
  BuildQueue q;
  q.Push({"a1", "team-a", 1, 0, ""});
  q.Push({"b1", "team-b", 2, 0, "linux/arm64"});
  q.Push({"a2", "team-a", 3, 0, "linux/arm64"});
  q.Push({"a3", "team-a", 4, 0, ""});
  EXPECT_EQ(q.lanes().size(), 3u);
  EXPECT_EQ(q.CountOf("team-a"), 3u);
  EXPECT_EQ(q.CountOf("team-b"), 1u);
  EXPECT_EQ(q.Position("a3"), 4);
  // Queued again at its original order: ahead of later submissions.
  EXPECT_TRUE(q.Remove("a1"));
  EXPECT_EQ(q.Position("b1"), 1);
  q.Push({"a1", "team-a", 1, 5, ""});
  EXPECT_EQ(q.Position("a1"), 1);
  EXPECT_EQ(q.Position("b1"), 2);
  EXPECT_TRUE(q.Remove("b1"));
  EXPECT_EQ(q.lanes().size(), 2u);  // An emptied lane goes away.
  EXPECT_EQ(q.CountOf("team-b"), 0u);
  std::vector<QueuedBuild> all = q.Entries();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].build_id, "a1");
  EXPECT_EQ(all[2].build_id, "a3");
}

TEST(BuildQueueTest, PositionsStayExactAtScale) {
  BuildQueue q;
  for (int i = 1; i <= 20000; ++i) {
    q.Push({"b" + std::to_string(i), "s" + std::to_string(i % 7), i, 0});
  }
  for (int i = 1; i <= 20000; i += 2) q.Remove("b" + std::to_string(i));
  EXPECT_EQ(q.size(), 10000u);
  EXPECT_EQ(q.Position("b2"), 1);
  EXPECT_EQ(q.Position("b20000"), 10000);
  EXPECT_EQ(q.Position("b10000"), 5000);
}

TEST(PlacementTest, NeverExceedsFreeSlots) {
  Placement p;
  auto decisions = p.Place(Queue(5), {{"w1", 2, true}, {"w2", 1, true}});
  ASSERT_EQ(decisions.size(), 3u);
  int w1 = 0, w2 = 0;
  for (const auto& d : decisions) (d.worker_id == "w1" ? w1 : w2)++;
  EXPECT_EQ(w1, 2);
  EXPECT_EQ(w2, 1);
  // FIFO: the oldest three builds are the ones placed.
  EXPECT_EQ(decisions[0].build_id, "b1");
  EXPECT_EQ(decisions[1].build_id, "b2");
  EXPECT_EQ(decisions[2].build_id, "b3");
}

std::vector<QueuedBuild> Submitted(
    const std::vector<std::pair<std::string, std::string>>& builds) {
  std::vector<QueuedBuild> q;
  int64_t order = 0;
  for (const auto& [id, submitter] : builds) {
    QueuedBuild b;
    b.build_id = id;
    b.submitter = submitter;
    b.order = ++order;
    q.push_back(b);
  }
  return q;
}

TEST(PlacementTest, SharesSlotsBetweenSubmitters) {
  Placement p;
  // Team A queued three builds before team B's first one.
  auto queue = Submitted(
      {{"a1", "team-a"}, {"a2", "team-a"}, {"a3", "team-a"}, {"b1", "team-b"}});
  auto decisions = p.Place(queue, {{"w1", 2, true}});
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0].build_id, "a1");
  EXPECT_EQ(decisions[1].build_id, "b1");  // not a2

  // With A already running two builds, B's build goes first even though A's
  // are older; then the rest alternates, oldest first within each team.
  auto more = Submitted(
      {{"a4", "team-a"}, {"a5", "team-a"}, {"b2", "team-b"}, {"b3", "team-b"}});
  decisions = p.Place(more, {{"w1", 3, true}}, {{"team-a", {2, 1}}});
  ASSERT_EQ(decisions.size(), 3u);
  EXPECT_EQ(decisions[0].build_id, "b2");
  EXPECT_EQ(decisions[1].build_id, "b3");  // B: 1 running, A: 2
  EXPECT_EQ(decisions[2].build_id, "a4");  // B has nothing left
}

TEST(PlacementTest, EqualSharesTakeTurns) {
  Placement p;
  // Nothing running anywhere; A was served last, so B goes first although
  // A's build is older.
  auto queue = Submitted({{"a1", "team-a"}, {"b1", "team-b"}});
  auto decisions = p.Place(queue, {{"w1", 1, true}},
                           {{"team-a", {0, 7}}, {"team-b", {0, 3}}});
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0].build_id, "b1");
}

TEST(PlacementTest, BuildsGoToWorkersOfTheirPlatform) {
  Placement p;
  std::vector<QueuedBuild> queue =
      Submitted({{"arm", "team-a"}, {"any", "team-a"}, {"amd", "team-a"}});
  queue[0].platform = "linux/arm64";
  queue[2].platform = "linux/amd64";
  // Only amd64 room: the arm64 build waits, the ones behind it go.
  auto decisions = p.Place(queue, {{"x86", 2, true, "linux/amd64"}});
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0].build_id, "any");
  EXPECT_EQ(decisions[1].build_id, "amd");
  // An arm64 worker with room takes it, and only it.
  decisions = p.Place(
      queue, {{"x86", 0, true, "linux/amd64"}, {"pi", 3, true, "linux/arm64"}});
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0].build_id, "arm");
  EXPECT_EQ(decisions[0].worker_id, "pi");
  EXPECT_EQ(decisions[1].build_id, "any");
}

TEST(PlacementTest, BuildsGoToWorkersWithEveryLabelTheyRequire) {
  Placement p;
  std::vector<QueuedBuild> queue = Submitted({{"gpu", "a"}, {"any", "a"}});
  queue[0].labels = {"pool=gpu", "zone=eu"};
  WorkerCapacity plain{"plain", 4, true};
  WorkerCapacity half{"half", 4, true};
  half.labels = {"pool=gpu"};
  WorkerCapacity full{"full", 1, true};
  full.labels = {"zone=eu", "pool=gpu", "disk=ssd"};
  // Only "full" has both labels; the unlabelled build takes the roomiest.
  auto decisions = p.Place(queue, {plain, half, full});
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0].build_id, "gpu");
  EXPECT_EQ(decisions[0].worker_id, "full");
  EXPECT_EQ(decisions[0].reason, "label");
  EXPECT_EQ(decisions[1].build_id, "any");
  EXPECT_EQ(decisions[1].reason, "least_loaded");
  // Without a matching worker the labelled build waits; the rest goes on.
  decisions = p.Place(queue, {plain, half});
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0].build_id, "any");
}

TEST(PlacementTest, PrefersAWarmWorkerButNeverWaitsForOne) {
  Placement p;
  std::vector<QueuedBuild> queue = Submitted({{"rebuild", "a"}});
  queue[0].affinity = {AffinityHash("dockerfile:sha256:x"),
                       AffinityHash("from:base")};
  absl::flat_hash_set<uint64_t> built_it = {
      AffinityHash("dockerfile:sha256:x")};
  absl::flat_hash_set<uint64_t> pulled_base = {AffinityHash("from:base")};
  WorkerCapacity cold{"cold", 4, true};
  cold.slots = 4;
  WorkerCapacity base{"base", 2, true};
  base.slots = 4;
  base.warm = &pulled_base;
  WorkerCapacity warm{"warm", 1, true};
  warm.slots = 4;
  warm.warm = &built_it;
  // Warm for the Dockerfile beats warm for the base beats least loaded.
  auto d = p.Place(queue, {cold, base, warm});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].worker_id, "warm");
  EXPECT_EQ(d[0].reason, "dockerfile");
  d = p.Place(queue, {cold, base});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].worker_id, "base");
  EXPECT_EQ(d[0].reason, "base");
  // The warm worker is busy: an idle cold one takes it at once.
  warm.free_slots = 0;
  d = p.Place(queue, {warm, cold});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].worker_id, "cold");
  EXPECT_EQ(d[0].reason, "least_loaded");
}

TEST(PlacementTest, LeastLoadedByRatioAmongColdWorkers) {
  Placement p;
  WorkerCapacity big{"big", 3, true};  // 5 of 8 busy
  big.slots = 8;
  WorkerCapacity small{"small", 2, true};  // 0 of 2 busy
  small.slots = 2;
  auto d = p.Place(Queue(1), {big, small});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].worker_id, "small");
}

TEST(PlacementTest, PrefersTheWorkerWithMostRoom) {
  Placement p;
  auto decisions = p.Place(Queue(2), {{"small", 1, true}, {"big", 4, true}});
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0].worker_id, "big");
  EXPECT_EQ(decisions[1].worker_id, "big");
}

TEST(PlacementTest, SkipsDrainingAndFullWorkers) {
  Placement p;
  auto decisions = p.Place(
      Queue(3), {{"draining", 8, false}, {"full", 0, true}, {"open", 1, true}});
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0].worker_id, "open");
  EXPECT_EQ(decisions[0].build_id, "b1");
  EXPECT_TRUE(p.Place(Queue(3), {{"draining", 8, false}}).empty());
}

class NullChannel : public WorkerChannel {
 public:
  void Send(const longshore::v1::SchedulerMessage&) override {}
  void Close() override {}
};

TEST(WorkerRegistryTest, CapacitiesReflectLeasesDrainAndConnection) {
  WorkerRegistry registry;
  longshore::v1::Register reg;
  reg.set_worker_id("w1");
  reg.set_slots(2);
  auto r1 =
      registry.Register(reg, std::make_shared<NullChannel>(), absl::Now());
  reg.set_worker_id("w2");
  auto r2 =
      registry.Register(reg, std::make_shared<NullChannel>(), absl::Now());
  registry.Find("w1")->leases["b1"] = 1;
  registry.Find("w2")->draining = true;

  auto caps = registry.Capacities();
  ASSERT_EQ(caps.size(), 2u);
  EXPECT_EQ(caps[0].worker_id, "w1");
  EXPECT_EQ(caps[0].free_slots, 1);
  EXPECT_TRUE(caps[0].accepting);
  EXPECT_FALSE(caps[1].accepting);
  WorkerCounts counts = registry.Counts();
  EXPECT_EQ(counts.busy, 1);
  EXPECT_EQ(counts.draining, 1);
  EXPECT_EQ(counts.idle, 0);

  auto leases = registry.Disconnect(r1.connection, absl::Now());
  EXPECT_EQ(leases.size(), 1u);
  EXPECT_EQ(registry.ByConnection(r1.connection), nullptr);
  EXPECT_FALSE(registry.Capacities()[0].accepting);
  // Drain survives a reconnect.
  auto r3 =
      registry.Register(reg, std::make_shared<NullChannel>(), absl::Now());
  EXPECT_NE(r3.connection, r2.connection);
  EXPECT_TRUE(registry.Find("w2")->draining);
  EXPECT_EQ(registry.ByConnection(r2.connection), nullptr);
}

TEST(WorkerRegistryTest, ExpiresSilentWorkers) {
  WorkerRegistry registry;
  longshore::v1::Register reg;
  reg.set_worker_id("quiet");
  reg.set_slots(1);
  absl::Time t0 = absl::FromUnixSeconds(1000);
  auto r = registry.Register(reg, std::make_shared<NullChannel>(), t0);
  EXPECT_TRUE(
      registry.ExpiredConnections(t0 + absl::Seconds(5), absl::Seconds(6))
          .empty());
  auto expired =
      registry.ExpiredConnections(t0 + absl::Seconds(7), absl::Seconds(6));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0], r.connection);
}

}  // namespace
}  // namespace longshore::scheduler
