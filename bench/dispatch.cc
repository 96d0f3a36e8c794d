// Load generator for bench/dispatch.sh: drives a real longshore-scheduler over
// gRPC on loopback, as two separate processes.
//
//   dispatch workers --scheduler ADDR --workers N --slots S
//       N simulated workers, one Connect stream each. Every assignment is
//       answered at once with a SUCCEEDED result. On SIGTERM it prints how
//       many assignments it got and, for builds carrying the build arg
//       BENCH_SUBMIT_NS, submit-to-assign latency percentiles.
//       --forget_every and --phantom_build make it misreport, for the
//       reconciliation test (tests/e2e/reconcile_test.sh).
//   dispatch submit --scheduler ADDR --count N [--threads T]
//                   [--dockerfile-bytes B] [--stamp] [--submitter NAME]
//       N builds of distinct ~B-byte Dockerfiles sharing one held context, T
//       at a time. Prints builds/s and the per-submit cost (mean, p50, p99).
//       --stamp submits one at a time and stamps each spec with the time the
//       Submit call started, for the workers' latency figures.
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/sha256.h"
#include "grpcpp/grpcpp.h"
#include "proto/longshore.grpc.pb.h"

ABSL_FLAG(std::string, scheduler, "127.0.0.1:7070", "scheduler address");
ABSL_FLAG(int, workers, 100, "workers: simulated workers");
ABSL_FLAG(int, slots, 4, "workers: slots per simulated worker");
ABSL_FLAG(int, forget_every, 0,
          "workers: drop every Nth assignment without a word (not run, not "
          "in heartbeats), as a worker that lost it would; 0: never");
ABSL_FLAG(std::string, phantom_build, "",
          "workers: also list this build in every heartbeat, as a worker "
          "running a build it holds no lease for would");
ABSL_FLAG(int, count, 1000, "submit: builds to submit");
ABSL_FLAG(int, threads, 2, "submit: concurrent submitters");
ABSL_FLAG(int, dockerfile_bytes, 2048, "submit: Dockerfile size");
ABSL_FLAG(int, first_index, 0,
          "submit: index of the first build (unique "
          "Dockerfiles across runs)");
ABSL_FLAG(bool, stamp, false,
          "submit: one at a time, stamped for latency measurement");
ABSL_FLAG(std::string, submitter, "bench", "submit: submitter name");

namespace {

using longshore::v1::BuildService;
using longshore::v1::SchedulerMessage;
using longshore::v1::WorkerMessage;
using longshore::v1::WorkerService;

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

double Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return static_cast<double>(v[std::min(i, v.size() - 1)]);
}

std::shared_ptr<grpc::Channel> Dial(const std::string& address, int id) {
  grpc::ChannelArguments args;
  // A distinct argument per simulated worker gives each its own connection,
  // as separate worker processes would have.
  args.SetInt("longshore.bench.connection", id);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

// --- workers -----------------------------------------------------------------

std::atomic<bool> g_stop{false};

struct Tally {
  absl::Mutex mu;
  std::vector<int64_t> latency_ns ABSL_GUARDED_BY(mu);
  int64_t assignments ABSL_GUARDED_BY(mu) = 0;
  int64_t forgotten ABSL_GUARDED_BY(mu) = 0;
  int64_t cancels ABSL_GUARDED_BY(mu) = 0;
};

void RunWorker(int index, const std::string& address, int slots, Tally* tally) {
  auto stub = WorkerService::NewStub(Dial(address, index));
  grpc::ClientContext context;
  auto stream = stub->Connect(&context);
  absl::Mutex write_mu;
  WorkerMessage hello;
  hello.mutable_register_()->set_worker_id(absl::StrCat("sim-", index));
  hello.mutable_register_()->set_slots(slots);
  hello.mutable_register_()->set_version("bench");
  if (!stream->Write(hello)) {
    fprintf(stderr, "worker %d: Register failed\n", index);
    return;
  }
  std::atomic<int> heartbeat_ms{1000};
  std::thread heartbeats([&] {
    while (!g_stop.load()) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(heartbeat_ms.load() / 2));
      WorkerMessage beat;
      beat.mutable_heartbeat()->set_free_slots(slots);
      if (!absl::GetFlag(FLAGS_phantom_build).empty()) {
        beat.mutable_heartbeat()->add_running_build_ids(
            absl::GetFlag(FLAGS_phantom_build));
      }
      absl::MutexLock lock(&write_mu);
      if (!stream->Write(beat)) return;
    }
  });
  SchedulerMessage in;
  const int forget_every = absl::GetFlag(FLAGS_forget_every);
  int seen = 0;
  while (stream->Read(&in)) {
    if (in.has_registered()) {
      heartbeat_ms = std::max(100, in.registered().heartbeat_interval_ms());
      continue;
    }
    if (in.has_cancel()) {
      absl::MutexLock lock(&tally->mu);
      ++tally->cancels;
      continue;
    }
    if (!in.has_assignment()) continue;
    if (forget_every > 0 && ++seen % forget_every == 0) {
      absl::MutexLock lock(&tally->mu);
      ++tally->forgotten;
      continue;
    }
    const int64_t now = NowNs();
    const auto& a = in.assignment();
    int64_t submitted = 0;
    for (const auto& kv : a.spec().build_args()) {
      if (kv.key() == "BENCH_SUBMIT_NS")
        (void)absl::SimpleAtoi(kv.value(), &submitted);
    }
    WorkerMessage done;
    done.mutable_result()->set_build_id(a.build_id());
    done.mutable_result()->set_attempt(a.attempt());
    done.mutable_result()->set_state(longshore::v1::SUCCEEDED);
    {
      absl::MutexLock lock(&write_mu);
      stream->Write(done);
    }
    absl::MutexLock lock(&tally->mu);
    ++tally->assignments;
    if (submitted > 0) tally->latency_ns.push_back(now - submitted);
  }
  g_stop = true;
  heartbeats.join();
}

int Workers() {
  signal(SIGTERM, [](int) { g_stop = true; });
  signal(SIGINT, [](int) { g_stop = true; });
  const std::string address = absl::GetFlag(FLAGS_scheduler);
  const int n = absl::GetFlag(FLAGS_workers);
  Tally tally;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back(RunWorker, i, address, absl::GetFlag(FLAGS_slots),
                         &tally);
  }
  fprintf(stderr, "dispatch workers: %d connected\n", n);
  while (!g_stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  absl::MutexLock lock(&tally.mu);
  printf("assignments %lld forgotten %lld cancels %lld\n",
         static_cast<long long>(tally.assignments),
         static_cast<long long>(tally.forgotten),
         static_cast<long long>(tally.cancels));
  if (!tally.latency_ns.empty()) {
    printf("assign_latency_ms n=%zu p50=%.3f p99=%.3f max=%.3f\n",
           tally.latency_ns.size(), Percentile(tally.latency_ns, 0.50) / 1e6,
           Percentile(tally.latency_ns, 0.99) / 1e6,
           Percentile(tally.latency_ns, 1.0) / 1e6);
  }
  fflush(stdout);
  _exit(0);  // The streams' threads are blocked in Read; nothing to clean.
}

// --- submit ------------------------------------------------------------------

// An empty tar (two zero blocks): a valid context, uploaded once.
const std::string& ContextBytes() {
  static const std::string bytes(1024, '\0');
  return bytes;
}

std::string Dockerfile(int index, int bytes) {
  std::string out = absl::StrCat("# build ", index, "\nFROM scratch\n");
  while (static_cast<int>(out.size()) < bytes - 40) {
    absl::StrAppend(&out, "LABEL bench.padding", out.size(),
                    "=\"0123456789abcdef\"\n");
  }
  absl::StrAppend(&out, "COPY . /\n");
  return out;
}

int Submit() {
  const std::string address = absl::GetFlag(FLAGS_scheduler);
  const int count = absl::GetFlag(FLAGS_count);
  const int threads =
      absl::GetFlag(FLAGS_stamp) ? 1 : absl::GetFlag(FLAGS_threads);
  const int first = absl::GetFlag(FLAGS_first_index);
  const std::string digest = longshore::Sha256Digest(ContextBytes());

  // Upload the context once (a Submit carrying it); later builds name it.
  auto upload_stub = BuildService::NewStub(Dial(address, -1));
  {
    longshore::v1::StatContextRequest req;
    req.set_digest(digest);
    longshore::v1::StatContextResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = upload_stub->StatContext(&ctx, req, &resp);
    if (!s.ok()) {
      fprintf(stderr, "StatContext: %s\n", s.error_message().c_str());
      return 1;
    }
  }

  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  absl::Mutex mu;
  std::vector<int64_t> cost_ns;
  cost_ns.reserve(count);
  // Submits build i; the first of each run carries the context (ignored by a
  // scheduler that already holds it), the rest only name it.
  auto submit_one = [&](BuildService::Stub* stub, int i,
                        std::vector<int64_t>* costs) {
    longshore::v1::SubmitRequest first_part;
    auto* spec = first_part.mutable_spec();
    spec->set_dockerfile(
        Dockerfile(first + i, absl::GetFlag(FLAGS_dockerfile_bytes)));
    spec->set_context_digest(digest);
    spec->set_context_size(ContextBytes().size());
    spec->set_submitter(absl::GetFlag(FLAGS_submitter));
    const int64_t start = NowNs();
    if (absl::GetFlag(FLAGS_stamp)) {
      auto* arg = spec->add_build_args();
      arg->set_key("BENCH_SUBMIT_NS");
      arg->set_value(absl::StrCat(start));
    }
    grpc::ClientContext ctx;
    longshore::v1::SubmitResponse resp;
    auto writer = stub->Submit(&ctx, &resp);
    writer->Write(first_part);
    if (i == 0) {
      longshore::v1::SubmitRequest chunk;
      chunk.mutable_context()->set_data(ContextBytes());
      writer->Write(chunk);
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    const int64_t end = NowNs();
    if (!s.ok()) {
      if (failures++ < 5) {
        fprintf(stderr, "Submit %d: %s\n", i, s.error_message().c_str());
      }
      return;
    }
    costs->push_back(end - start);
  };
  if (count > 0) submit_one(upload_stub.get(), next++, &cost_ns);
  auto loop = [&](int t) {
    auto stub = BuildService::NewStub(Dial(address, t));
    std::vector<int64_t> mine;
    for (int i = next++; i < count; i = next++)
      submit_one(stub.get(), i, &mine);
    absl::MutexLock lock(&mu);
    cost_ns.insert(cost_ns.end(), mine.begin(), mine.end());
  };
  const int64_t t0 = NowNs();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(loop, t);
  for (auto& t : pool) t.join();
  const double seconds = (NowNs() - t0) / 1e9;
  double mean = 0;
  for (int64_t c : cost_ns) mean += c;
  if (!cost_ns.empty()) mean /= cost_ns.size();
  printf(
      "submitted %zu in %.3f s: %.0f builds/s; submit cost us mean=%.1f "
      "p50=%.1f p99=%.1f (threads %d); failures %d\n",
      cost_ns.size(), seconds, cost_ns.size() / seconds, mean / 1e3,
      Percentile(cost_ns, 0.5) / 1e3, Percentile(cost_ns, 0.99) / 1e3, threads,
      failures.load());
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string mode = args.size() > 1 ? args[1] : "";
  if (mode == "workers") return Workers();
  if (mode == "submit") return Submit();
  fprintf(stderr,
          "usage: dispatch workers|submit [flags] (see bench/dispatch.cc)\n");
  return 2;
}
