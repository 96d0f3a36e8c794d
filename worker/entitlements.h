// What a build may ask of its RUN steps beyond the sandbox's defaults, and
// whether this worker's policy grants it: `--allow network.host` and
// `--allow security.insecure` (BuildKit's entitlements) and the build-wide
// `--network`. A build asks; the worker's flags decide.
#ifndef LONGSHORE_WORKER_ENTITLEMENTS_H_
#define LONGSHORE_WORKER_ENTITLEMENTS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/longshore.pb.h"

namespace longshore::worker {

struct EntitlementPolicy {
  bool allow_host_network = false;  // longshore-worker --allow-host-network
  bool allow_insecure = false;      // longshore-worker --allow-insecure
};

// Checked before the build starts: every entitlement the build asks for is
// known and granted, and its --network is a mode this worker runs. Errors
// name the flag the submitter passed and the worker flag that would grant it.
absl::Status CheckBuildEntitlements(const v1::BuildSpec& spec,
                                    const EntitlementPolicy& policy);

// The network of one RUN step: its own --network, else the build's
// --network, else `worker_default`. A step's own host network needs the
// build's network.host entitlement (the build's --network=host implies it,
// as buildx does).
absl::StatusOr<std::string> StepNetwork(const std::string& step_network,
                                        const v1::BuildSpec& spec,
                                        const EntitlementPolicy& policy,
                                        const std::string& worker_default);

// A RUN --security=insecure step needs the build's security.insecure
// entitlement and the worker's --allow-insecure; "sandbox" or "" needs
// nothing. Returns whether the step runs insecure.
absl::StatusOr<bool> StepInsecure(const std::string& step_security,
                                  const v1::BuildSpec& spec,
                                  const EntitlementPolicy& policy);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_ENTITLEMENTS_H_
