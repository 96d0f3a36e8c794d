// Shell-word processing of Dockerfile arguments, with the semantics of
// BuildKit's frontend/dockerfile/shell lexer: $v and ${v} with the modifiers
// :- - :+ + :? ? # ## % %% / //, single and double quotes, the escape token,
// and word splitting of unquoted expansions.
#ifndef LONGSHORE_DOCKERFILE_SHELL_LEX_H_
#define LONGSHORE_DOCKERFILE_SHELL_LEX_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::dockerfile {

// What one word expanded to, and which variable names it looked up.
struct ShellWordResult {
  std::string word;                 // the word as one string (ProcessWord)
  std::vector<std::string> words;   // the word split into fields (ProcessWords)
  std::set<std::string> matched;    // names that were set in the environment
  std::set<std::string> unmatched;  // names looked up but not set
};

class ShellLex {
 public:
  explicit ShellLex(char escape = '\\');

  // Expands `word` as a single word: quotes are removed, nothing splits.
  // `env` holds "K=V" entries; a later entry for the same key wins. An entry
  // without '=' sets the key to the empty string.
  absl::StatusOr<std::string> ProcessWord(
      absl::string_view word, const std::vector<std::string>& env) const;
  // Expands `word` and splits it into fields on unquoted whitespace (including
  // whitespace that came from an unquoted expansion).
  absl::StatusOr<std::vector<std::string>> ProcessWords(
      absl::string_view word, const std::vector<std::string>& env) const;
  // Both results plus the variable names referenced (for cache keys and for
  // telling which build args a step used).
  absl::StatusOr<ShellWordResult> ProcessWordWithMatches(
      absl::string_view word, const std::vector<std::string>& env) const;

  char escape() const { return escape_; }
  // Keep quote characters in the output (BuildKit's RawQuotes).
  void set_raw_quotes(bool v) { raw_quotes_ = v; }
  // Keep escape characters in the output (BuildKit's RawEscapes).
  void set_raw_escapes(bool v) { raw_escapes_ = v; }
  // Leave references to unset variables as written (BuildKit's SkipUnsetEnv).
  void set_skip_unset_env(bool v) { skip_unset_env_ = v; }
  // Treat quotes as ordinary characters (BuildKit's SkipProcessQuotes).
  void set_skip_process_quotes(bool v) { skip_process_quotes_ = v; }

 private:
  char escape_;
  bool raw_quotes_ = false;
  bool raw_escapes_ = false;
  bool skip_unset_env_ = false;
  bool skip_process_quotes_ = false;
};

// Shell pattern matching as used by ${v#p}, ${v%p} and ${v/p/r}: `*`, `?`,
// bracket expressions `[a-z]`, `[!x]`/`[^x]`, and `\` escaping the next char.
// Matches the whole of `text`.
bool ShellPatternMatch(absl::string_view pattern, absl::string_view text);

}  // namespace longshore::dockerfile

#endif  // LONGSHORE_DOCKERFILE_SHELL_LEX_H_
