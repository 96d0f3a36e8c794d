#include "client/history_format.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace longshore::client {

absl::StatusOr<v1::BuildState> ParseStateName(const std::string& name) {
  std::string n = absl::AsciiStrToLower(name);
  if (n == "queued") return v1::QUEUED;
  if (n == "running") return v1::RUNNING;
  if (n == "succeeded") return v1::SUCCEEDED;
  if (n == "failed") return v1::FAILED;
  if (n == "cancelled" || n == "canceled") return v1::CANCELLED;
  return absl::InvalidArgumentError(absl::StrCat(
      "--state ", name,
      ": expected queued, running, succeeded, failed or cancelled"));
}

absl::StatusOr<absl::Time> ParseSince(const std::string& value,
                                      absl::Time now) {
  absl::Duration d;
  if (absl::ParseDuration(value, &d) && d >= absl::ZeroDuration()) {
    return now - d;
  }
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, value, &t, &err)) return t;
  return absl::InvalidArgumentError(
      absl::StrCat("--since ", value,
                   ": want a duration back from now (30m, 2h) or an RFC 3339 "
                   "time (2026-12-05T07:00:00Z)"));
}

std::string HumanDuration(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  const int64_t ms = absl::ToInt64Milliseconds(d);
  if (ms < 60 * 1000) {
    return absl::StrFormat("%.1fs", static_cast<double>(ms) / 1000.0);
  }
  const int64_t s = ms / 1000;
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

std::string FormatTime(int64_t unix_nanos) {
  if (unix_nanos == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixNanos(unix_nanos),
                          absl::UTCTimeZone());
}

std::string BuildDuration(const v1::BuildInfo& b, absl::Time now) {
  if (b.started_unix_nanos() == 0) return "-";
  absl::Time start = absl::FromUnixNanos(b.started_unix_nanos());
  absl::Time end = b.finished_unix_nanos() != 0
                       ? absl::FromUnixNanos(b.finished_unix_nanos())
                       : now;
  return HumanDuration(end - start);
}

}  // namespace longshore::client
