#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace longshore {
namespace {

LogLevel LevelFromEnv() {
  const char* v = getenv("LONGSHORE_LOG_LEVEL");
  if (v == nullptr) return LogLevel::kInfo;
  if (strcmp(v, "debug") == 0) return LogLevel::kDebug;
  if (strcmp(v, "warning") == 0) return LogLevel::kWarning;
  if (strcmp(v, "error") == 0) return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int>& MinLevel() {
  static std::atomic<int> level(static_cast<int>(LevelFromEnv()));
  return level;
}

std::string& Tag() {
  static std::string* tag = new std::string("longshore");
  return *tag;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

}  // namespace

void SetMinLogLevel(LogLevel level) { MinLevel() = static_cast<int>(level); }
LogLevel MinLogLevel() { return static_cast<LogLevel>(MinLevel().load()); }
void SetLogTag(const std::string& tag) { Tag() = tag; }

LogMessage::LogMessage(LogLevel level, const char* file, int line)
    : level_(level) {
  const char* base = strrchr(file, '/');
  stream_ << absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                              absl::UTCTimeZone())
          << " " << LevelName(level_) << " " << Tag() << "["
          << static_cast<int>(getpid()) << "] " << (base ? base + 1 : file)
          << ":" << line << "] ";
}

LogMessage::~LogMessage() {
  stream_ << "\n";
  std::string s = stream_.str();
  // One write per line so concurrent threads do not interleave mid-line.
  ssize_t ignored = ::write(STDERR_FILENO, s.data(), s.size());
  (void)ignored;
}

}  // namespace longshore
