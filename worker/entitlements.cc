#include "worker/entitlements.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace longshore::worker {
namespace {

constexpr char kNetworkHost[] = "network.host";
constexpr char kSecurityInsecure[] = "security.insecure";

bool Asked(const v1::BuildSpec& spec, const std::string& name) {
  return std::find(spec.entitlements().begin(), spec.entitlements().end(),
                   name) != spec.entitlements().end();
}

absl::Status HostNetworkDenied(const std::string& asked_by) {
  return absl::PermissionDeniedError(absl::StrCat(
      asked_by,
      ": this worker's policy does not grant network.host (its operator "
      "starts it with --allow-host-network to grant it)"));
}

}  // namespace

absl::Status CheckBuildEntitlements(const v1::BuildSpec& spec,
                                    const EntitlementPolicy& policy) {
  for (const std::string& e : spec.entitlements()) {
    if (e == kNetworkHost) {
      if (!policy.allow_host_network) {
        return HostNetworkDenied("--allow network.host");
      }
    } else if (e == kSecurityInsecure) {
      if (!policy.allow_insecure) {
        return absl::PermissionDeniedError(
            "--allow security.insecure: this worker's policy does not grant "
            "security.insecure (its operator starts it with --allow-insecure "
            "to grant it)");
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--allow ", e,
                       ": unknown entitlement (network.host and "
                       "security.insecure are known)"));
    }
  }
  const std::string& n = spec.network();
  if (!n.empty() && n != "default" && n != "none" && n != "host") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--network ", n, ": unsupported mode (default, none or host)"));
  }
  if (n == "host" && !policy.allow_host_network) {
    return HostNetworkDenied("--network host");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> StepNetwork(const std::string& step_network,
                                        const v1::BuildSpec& spec,
                                        const EntitlementPolicy& policy,
                                        const std::string& worker_default) {
  if (step_network == "host") {
    if (!Asked(spec, kNetworkHost) && spec.network() != "host") {
      return absl::PermissionDeniedError(
          "RUN --network=host needs the network.host entitlement: build with "
          "--allow network.host");
    }
    if (!policy.allow_host_network) {
      return HostNetworkDenied("RUN --network=host");
    }
    return step_network;
  }
  if (!step_network.empty()) return step_network;
  if (!spec.network().empty()) return spec.network();
  return worker_default;
}

absl::StatusOr<bool> StepInsecure(const std::string& step_security,
                                  const v1::BuildSpec& spec,
                                  const EntitlementPolicy& policy) {
  if (step_security != "insecure") return false;
  if (!Asked(spec, kSecurityInsecure)) {
    return absl::PermissionDeniedError(
        "RUN --security=insecure needs the security.insecure entitlement: "
        "build with --allow security.insecure");
  }
  if (!policy.allow_insecure) {
    return absl::PermissionDeniedError(
        "RUN --security=insecure: this worker's policy does not grant "
        "security.insecure (its operator starts it with --allow-insecure to "
        "grant it)");
  }
  return true;
}

}  // namespace longshore::worker
