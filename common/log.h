// Minimal leveled logging to stderr: `LS_LOG(INFO) << "worker " << id << "
// ready";`. Debian's abseil (20220623) predates absl/log, so the project keeps
// this one sink.
#ifndef LONGSHORE_COMMON_LOG_H_
#define LONGSHORE_COMMON_LOG_H_

#include <sstream>
#include <string>

namespace longshore {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below this level are dropped. Defaults to kInfo, or
// LONGSHORE_LOG_LEVEL (debug|info|warning|error) from the environment.
void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();
// A tag printed in every line ("scheduler", "worker"), set once by main().
void SetLogTag(const std::string& tag);

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace longshore

#define LS_LOG_LEVEL_DEBUG ::longshore::LogLevel::kDebug
#define LS_LOG_LEVEL_INFO ::longshore::LogLevel::kInfo
#define LS_LOG_LEVEL_WARNING ::longshore::LogLevel::kWarning
#define LS_LOG_LEVEL_ERROR ::longshore::LogLevel::kError

#define LS_LOG(level)                                      \
  if (LS_LOG_LEVEL_##level < ::longshore::MinLogLevel()) { \
  } else                                                   \
    ::longshore::LogMessage(LS_LOG_LEVEL_##level, __FILE__, __LINE__).stream()

#endif  // LONGSHORE_COMMON_LOG_H_
