#include "worker/entitlements.h"

#include "gtest/gtest.h"

namespace longshore::worker {
namespace {

v1::BuildSpec Spec(std::initializer_list<const char*> entitlements,
                   const std::string& network = "") {
  v1::BuildSpec spec;
  for (const char* e : entitlements) spec.add_entitlements(e);
  spec.set_network(network);
  return spec;
}

TEST(EntitlementsTest, NothingAskedIsAlwaysGranted) {
  EXPECT_TRUE(CheckBuildEntitlements(Spec({}), {}).ok());
  EXPECT_TRUE(CheckBuildEntitlements(Spec({}, "none"), {}).ok());
}

TEST(EntitlementsTest, HostNetworkNeedsTheWorkersPolicy) {
  absl::Status s = CheckBuildEntitlements(Spec({"network.host"}), {});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("--allow-host-network"), std::string::npos) << s;
  EXPECT_TRUE(
      CheckBuildEntitlements(Spec({"network.host"}), {true, false}).ok());
  s = CheckBuildEntitlements(Spec({}, "host"), {});
  EXPECT_NE(s.message().find("--network host"), std::string::npos) << s;
}

TEST(EntitlementsTest, InsecureNeedsTheWorkersPolicy) {
  EXPECT_FALSE(CheckBuildEntitlements(Spec({"security.insecure"}), {}).ok());
  EXPECT_TRUE(
      CheckBuildEntitlements(Spec({"security.insecure"}), {false, true}).ok());
}

TEST(EntitlementsTest, UnknownEntitlementAndModeAreNamed) {
  absl::Status s = CheckBuildEntitlements(Spec({"device"}), {true, true});
  EXPECT_NE(s.message().find("--allow device"), std::string::npos) << s;
  s = CheckBuildEntitlements(Spec({}, "bridge"), {true, true});
  EXPECT_NE(s.message().find("--network bridge"), std::string::npos) << s;
}

TEST(EntitlementsTest, StepNetworkPrefersStepThenBuildThenWorker) {
  EntitlementPolicy open{true, true};
  EXPECT_EQ(*StepNetwork("", Spec({}), open, "default"), "default");
  EXPECT_EQ(*StepNetwork("", Spec({}, "none"), open, "default"), "none");
  EXPECT_EQ(*StepNetwork("default", Spec({}, "none"), open, "none"), "default");
}

TEST(EntitlementsTest, StepHostNetworkNeedsTheBuildsEntitlement) {
  EntitlementPolicy open{true, true};
  EXPECT_FALSE(StepNetwork("host", Spec({}), open, "none").ok());
  EXPECT_EQ(*StepNetwork("host", Spec({"network.host"}), open, "none"), "host");
  EXPECT_EQ(*StepNetwork("host", Spec({}, "host"), open, "none"), "host");
  EXPECT_FALSE(StepNetwork("host", Spec({"network.host"}), {}, "none").ok());
}

TEST(EntitlementsTest, StepInsecureNeedsBothSides) {
  EXPECT_FALSE(*StepInsecure("", Spec({}), {}));
  EXPECT_FALSE(*StepInsecure("sandbox", Spec({}), {}));
  EXPECT_FALSE(StepInsecure("insecure", Spec({}), {false, true}).ok());
  EXPECT_FALSE(StepInsecure("insecure", Spec({"security.insecure"}), {}).ok());
  EXPECT_TRUE(
      *StepInsecure("insecure", Spec({"security.insecure"}), {false, true}));
}

}  // namespace
}  // namespace longshore::worker
