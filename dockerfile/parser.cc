#include "dockerfile/parser.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dockerfile/instruction_flags.h"
#include "dockerfile/shell_lex.h"
#include "dockerfile/text_util.h"
#include "nlohmann/json.hpp"

namespace longshore::dockerfile {
namespace {

// ---------------------------------------------------------------------------
// Errors with a location.

absl::Status ErrorAt(absl::string_view filename, int line,
                     absl::string_view what) {
  if (line <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(filename, ": ", what));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(filename, ":", line, ": ", what));
}

// ---------------------------------------------------------------------------
// Line handling.

absl::string_view TrimNewline(absl::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool IsComment(absl::string_view line) {
  line = text::TrimLeftSpace(line);
  return !line.empty() && line[0] == '#';
}

bool IsEmptyContinuationLine(absl::string_view line) {
  return text::TrimLeftSpace(TrimNewline(line)).empty();
}

// A line ends in a continuation when, after trailing blanks and tabs, its
// last character is the escape token and that token is not itself escaped.
// Returns the line without the token and the blanks after it.
bool TrimContinuation(absl::string_view line, char escape, std::string* out) {
  size_t end = line.size();
  while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t')) --end;
  if (end > 0 && line[end - 1] == escape &&
      (end == 1 || line[end - 2] != escape)) {
    *out = std::string(line.substr(0, end - 1));
    return true;
  }
  *out = std::string(line);
  return false;
}

// Splits the text into lines, each with its "\n" (the last may lack one).
std::vector<absl::string_view> SplitLines(absl::string_view text) {
  std::vector<absl::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == absl::string_view::npos) {
      lines.push_back(text.substr(pos));
      break;
    }
    lines.push_back(text.substr(pos, nl + 1 - pos));
    pos = nl + 1;
  }
  return lines;
}

// ---------------------------------------------------------------------------
// Parser directives: `# key=value` lines at the very top of the file.

class DirectiveParser {
 public:
  explicit DirectiveParser(Directives* d) : d_(d) {}

  // Looks at one line (leading whitespace and newline already removed).
  absl::Status Line(absl::string_view line) {
    if (done_) return absl::OkStatus();
    std::string key, value;
    if (!Match(line, &key, &value)) {
      done_ = true;
      return absl::OkStatus();
    }
    if (key != "escape" && key != "syntax" && key != "check") {
      done_ = true;
      return absl::OkStatus();
    }
    if (!seen_.insert(key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("only one ", key, " parser directive can be used"));
    }
    if (key == "escape") {
      if (value != "`" && value != "\\") {
        return absl::InvalidArgumentError(absl::StrCat(
            "invalid escape token '", value, "' does not match ` or \\"));
      }
      d_->escape = value[0];
    } else if (key == "syntax") {
      d_->syntax = value;
    } else {
      d_->check = value;
    }
    return absl::OkStatus();
  }

 private:
  // `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
  static bool Match(absl::string_view line, std::string* key,
                    std::string* value) {
    if (line.empty() || line[0] != '#') return false;
    absl::string_view rest = text::TrimLeftSpace(line.substr(1));
    size_t i = 0;
    if (i >= rest.size() || !absl::ascii_isalpha(rest[i])) return false;
    while (i < rest.size() && absl::ascii_isalnum(rest[i])) ++i;
    *key = absl::AsciiStrToLower(rest.substr(0, i));
    rest = text::TrimLeftSpace(rest.substr(i));
    if (rest.empty() || rest[0] != '=') return false;
    rest = text::TrimSpace(rest.substr(1));
    if (rest.empty()) return false;
    *value = std::string(rest);
    return true;
  }

  Directives* d_;
  bool done_ = false;
  std::set<std::string> seen_;
};

// ---------------------------------------------------------------------------
// A strict JSON reader with Go's encoding/json rules, for exec-form arrays.
// It reads one value and ignores whatever follows, as json.Decoder does.

class JsonReader {
 public:
  enum class Result { kStringArray, kNotStringArray, kInvalid };

  explicit JsonReader(absl::string_view s) : s_(s) {}

  Result ReadStringArray(std::vector<std::string>* out) {
    SkipWs();
    if (pos_ >= s_.size() || s_[pos_] != '[') return Result::kInvalid;
    bool all_strings = true;
    ++pos_;
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return Result::kStringArray;
    }
    for (;;) {
      SkipWs();
      if (pos_ < s_.size() && s_[pos_] == '"') {
        std::string str;
        if (!ReadString(&str)) return Result::kInvalid;
        out->push_back(std::move(str));
      } else {
        all_strings = false;
        if (!SkipValue(0)) return Result::kInvalid;
      }
      SkipWs();
      if (pos_ >= s_.size()) return Result::kInvalid;
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        break;
      }
      return Result::kInvalid;
    }
    return all_strings ? Result::kStringArray : Result::kNotStringArray;
  }

 private:
  void SkipWs() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' ||
                                s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Hex4(uint32_t* v) {
    if (pos_ + 4 > s_.size()) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_ + i];
      *v <<= 4;
      if (c >= '0' && c <= '9') {
        *v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        *v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        *v |= c - 'A' + 10;
      } else {
        return false;
      }
    }
    pos_ += 4;
    return true;
  }

  bool ReadString(std::string* out) {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++pos_ >= s_.size()) return false;
        char e = s_[pos_++];
        switch (e) {
          case '"':
          case '\\':
          case '/':
            out->push_back(e);
            break;
          case 'b':
            out->push_back('\b');
            break;
          case 'f':
            out->push_back('\f');
            break;
          case 'n':
            out->push_back('\n');
            break;
          case 'r':
            out->push_back('\r');
            break;
          case 't':
            out->push_back('\t');
            break;
          case 'u': {
            uint32_t r;
            if (!Hex4(&r)) return false;
            if (r >= 0xD800 && r < 0xDC00) {
              // A high surrogate pairs with a following \uDC00-\uDFFF.
              uint32_t lo;
              size_t save = pos_;
              if (pos_ + 1 < s_.size() && s_[pos_] == '\\' &&
                  s_[pos_ + 1] == 'u') {
                pos_ += 2;
                if (Hex4(&lo) && lo >= 0xDC00 && lo < 0xE000) {
                  r = 0x10000 + ((r - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                  pos_ = save;
                  r = text::kRuneError;
                }
              } else {
                r = text::kRuneError;
              }
            } else if (r >= 0xDC00 && r < 0xE000) {
              r = text::kRuneError;
            }
            text::AppendRune(out, r);
            break;
          }
          default:
            return false;
        }
        continue;
      }
      size_t w;
      uint32_t r = text::DecodeRune(s_, pos_, &w);
      if (r == text::kRuneError && w == 1) {
        text::AppendRune(out, text::kRuneError);
      } else {
        out->append(s_.data() + pos_, w);
      }
      pos_ += w;
    }
    return false;
  }

  bool Literal(absl::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool Digits() {
    size_t start = pos_;
    while (pos_ < s_.size() && absl::ascii_isdigit(s_[pos_])) ++pos_;
    return pos_ > start;
  }

  bool Number() {
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (pos_ >= s_.size()) return false;
    if (s_[pos_] == '0') {
      ++pos_;
    } else if (!Digits()) {
      return false;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!Digits()) return false;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!Digits()) return false;
    }
    return true;
  }

  bool SkipValue(int depth) {
    if (depth > 1000) return false;
    SkipWs();
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (c == '"') {
      std::string ignored;
      return ReadString(&ignored);
    }
    if (c == '[' || c == '{') {
      const char close = c == '[' ? ']' : '}';
      ++pos_;
      SkipWs();
      if (pos_ < s_.size() && s_[pos_] == close) {
        ++pos_;
        return true;
      }
      for (;;) {
        SkipWs();
        if (close == '}') {
          if (pos_ >= s_.size() || s_[pos_] != '"') return false;
          std::string key;
          if (!ReadString(&key)) return false;
          SkipWs();
          if (pos_ >= s_.size() || s_[pos_] != ':') return false;
          ++pos_;
        }
        if (!SkipValue(depth + 1)) return false;
        SkipWs();
        if (pos_ >= s_.size()) return false;
        if (s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (s_[pos_] == close) {
          ++pos_;
          return true;
        }
        return false;
      }
    }
    if (c == 't') return Literal("true");
    if (c == 'f') return Literal("false");
    if (c == 'n') return Literal("null");
    return Number();
  }

  absl::string_view s_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// Argument parsers, one per instruction family (BuildKit's line parsers).

struct ParsedArgs {
  std::vector<std::string> args;
  bool json = false;
  std::vector<Node> children;
};

constexpr char kNotStringArray[] =
    "dockerfile parse error: JSON arrays must contain only strings";

// Splits on runs of [\t\v\f\r ].
std::vector<std::string> SplitBlanks(absl::string_view s, int max_parts) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    if (max_parts > 0 && static_cast<int>(parts.size()) == max_parts - 1) {
      parts.emplace_back(s.substr(pos));
      break;
    }
    size_t i = pos;
    while (i < s.size() && !text::IsBlank(s[i])) ++i;
    parts.emplace_back(s.substr(pos, i - pos));
    if (i >= s.size()) break;
    size_t j = i;
    while (j < s.size() && text::IsBlank(s[j])) ++j;
    pos = j;
  }
  return parts;
}

absl::Status ParseWhitespaceDelimited(absl::string_view rest, ParsedArgs* out) {
  if (rest.empty()) return absl::OkStatus();
  out->args = SplitBlanks(rest, -1);
  return absl::OkStatus();
}

absl::Status ParseString(absl::string_view rest, ParsedArgs* out) {
  if (!rest.empty()) out->args.emplace_back(rest);
  return absl::OkStatus();
}

// 1: parsed as JSON; 0: not JSON; error: JSON but not a string array.
absl::StatusOr<bool> ParseJson(absl::string_view rest, ParsedArgs* out) {
  rest = text::TrimLeftSpace(rest);
  if (rest.empty() || rest[0] != '[') return false;
  JsonReader reader(rest);
  std::vector<std::string> values;
  switch (reader.ReadStringArray(&values)) {
    case JsonReader::Result::kInvalid:
      return false;
    case JsonReader::Result::kNotStringArray:
      return absl::InvalidArgumentError(kNotStringArray);
    case JsonReader::Result::kStringArray:
      break;
  }
  out->args = std::move(values);
  out->json = true;
  return true;
}

absl::Status ParseMaybeJson(absl::string_view rest, ParsedArgs* out) {
  if (rest.empty()) return absl::OkStatus();
  absl::StatusOr<bool> json = ParseJson(rest, out);
  if (!json.ok()) return json.status();
  if (!*json) out->args = {std::string(rest)};
  return absl::OkStatus();
}

absl::Status ParseMaybeJsonToList(absl::string_view rest, ParsedArgs* out) {
  absl::StatusOr<bool> json = ParseJson(rest, out);
  if (!json.ok()) return json.status();
  if (*json) return absl::OkStatus();
  return ParseWhitespaceDelimited(rest, out);
}

// Words separated by whitespace, quotes and escapes kept (they are removed
// later, by expansion).
std::vector<std::string> ParseWords(absl::string_view rest, char escape) {
  enum { kSpaces, kWord, kQuote } phase = kSpaces;
  std::vector<std::string> words;
  std::string word;
  uint32_t quote = 0;
  bool blank_ok = false;
  size_t pos = 0;
  while (true) {
    uint32_t ch = 0;
    size_t w = 0;
    const bool at_end = pos >= rest.size();
    if (!at_end) ch = text::DecodeRune(rest, pos, &w);
    if (phase == kSpaces) {
      if (at_end) break;
      if (text::IsSpace(ch)) {
        pos += w;
        continue;
      }
      phase = kWord;
    }
    if (at_end) {
      if (blank_ok || !word.empty()) words.push_back(word);
      break;
    }
    absl::string_view raw = rest.substr(pos, w);
    if (phase == kWord) {
      if (text::IsSpace(ch)) {
        phase = kSpaces;
        if (blank_ok || !word.empty()) words.push_back(word);
        word.clear();
        blank_ok = false;
        pos += w;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kQuote;
      }
      if (ch == static_cast<unsigned char>(escape)) {
        if (pos + w == rest.size()) {
          pos += w;
          continue;  // an escape token at the end of the line is dropped
        }
        // Unquoted: keep the escape and the next character, even a quote.
        word.append(raw.data(), raw.size());
        pos += w;
        text::DecodeRune(rest, pos, &w);
        raw = rest.substr(pos, w);
      }
      word.append(raw.data(), raw.size());
      pos += w;
      continue;
    }
    // kQuote
    if (ch == quote) phase = kWord;
    if (ch == static_cast<unsigned char>(escape) && quote != '\'') {
      if (pos + w == rest.size()) {
        phase = kWord;
        pos += w;
        continue;
      }
      word.append(raw.data(), raw.size());
      pos += w;
      text::DecodeRune(rest, pos, &w);
      raw = rest.substr(pos, w);
    }
    word.append(raw.data(), raw.size());
    pos += w;
  }
  return words;
}

// ENV and LABEL: `KEY value` (old form) or `k=v k2=v2`.
absl::Status ParseNameVal(absl::string_view rest, absl::string_view keyword,
                          char escape, ParsedArgs* out) {
  std::vector<std::string> words = ParseWords(rest, escape);
  if (words.empty()) return absl::OkStatus();
  if (words[0].find('=') == std::string::npos) {
    std::vector<std::string> parts = SplitBlanks(rest, 2);
    if (parts.size() < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(keyword, " must have two arguments"));
    }
    out->args = {parts[0], parts[1], ""};
    return absl::OkStatus();
  }
  for (const std::string& word : words) {
    size_t eq = word.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("Syntax error - can't find = in ", GoQuote(word),
                       ". Must be of the form: name=value"));
    }
    out->args.push_back(word.substr(0, eq));
    out->args.push_back(word.substr(eq + 1));
    out->args.push_back("=");
  }
  return absl::OkStatus();
}

// HEALTHCHECK: a type word, then a command like CMD's.
absl::Status ParseHealthConfig(absl::string_view rest, ParsedArgs* out) {
  size_t sep = 0;
  while (sep < rest.size() &&
         !text::IsSpace(static_cast<unsigned char>(rest[sep]))) {
    ++sep;
  }
  size_t next = sep;
  while (next < rest.size() &&
         text::IsSpace(static_cast<unsigned char>(rest[next]))) {
    ++next;
  }
  if (sep == 0) return absl::OkStatus();
  ParsedArgs cmd;
  absl::Status st = ParseMaybeJson(rest.substr(next), &cmd);
  if (!st.ok()) return st;
  out->args.emplace_back(rest.substr(0, sep));
  for (std::string& a : cmd.args) out->args.push_back(std::move(a));
  out->json = cmd.json;
  return absl::OkStatus();
}

absl::StatusOr<Node> NodeFromLine(absl::string_view line, char escape);

absl::Status ParseSubCommand(absl::string_view rest, char escape,
                             ParsedArgs* out) {
  if (rest.empty()) return absl::OkStatus();
  absl::StatusOr<Node> child = NodeFromLine(rest, escape);
  if (!child.ok()) return child.status();
  out->children.push_back(std::move(*child));
  return absl::OkStatus();
}

const std::set<std::string>& KnownInstructions() {
  static const auto* known = new std::set<std::string>{
      "add",    "arg",   "cmd",         "copy",  "entrypoint", "env",
      "expose", "from",  "healthcheck", "label", "maintainer", "onbuild",
      "run",    "shell", "stopsignal",  "user",  "volume",     "workdir"};
  return *known;
}

absl::Status DispatchArgs(const std::string& cmd, absl::string_view rest,
                          char escape, ParsedArgs* out) {
  if (cmd == "add" || cmd == "copy" || cmd == "volume") {
    return ParseMaybeJsonToList(rest, out);
  }
  if (cmd == "arg") {
    out->args = ParseWords(rest, escape);
    return absl::OkStatus();
  }
  if (cmd == "cmd" || cmd == "entrypoint" || cmd == "run" || cmd == "shell") {
    return ParseMaybeJson(rest, out);
  }
  if (cmd == "env") return ParseNameVal(rest, "ENV", escape, out);
  if (cmd == "label") return ParseNameVal(rest, "LABEL", escape, out);
  if (cmd == "expose" || cmd == "from") {
    return ParseWhitespaceDelimited(rest, out);
  }
  if (cmd == "healthcheck") return ParseHealthConfig(rest, out);
  if (cmd == "maintainer" || cmd == "stopsignal" || cmd == "user" ||
      cmd == "workdir") {
    return ParseString(rest, out);
  }
  if (cmd == "onbuild") return ParseSubCommand(rest, escape, out);
  // Unknown instructions parse to one empty argument, as in BuildKit's AST;
  // Validate() rejects them.
  out->args = {""};
  return absl::OkStatus();
}

absl::StatusOr<Node> NodeFromLine(absl::string_view line, char escape) {
  absl::string_view trimmed = text::TrimSpace(line);
  size_t i = 0;
  while (i < trimmed.size() && !text::IsBlank(trimmed[i])) ++i;
  Node node;
  node.cmd_as_written = std::string(trimmed.substr(0, i));
  node.cmd = absl::AsciiStrToLower(node.cmd_as_written);
  node.original = std::string(line);
  std::string rest;
  if (i < trimmed.size()) {
    size_t j = i;
    while (j < trimmed.size() && text::IsBlank(trimmed[j])) ++j;
    ExtractBuilderFlags(trimmed.substr(j), &node.flags, &rest);
  }
  absl::string_view args = text::TrimSpace(rest);
  ParsedArgs parsed;
  absl::Status st = DispatchArgs(node.cmd, args, escape, &parsed);
  if (!st.ok()) return st;
  node.args = std::move(parsed.args);
  node.json = parsed.json;
  node.children = std::move(parsed.children);
  return node;
}

bool CanContainHeredoc(const Node& node) {
  const Node* n = &node;
  if (n->cmd == "onbuild" && !n->children.empty()) n = &n->children[0];
  if (n->cmd != "add" && n->cmd != "copy" && n->cmd != "run") return false;
  return !n->json;
}

absl::StatusOr<std::vector<Heredoc>> HeredocsFromLine(absl::string_view line) {
  ShellLex lex('\\');
  lex.set_raw_quotes(true);
  lex.set_raw_escapes(true);
  absl::StatusOr<std::vector<std::string>> words = lex.ProcessWords(line, {});
  std::vector<Heredoc> docs;
  if (!words.ok()) return docs;  // unbalanced quotes: no heredocs
  for (const std::string& word : *words) {
    absl::StatusOr<std::optional<Heredoc>> doc = ParseHeredocWord(word);
    if (!doc.ok()) return doc.status();
    if (doc->has_value()) docs.push_back(std::move(**doc));
  }
  return docs;
}

// ---------------------------------------------------------------------------
// Dump helpers.

void DumpNodeTo(const Node& node, std::string* out) {
  *out += node.cmd;
  if (!node.flags.empty()) {
    *out += " [";
    for (size_t i = 0; i < node.flags.size(); ++i) {
      if (i > 0) *out += " ";
      *out += GoQuote(node.flags[i]);
    }
    *out += "]";
  }
  for (const Node& child : node.children) {
    *out += " (";
    DumpNodeTo(child, out);
    *out += ")";
  }
  for (const std::string& arg : node.args) {
    *out += " ";
    *out += GoQuote(arg);
  }
}

nlohmann::json NodeJson(const Node& node) {
  nlohmann::json j;
  j["cmd"] = node.cmd;
  j["flags"] = node.flags;
  j["args"] = node.args;
  j["json"] = node.json;
  j["start_line"] = node.start_line;
  j["end_line"] = node.end_line;
  j["original"] = node.original;
  nlohmann::json docs = nlohmann::json::array();
  for (const Heredoc& h : node.heredocs) {
    docs.push_back({{"name", h.name},
                    {"content", h.content},
                    {"expand", h.expand},
                    {"chomp_tabs", h.chomp_tabs}});
  }
  j["heredocs"] = docs;
  nlohmann::json children = nlohmann::json::array();
  for (const Node& c : node.children) children.push_back(NodeJson(c));
  j["children"] = children;
  return j;
}

// ---------------------------------------------------------------------------
// Validation (BuildKit's instruction parser checks).

absl::Status CheckArgs(const Node& node);

absl::Status ValidateHealthcheck(const Node& node) {
  if (node.args.empty()) {
    return absl::InvalidArgumentError(
        "HEALTHCHECK requires at least one argument");
  }
  std::string typ = absl::AsciiStrToUpper(node.args[0]);
  if (typ == "NONE") {
    if (node.args.size() != 1) {
      return absl::InvalidArgumentError("HEALTHCHECK NONE takes no arguments");
    }
    return absl::OkStatus();
  }
  if (typ != "CMD") {
    return absl::InvalidArgumentError(absl::StrCat(
        "Unknown type ", GoQuote(typ), " in HEALTHCHECK (try CMD)"));
  }
  if (node.args.size() < 2 || (!node.json && node.args[1].empty())) {
    return absl::InvalidArgumentError("Missing command after HEALTHCHECK CMD");
  }
  return absl::OkStatus();
}

bool ValidStageName(absl::string_view name) {
  // ^[a-z][a-z0-9-_.]*$ after lower-casing.
  std::string lower = absl::AsciiStrToLower(name);
  if (lower.empty() || !(lower[0] >= 'a' && lower[0] <= 'z')) return false;
  for (char c : lower) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

absl::Status CheckArgs(const Node& node) {
  const std::string& c = node.cmd;
  const std::string upper = absl::AsciiStrToUpper(c);
  auto at_least_one = [&]() {
    return absl::InvalidArgumentError(
        absl::StrCat(upper, " requires at least one argument"));
  };
  auto exactly_one = [&]() {
    return absl::InvalidArgumentError(
        absl::StrCat(upper, " requires exactly one argument"));
  };
  if (KnownInstructions().count(c) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown instruction: ", node.cmd_as_written));
  }
  InstructionFlags flags = InstructionFlags::For(c);
  absl::Status st = flags.Parse(node.flags);
  if (!st.ok()) return st;

  if (c == "from") {
    if (node.args.size() != 1 && node.args.size() != 3) {
      return absl::InvalidArgumentError(
          "FROM requires either one or three arguments");
    }
    if (node.args.size() == 3) {
      if (!absl::EqualsIgnoreCase(node.args[1], "as")) {
        return absl::InvalidArgumentError(
            "FROM requires either one or three arguments");
      }
      if (!ValidStageName(node.args[2])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "invalid name for build stage: ", GoQuote(node.args[2]),
            ", name can't start with a number or contain symbols"));
      }
    }
  } else if (c == "run") {
    if (node.args.empty() && node.heredocs.empty()) return at_least_one();
  } else if (c == "copy" || c == "add") {
    if (node.args.size() < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          upper,
          " requires at least two arguments, but only one was provided. "
          "Destination could not be determined."));
    }
  } else if (c == "env" || c == "label") {
    if (node.args.empty()) return at_least_one();
    for (size_t i = 0; i < node.args.size(); i += 3) {
      if (node.args[i].empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(upper, " names can not be blank"));
      }
    }
  } else if (c == "arg") {
    if (node.args.empty()) return at_least_one();
    for (const std::string& a : node.args) {
      if (a.empty() || a[0] == '=') {
        return absl::InvalidArgumentError("ARG names can not be blank");
      }
    }
  } else if (c == "maintainer" || c == "workdir" || c == "user" ||
             c == "stopsignal") {
    if (node.args.size() != 1) return exactly_one();
  } else if (c == "expose") {
    if (node.args.empty()) return at_least_one();
  } else if (c == "volume") {
    if (node.args.empty()) return at_least_one();
    for (const std::string& v : node.args) {
      if (text::TrimSpace(v).empty()) {
        return absl::InvalidArgumentError(
            "VOLUME specified can not be an empty string");
      }
    }
  } else if (c == "shell") {
    if (!node.json) {
      return absl::InvalidArgumentError(
          "SHELL requires the arguments to be in JSON form");
    }
    if (node.args.empty()) return at_least_one();
  } else if (c == "healthcheck") {
    return ValidateHealthcheck(node);
  } else if (c == "onbuild") {
    if (node.children.empty()) return at_least_one();
    const Node& child = node.children[0];
    if (child.cmd == "onbuild") {
      return absl::InvalidArgumentError(
          "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    }
    if (child.cmd == "from" || child.cmd == "maintainer") {
      return absl::InvalidArgumentError(
          absl::StrCat(absl::AsciiStrToUpper(child.cmd),
                       " isn't allowed as an ONBUILD trigger"));
    }
    return CheckArgs(child);
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------

void ExtractBuilderFlags(absl::string_view line,
                         std::vector<std::string>* flags, std::string* rest) {
  enum { kSpaces, kWord, kQuote } phase = kSpaces;
  std::string word;
  char quote = 0;
  bool blank_ok = false;
  rest->clear();
  for (size_t pos = 0; pos <= line.size(); ++pos) {
    const bool at_end = pos == line.size();
    char ch = at_end ? 0 : line[pos];
    if (phase == kSpaces) {
      if (at_end) break;
      if (text::IsSpace(static_cast<unsigned char>(ch))) continue;
      // Only a word starting with "--" is a flag.
      if (ch != '-' || pos + 1 == line.size() || line[pos + 1] != '-') {
        *rest = std::string(line.substr(pos));
        return;
      }
      phase = kWord;
    }
    if (at_end) {
      if (word != "--" && (blank_ok || !word.empty())) flags->push_back(word);
      break;
    }
    if (phase == kWord) {
      if (text::IsSpace(static_cast<unsigned char>(ch))) {
        phase = kSpaces;
        if (word == "--") {
          *rest = std::string(line.substr(pos));
          return;
        }
        if (blank_ok || !word.empty()) flags->push_back(word);
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kQuote;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == line.size()) continue;
        ch = line[++pos];
      }
      word.push_back(ch);
      continue;
    }
    // kQuote
    if (ch == quote) {
      phase = kWord;
      continue;
    }
    if (ch == '\\') {
      if (pos + 1 == line.size()) {
        phase = kWord;
        continue;
      }
      ch = line[++pos];
    }
    word.push_back(ch);
  }
}

absl::StatusOr<std::optional<Heredoc>> ParseHeredocWord(
    absl::string_view word) {
  // ^(\d*)<<(-?)([^<]*)$
  size_t i = 0;
  while (i < word.size() && absl::ascii_isdigit(word[i])) ++i;
  if (word.substr(i, 2) != "<<") return std::optional<Heredoc>();
  absl::string_view digits = word.substr(0, i);
  i += 2;
  bool chomp = false;
  if (i < word.size() && word[i] == '-') {
    chomp = true;
    ++i;
  }
  absl::string_view rest = word.substr(i);
  if (rest.find('<') != absl::string_view::npos || rest.empty()) {
    return std::optional<Heredoc>();
  }
  // Lex the delimiter with and without quote removal: a difference in quote
  // count means part of it was quoted, which turns expansion off.
  ShellLex lex('\\');
  lex.set_skip_unset_env(true);
  absl::StatusOr<std::vector<std::string>> words = lex.ProcessWords(rest, {});
  if (!words.ok()) return words.status();
  if (words->size() != 1) return std::optional<Heredoc>();
  lex.set_raw_quotes(true);
  absl::StatusOr<std::vector<std::string>> raw = lex.ProcessWords(rest, {});
  if (!raw.ok()) return raw.status();
  if (raw->size() != words->size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "internal lexing of heredoc produced inconsistent results: ", rest));
  }
  auto quotes = [](const std::string& s) {
    return std::count(s.begin(), s.end(), '\'') +
           std::count(s.begin(), s.end(), '"');
  };
  Heredoc doc;
  doc.name = (*words)[0];
  doc.expand = quotes((*words)[0]) == quotes((*raw)[0]);
  doc.chomp_tabs = chomp;
  int fd = 0;
  for (char c : digits) {
    fd = fd * 10 + (c - '0');
    if (fd > 1 << 20) break;
  }
  doc.fd = fd;
  return std::optional<Heredoc>(std::move(doc));
}

std::string ChompHeredocContent(absl::string_view content) {
  std::string out;
  out.reserve(content.size());
  bool line_start = true;
  for (char c : content) {
    if (line_start && c == '\t') continue;
    line_start = c == '\n';
    out.push_back(c);
  }
  return out;
}

std::string HeredocBody(const Heredoc& heredoc) {
  return heredoc.chomp_tabs ? ChompHeredocContent(heredoc.content)
                            : heredoc.content;
}

std::string GoQuote(absl::string_view s) {
  std::string out = "\"";
  size_t pos = 0;
  while (pos < s.size()) {
    size_t w;
    uint32_t r = text::DecodeRune(s, pos, &w);
    if (r == text::kRuneError && w == 1) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(s[pos]));
      out += buf;
      pos += 1;
      continue;
    }
    if (r == '"' || r == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(r));
    } else if (text::IsPrint(r)) {
      out.append(s.data() + pos, w);
    } else {
      char buf[16];
      switch (r) {
        case '\a':
          out += "\\a";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\v':
          out += "\\v";
          break;
        default:
          if (r < 0x20 || r == 0x7F) {
            snprintf(buf, sizeof(buf), "\\x%02x", r);
          } else if (r < 0x10000) {
            snprintf(buf, sizeof(buf), "\\u%04x", r);
          } else {
            snprintf(buf, sizeof(buf), "\\U%08x", r);
          }
          out += buf;
      }
    }
    pos += w;
  }
  out.push_back('"');
  return out;
}

absl::StatusOr<ParsedDockerfile> ParseAst(absl::string_view text,
                                          absl::string_view filename) {
  ParsedDockerfile df;
  df.filename = std::string(filename);
  DirectiveParser directives(&df.directives);
  std::vector<absl::string_view> lines = SplitLines(text);
  size_t next = 0;
  int current_line = 0;
  const std::string file(filename);

  while (next < lines.size()) {
    absl::string_view raw = lines[next++];
    if (current_line == 0 && absl::StartsWith(raw, "\xEF\xBB\xBF")) {
      raw.remove_prefix(3);
    }
    absl::string_view stripped = text::TrimLeftSpace(TrimNewline(raw));
    ++current_line;
    absl::Status st = directives.Line(stripped);
    if (!st.ok()) return ErrorAt(file, current_line, st.message());
    if (IsComment(stripped)) stripped = absl::string_view();
    const char escape = df.directives.escape;

    const int start_line = current_line;
    std::string line;
    bool continued = TrimContinuation(stripped, escape, &line);
    if (!continued && line.empty()) continue;

    bool empty_continuation = false;
    while (continued && next < lines.size()) {
      absl::string_view cont_raw = lines[next++];
      absl::string_view cont = TrimNewline(cont_raw);
      ++current_line;
      st = directives.Line(text::TrimLeftSpace(cont));
      if (!st.ok()) return ErrorAt(file, current_line, st.message());
      if (IsComment(cont_raw)) continue;
      if (IsEmptyContinuationLine(cont)) {
        empty_continuation = true;
        continue;
      }
      std::string piece;
      continued = TrimContinuation(cont, escape, &piece);
      line += piece;
    }
    if (empty_continuation) {
      df.warnings.push_back(absl::StrCat(
          file, ":", current_line, ": Empty continuation line found in: ", line,
          " (empty continuation lines will become errors in a future "
          "release)"));
    }

    absl::StatusOr<Node> node = NodeFromLine(line, escape);
    if (!node.ok()) return ErrorAt(file, start_line, node.status().message());

    if (CanContainHeredoc(*node) && absl::StrContains(line, "<<")) {
      absl::StatusOr<std::vector<Heredoc>> docs = HeredocsFromLine(line);
      if (!docs.ok()) return ErrorAt(file, start_line, docs.status().message());
      for (Heredoc& doc : *docs) {
        bool terminated = false;
        while (next < lines.size()) {
          absl::string_view body = lines[next++];
          ++current_line;
          absl::string_view candidate = TrimNewline(body);
          if (doc.chomp_tabs) {
            while (!candidate.empty() && candidate[0] == '\t') {
              candidate.remove_prefix(1);
            }
          }
          if (candidate == doc.name) {
            terminated = true;
            break;
          }
          doc.content.append(body.data(), body.size());
        }
        if (!terminated) {
          return ErrorAt(file, start_line,
                         absl::StrCat("unterminated heredoc ", doc.name));
        }
        node->heredocs.push_back(std::move(doc));
      }
      // The heredocs of ONBUILD's nested instruction belong to it as well.
      if (node->cmd == "onbuild" && !node->children.empty()) {
        node->children[0].heredocs = node->heredocs;
      }
    }
    node->start_line = start_line;
    node->end_line = current_line;
    for (Node& child : node->children) {
      child.start_line = start_line;
      child.end_line = current_line;
    }
    df.nodes.push_back(std::move(*node));
  }
  if (df.nodes.empty()) {
    return ErrorAt(file, current_line, "file with no instructions");
  }
  return df;
}

absl::Status Validate(const ParsedDockerfile& df) {
  for (const Node& node : df.nodes) {
    absl::Status st = CheckArgs(node);
    if (!st.ok()) return ErrorAt(df.filename, node.start_line, st.message());
  }
  return absl::OkStatus();
}

absl::StatusOr<ParsedDockerfile> Parse(absl::string_view text,
                                       absl::string_view filename) {
  absl::StatusOr<ParsedDockerfile> df = ParseAst(text, filename);
  if (!df.ok()) return df.status();
  absl::Status st = Validate(*df);
  if (!st.ok()) return st;
  return df;
}

std::string DumpNode(const Node& node) {
  std::string out;
  DumpNodeTo(node, &out);
  return out;
}

std::string DumpAst(const ParsedDockerfile& df) {
  std::string out;
  for (const Node& node : df.nodes) {
    out += "(";
    DumpNodeTo(node, &out);
    out += ")\n";
  }
  return out;
}

std::string DumpJson(const ParsedDockerfile& df) {
  nlohmann::json j;
  j["filename"] = df.filename;
  j["directives"] = {{"syntax", df.directives.syntax},
                     {"escape", std::string(1, df.directives.escape)},
                     {"check", df.directives.check}};
  nlohmann::json nodes = nlohmann::json::array();
  for (const Node& n : df.nodes) nodes.push_back(NodeJson(n));
  j["instructions"] = nodes;
  j["warnings"] = df.warnings;
  // Invalid UTF-8 is replaced rather than thrown on.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace longshore::dockerfile
