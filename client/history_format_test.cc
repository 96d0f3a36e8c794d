#include "client/history_format.h"

#include "gtest/gtest.h"

namespace longshore::client {
namespace {

TEST(HistoryFormat, States) {
  EXPECT_EQ(*ParseStateName("Running"), v1::RUNNING);
  EXPECT_EQ(*ParseStateName("canceled"), v1::CANCELLED);
  auto bad = ParseStateName("done");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--state done"), std::string::npos);
}

TEST(HistoryFormat, Since) {
  absl::Time now = absl::FromUnixSeconds(1800000000);
  EXPECT_EQ(*ParseSince("2h", now), now - absl::Hours(2));
  EXPECT_EQ(*ParseSince("1h30m", now), now - absl::Minutes(90));
  EXPECT_EQ(*ParseSince("2027-01-15T08:00:00Z", now),
            absl::FromUnixSeconds(1800000000));
  auto bad = ParseSince("yesterday", now);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--since yesterday"),
            std::string::npos);
}

TEST(HistoryFormat, Durations) {
  EXPECT_EQ(HumanDuration(absl::Milliseconds(400)), "0.4s");
  EXPECT_EQ(HumanDuration(absl::Milliseconds(12345)), "12.3s");
  EXPECT_EQ(HumanDuration(absl::Seconds(245)), "4m05s");
  EXPECT_EQ(HumanDuration(absl::Minutes(123)), "2h03m");
  EXPECT_EQ(HumanDuration(-absl::Seconds(1)), "0.0s");
}

TEST(HistoryFormat, TimesAndBuildDuration) {
  EXPECT_EQ(FormatTime(0), "-");
  EXPECT_EQ(FormatTime(int64_t{1800000000} * 1000000000),
            "2027-01-15T08:00:00Z");
  v1::BuildInfo b;
  absl::Time now = absl::FromUnixSeconds(1000);
  EXPECT_EQ(BuildDuration(b, now), "-");
  b.set_started_unix_nanos(absl::ToUnixNanos(absl::FromUnixSeconds(990)));
  EXPECT_EQ(BuildDuration(b, now), "10.0s");  // still running
  b.set_finished_unix_nanos(absl::ToUnixNanos(absl::FromUnixSeconds(995)));
  EXPECT_EQ(BuildDuration(b, now), "5.0s");
}

}  // namespace
}  // namespace longshore::client
