// UTF-8 and character-class helpers shared by the parser and the shell lexer.
// They follow Go's unicode package where BuildKit relies on it (IsSpace,
// IsLetter, IsDigit, strconv.IsPrint), with tables limited to what Dockerfiles
// meet in practice; see the .cc for the approximations.
#ifndef LONGSHORE_DOCKERFILE_TEXT_UTIL_H_
#define LONGSHORE_DOCKERFILE_TEXT_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace longshore::dockerfile::text {

constexpr uint32_t kRuneError = 0xFFFD;

// Decodes the rune at s[pos]; invalid or truncated sequences give kRuneError
// with width 1, as Go's utf8.DecodeRuneInString. Requires pos < s.size().
uint32_t DecodeRune(absl::string_view s, size_t pos, size_t* width);
void AppendRune(std::string* out, uint32_t rune);

bool IsSpace(uint32_t r);
bool IsLetter(uint32_t r);
bool IsDigit(uint32_t r);
bool IsPrint(uint32_t r);

// Unicode-aware trimming (Go's strings.TrimSpace / TrimLeftFunc(IsSpace)).
absl::string_view TrimSpace(absl::string_view s);
absl::string_view TrimLeftSpace(absl::string_view s);
absl::string_view TrimRightSpace(absl::string_view s);

// The characters of Go's regexp `[\t\v\f\r ]`, which BuildKit splits on.
inline bool IsBlank(char c) {
  return c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == ' ';
}

}  // namespace longshore::dockerfile::text

#endif  // LONGSHORE_DOCKERFILE_TEXT_UTIL_H_
