#include "common/metrics_server.h"

#include <atomic>

#include "gtest/gtest.h"
#include "httplib.h"
#include "prometheus/counter.h"

namespace longshore {
namespace {

TEST(SplitHostPortTest, Forms) {
  std::string host;
  int port = -1;
  ASSERT_TRUE(SplitHostPort("127.0.0.1:9100", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 9100);
  ASSERT_TRUE(SplitHostPort("[::1]:0", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(SplitHostPort(":9464", &host, &port).ok());
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_FALSE(SplitHostPort("localhost", &host, &port).ok());
  EXPECT_FALSE(SplitHostPort("localhost:http", &host, &port).ok());
  EXPECT_FALSE(SplitHostPort("localhost:70000", &host, &port).ok());
}

TEST(MetricsServerTest, ServesMetricsHealthAndReadiness) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("longshore_test_total")
      .Help("A test counter.")
      .Register(*registry)
      .Add({{"k", "v"}})
      .Increment(3);
  std::atomic<bool> ready{false};
  auto server =
      MetricsServer::Start("127.0.0.1:0", registry, [&]() -> absl::Status {
        if (ready) return absl::OkStatus();
        return absl::UnavailableError("no stream to the scheduler");
      });
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  httplib::Client client("127.0.0.1", (*server)->port());

  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("longshore_test_total{k=\"v\"} 3"),
            std::string::npos)
      << metrics->body;

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  auto not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_NE(not_ready->body.find("no stream to the scheduler"),
            std::string::npos);
  ready = true;
  auto is_ready = client.Get("/readyz");
  ASSERT_TRUE(is_ready);
  EXPECT_EQ(is_ready->status, 200);

  auto missing = client.Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(MetricsServerTest, BusyPortIsAnError) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto first = MetricsServer::Start("127.0.0.1:0", registry, nullptr);
  ASSERT_TRUE(first.ok());
  auto second = MetricsServer::Start(
      "127.0.0.1:" + std::to_string((*first)->port()), registry, nullptr);
  EXPECT_FALSE(second.ok());
}

}  // namespace
}  // namespace longshore
