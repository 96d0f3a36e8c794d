// Dockerfile text to an instruction list, with the semantics of BuildKit's
// frontend/dockerfile/parser: parser directives, comments, line continuations,
// JSON (exec) versus shell form, flags before arguments and heredocs.
//
// Two levels, as in BuildKit:
//  - ParseAst() is the syntactic parse only. It accepts every instruction word
//    (an unknown one keeps no arguments) and never checks argument counts; its
//    DumpAst() output equals BuildKit's parser dump byte for byte.
//  - Parse() is ParseAst() followed by Validate(): unknown instructions,
//  missing
//    arguments, bad HEALTHCHECK types and the like are rejected, as BuildKit's
//    instruction parser rejects them. This is what a build (and submit-time
//    checking) uses.
// The package is pure: no I/O.
#ifndef LONGSHORE_DOCKERFILE_PARSER_H_
#define LONGSHORE_DOCKERFILE_PARSER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::dockerfile {

// One here-document attached to a RUN/COPY/ADD line. `content` is the raw body
// (every line with its newline, the terminator excluded); leading tabs are
// still there when `chomp_tabs` is set: use ChompHeredocContent() to apply
// `<<-`.
struct Heredoc {
  std::string name;  // the terminator word, quotes removed
  std::string content;
  bool expand = true;       // false when any part of the delimiter was quoted
  bool chomp_tabs = false;  // `<<-`
  int fd = 0;  // the optional file descriptor prefix (`3<<EOF`), 0 when absent
};

// One instruction.
struct Node {
  std::string cmd;                 // lower-case: "from", "run", "copy", ...
  std::vector<std::string> flags;  // "--from=builder" as written, before args
  // As BuildKit's AST: ENV/LABEL are triples (key, value, "" or "="), values
  // still raw; shell-form commands are one string; JSON form the decoded
  // strings.
  std::vector<std::string> args;
  bool json = false;  // exec (JSON array) form
  std::vector<Heredoc> heredocs;
  std::string original;              // instruction text, continuations joined
  int start_line = 0, end_line = 0;  // 1-based inclusive
  std::vector<Node> children;  // ONBUILD's nested instruction (one element)
  // The instruction word as written ("Run"); `cmd` is its lower-case form.
  std::string cmd_as_written;
};

struct Directives {
  std::string syntax;  // recorded, never fetched
  char escape = '\\';
  std::string check;
};

struct ParsedDockerfile {
  std::string filename;
  Directives directives;
  std::vector<Node> nodes;
  std::vector<std::string> warnings;  // "<file>:<line>: <what>"
};

// Syntactic parse (see the file comment). Errors are InvalidArgument with the
// message "<filename>:<line>: <what>".
absl::StatusOr<ParsedDockerfile> ParseAst(
    absl::string_view text, absl::string_view filename = "Dockerfile");

// Per-instruction checks that BuildKit's instruction parser makes; errors are
// "<filename>:<line>: <what>" in Docker's wording.
absl::Status Validate(const ParsedDockerfile& df);

// ParseAst() then Validate().
absl::StatusOr<ParsedDockerfile> Parse(
    absl::string_view text, absl::string_view filename = "Dockerfile");

// BuildKit's dump: one line per instruction, `(cmd ["--flag"] "arg" ...)`,
// every line ending in '\n'.
std::string DumpAst(const ParsedDockerfile& df);
// One node in the same format (no trailing newline).
std::string DumpNode(const Node& node);

// A JSON document for tools: {"filename", "directives", "instructions": [{cmd,
// flags, args, json, start_line, end_line, original, heredocs, children}],
// "warnings"}.
std::string DumpJson(const ParsedDockerfile& df);

// Removes the leading tabs of every line (the `<<-` form).
std::string ChompHeredocContent(absl::string_view content);

// The body of a heredoc as it is used: tabs chomped when asked for.
std::string HeredocBody(const Heredoc& heredoc);

// Parses one word such as "<<EOF", "<<-'EOF'" or "3<<EOF". Returns nullopt when
// the word is not a heredoc, an error when its delimiter cannot be lexed.
absl::StatusOr<std::optional<Heredoc>> ParseHeredocWord(absl::string_view word);

// Go's strconv.Quote: the string in double quotes, with \" \\ \n \t \xNN
// escapes, printable UTF-8 kept as is. The AST dump quotes with it.
std::string GoQuote(absl::string_view s);

// Splits "--flag=value" style words from the front of an instruction's
// arguments, as BuildKit does: returns the flags and the rest of the line.
// Exposed for the ONBUILD trigger re-parse and for tests.
void ExtractBuilderFlags(absl::string_view line,
                         std::vector<std::string>* flags, std::string* rest);

}  // namespace longshore::dockerfile

#endif  // LONGSHORE_DOCKERFILE_PARSER_H_
