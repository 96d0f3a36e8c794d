// What `longshore builds`, `inspect` and `logs` read from their command
// lines and how they show times: pure functions, tested beside.
#ifndef LONGSHORE_CLIENT_HISTORY_FORMAT_H_
#define LONGSHORE_CLIENT_HISTORY_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/longshore.pb.h"

namespace longshore::client {

// "queued", "running", "succeeded", "failed", "cancelled" (any case).
absl::StatusOr<v1::BuildState> ParseStateName(const std::string& name);

// `--since`: a duration back from `now` ("90m", "2h", "1h30m") or an RFC 3339
// time ("2026-12-05T07:00:00Z"); errors name the flag and the value.
absl::StatusOr<absl::Time> ParseSince(const std::string& value, absl::Time now);

// Durations as docker shows them: "0.4s", "12.3s", "4m05s", "2h03m".
std::string HumanDuration(absl::Duration d);

// UTC, to the second: "2026-12-05T07:00:00Z"; "-" for 0.
std::string FormatTime(int64_t unix_nanos);

// How long a build took (finished - started) or has been running (now -
// started); "-" when it has not started.
std::string BuildDuration(const v1::BuildInfo& b, absl::Time now);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_HISTORY_FORMAT_H_
