#include "scheduler/listen_policy.h"

#include "gtest/gtest.h"

namespace longshore::scheduler {
namespace {

TEST(ListenPolicyTest, LoopbackAddresses) {
  EXPECT_TRUE(IsLoopbackListen("127.0.0.1:7070"));
  EXPECT_TRUE(IsLoopbackListen("127.8.9.10:7070"));
  EXPECT_TRUE(IsLoopbackListen("localhost:7070"));
  EXPECT_TRUE(IsLoopbackListen("[::1]:7070"));
  EXPECT_FALSE(IsLoopbackListen("0.0.0.0:7070"));
  EXPECT_FALSE(IsLoopbackListen("[::]:7070"));
  EXPECT_FALSE(IsLoopbackListen("10.1.2.3:7070"));
  EXPECT_FALSE(IsLoopbackListen("sched.example:7070"));
  EXPECT_FALSE(IsLoopbackListen("[::1:7070"));
  EXPECT_FALSE(IsLoopbackListen("128.0.0.1:7070"));
}

TEST(ListenPolicyTest, PlaintextOnTheNetworkNeedsInsecure) {
  EXPECT_TRUE(CheckPlaintextListen("127.0.0.1:7070", false, false).ok());
  EXPECT_TRUE(CheckPlaintextListen("0.0.0.0:7070", true, false).ok());
  EXPECT_TRUE(CheckPlaintextListen("0.0.0.0:7070", false, true).ok());
  absl::Status refused = CheckPlaintextListen("0.0.0.0:7070", false, false);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused));
  EXPECT_NE(refused.message().find("--listen 0.0.0.0:7070"), std::string::npos);
  EXPECT_NE(refused.message().find("--insecure"), std::string::npos);
  EXPECT_NE(refused.message().find("--tls-cert"), std::string::npos);
}

}  // namespace
}  // namespace longshore::scheduler
