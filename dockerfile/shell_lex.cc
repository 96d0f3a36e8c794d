#include "dockerfile/shell_lex.h"

#include <map>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dockerfile/text_util.h"

namespace longshore::dockerfile {
namespace {

constexpr int32_t kEof = -1;

// Rune-at-a-time reader over the word. Runes are handed out with their raw
// bytes so that output keeps the input's bytes even when they are not valid
// UTF-8.
class Scanner {
 public:
  explicit Scanner(absl::string_view s) : s_(s) {}

  int32_t Peek() const {
    if (pos_ >= s_.size()) return kEof;
    size_t w;
    return static_cast<int32_t>(text::DecodeRune(s_, pos_, &w));
  }
  // Consumes one rune; `raw` receives its bytes.
  int32_t Next(absl::string_view* raw = nullptr) {
    if (pos_ >= s_.size()) {
      if (raw != nullptr) *raw = absl::string_view();
      return kEof;
    }
    size_t w;
    auto r = static_cast<int32_t>(text::DecodeRune(s_, pos_, &w));
    if (raw != nullptr) *raw = s_.substr(pos_, w);
    pos_ += w;
    return r;
  }

 private:
  absl::string_view s_;
  size_t pos_ = 0;
};

// Accumulates fields the way BuildKit splits an unquoted word: whitespace
// that is not quoted or escaped ends a field.
class Fields {
 public:
  void AddChar(int32_t ch, absl::string_view raw) {
    if (text::IsSpace(ch)) {
      if (in_word_ && !word_.empty()) {
        words_.push_back(std::move(word_));
        word_.clear();
        in_word_ = false;
      }
      return;
    }
    AddRaw(raw);
  }
  void AddRaw(absl::string_view raw) {
    word_.append(raw.data(), raw.size());
    in_word_ = true;
  }
  void AddString(absl::string_view s) {
    size_t pos = 0;
    while (pos < s.size()) {
      size_t w;
      uint32_t r = text::DecodeRune(s, pos, &w);
      AddChar(static_cast<int32_t>(r), s.substr(pos, w));
      pos += w;
    }
  }
  std::vector<std::string> Take() {
    if (!word_.empty()) {
      words_.push_back(std::move(word_));
      word_.clear();
      in_word_ = false;
    }
    return std::move(words_);
  }

 private:
  std::string word_;
  std::vector<std::string> words_;
  bool in_word_ = false;
};

bool IsSpecialParam(int32_t ch) {
  switch (ch) {
    case '@':
    case '*':
    case '#':
    case '?':
    case '-':
    case '$':
    case '!':
    case '0':
      return true;
    default:
      return false;
  }
}

class ShellWord {
 public:
  ShellWord(absl::string_view word,
            const std::map<std::string, std::string>& env, char escape,
            bool raw_quotes, bool raw_escapes, bool skip_unset,
            bool skip_quotes, ShellWordResult* result)
      : scanner_(word),
        env_(env),
        escape_(static_cast<unsigned char>(escape)),
        raw_quotes_(raw_quotes),
        raw_escapes_(raw_escapes),
        skip_unset_(skip_unset),
        skip_quotes_(skip_quotes),
        result_(result) {}

  absl::Status Process() {
    std::string word;
    std::vector<std::string> words;
    absl::Status st = ProcessStopOn(kEof, raw_escapes_, &word, &words);
    if (!st.ok()) return st;
    result_->word = std::move(word);
    result_->words = std::move(words);
    return absl::OkStatus();
  }

 private:
  // Processes up to `stop` (consumed) or the end of the word.
  absl::Status ProcessStopOn(int32_t stop, bool raw_escapes, std::string* out,
                             std::vector<std::string>* words_out) {
    const bool saved_raw_escapes = raw_escapes_;
    raw_escapes_ = raw_escapes;
    absl::Status st = ProcessStopOnImpl(stop, out, words_out);
    raw_escapes_ = saved_raw_escapes;
    return st;
  }

  absl::Status ProcessStopOnImpl(int32_t stop, std::string* out,
                                 std::vector<std::string>* words_out) {
    std::string result;
    Fields words;
    while (scanner_.Peek() != kEof) {
      int32_t ch = scanner_.Peek();
      if (stop != kEof && ch == stop) {
        scanner_.Next();
        *out = std::move(result);
        if (words_out != nullptr) *words_out = words.Take();
        return absl::OkStatus();
      }
      if (ch == '$') {
        std::string tmp;
        absl::Status st = ProcessDollar(&tmp);
        if (!st.ok()) return st;
        result += tmp;
        words.AddString(tmp);
        continue;
      }
      if (!skip_quotes_ && (ch == '\'' || ch == '"')) {
        std::string tmp;
        absl::Status st =
            ch == '\'' ? ProcessSingleQuote(&tmp) : ProcessDoubleQuote(&tmp);
        if (!st.ok()) return st;
        result += tmp;
        words.AddRaw(tmp);
        continue;
      }
      absl::string_view raw;
      ch = scanner_.Next(&raw);
      if (ch == escape_) {
        if (raw_escapes_) {
          words.AddRaw(raw);
          result.append(raw.data(), raw.size());
        }
        // The escape token escapes the next character; at the end of the
        // word it is dropped.
        ch = scanner_.Next(&raw);
        if (ch == kEof) break;
        words.AddRaw(raw);
      } else {
        words.AddChar(ch, raw);
      }
      result.append(raw.data(), raw.size());
    }
    if (stop != kEof) {
      std::string s;
      text::AppendRune(&s, static_cast<uint32_t>(stop));
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected end of statement while looking for matching ", s));
    }
    *out = std::move(result);
    if (words_out != nullptr) *words_out = words.Take();
    return absl::OkStatus();
  }

  // Everything between single quotes is literal; a single quote cannot be
  // escaped inside them.
  absl::Status ProcessSingleQuote(std::string* out) {
    absl::string_view raw;
    scanner_.Next(&raw);
    if (raw_quotes_) out->append(raw.data(), raw.size());
    for (;;) {
      int32_t ch = scanner_.Next(&raw);
      if (ch == kEof) {
        return absl::InvalidArgumentError(
            "unexpected end of statement while looking for matching "
            "single-quote");
      }
      if (ch == '\'') {
        if (raw_quotes_) out->append(raw.data(), raw.size());
        return absl::OkStatus();
      }
      out->append(raw.data(), raw.size());
    }
  }

  // Inside double quotes `$` expands, and the escape token escapes only `"`,
  // `$` and itself; before anything else it stays literal.
  absl::Status ProcessDoubleQuote(std::string* out) {
    absl::string_view raw;
    scanner_.Next(&raw);
    if (raw_quotes_) out->append(raw.data(), raw.size());
    for (;;) {
      int32_t ch = scanner_.Peek();
      if (ch == kEof) {
        return absl::InvalidArgumentError(
            "unexpected end of statement while looking for matching "
            "double-quote");
      }
      if (ch == '"') {
        scanner_.Next(&raw);
        if (raw_quotes_) out->append(raw.data(), raw.size());
        return absl::OkStatus();
      }
      if (ch == '$') {
        std::string value;
        absl::Status st = ProcessDollar(&value);
        if (!st.ok()) return st;
        *out += value;
        continue;
      }
      ch = scanner_.Next(&raw);
      if (ch == escape_) {
        if (raw_escapes_) out->append(raw.data(), raw.size());
        int32_t next = scanner_.Peek();
        if (next == kEof) continue;  // reported as unterminated above
        if (next == '"' || next == '$' || next == escape_) {
          scanner_.Next(&raw);
        }
      }
      out->append(raw.data(), raw.size());
    }
  }

  std::optional<std::string> GetEnv(const std::string& name) {
    auto it = env_.find(name);
    if (it == env_.end()) {
      result_->unmatched.insert(name);
      return std::nullopt;
    }
    result_->matched.insert(name);
    return it->second;
  }

  // A name: letters, digits and '_', or all digits (positional), or one
  // special parameter character.
  std::string ProcessName() {
    std::string name;
    absl::string_view raw;
    while (scanner_.Peek() != kEof) {
      int32_t ch = scanner_.Peek();
      if (name.empty() && text::IsDigit(ch)) {
        while (scanner_.Peek() != kEof && text::IsDigit(scanner_.Peek())) {
          scanner_.Next(&raw);
          name.append(raw.data(), raw.size());
        }
        return name;
      }
      if (name.empty() && IsSpecialParam(ch)) {
        scanner_.Next(&raw);
        return std::string(raw);
      }
      if (!text::IsLetter(ch) && !text::IsDigit(ch) && ch != '_') break;
      scanner_.Next(&raw);
      name.append(raw.data(), raw.size());
    }
    return name;
  }

  absl::Status ProcessDollar(std::string* out) {
    scanner_.Next();  // '$'
    if (scanner_.Peek() != '{') {
      std::string name = ProcessName();
      if (name.empty()) {
        *out = "$";
        return absl::OkStatus();
      }
      std::optional<std::string> value = GetEnv(name);
      if (!value.has_value() && skip_unset_) {
        *out = absl::StrCat("$", name);
        return absl::OkStatus();
      }
      *out = value.value_or("");
      return absl::OkStatus();
    }
    scanner_.Next();  // '{'
    switch (scanner_.Peek()) {
      case kEof:
        return absl::InvalidArgumentError("syntax error: missing '}'");
      case '{':
      case '}':
      case ':':
        return absl::InvalidArgumentError("syntax error: bad substitution");
      default:
        break;
    }
    std::string name = ProcessName();
    absl::string_view raw;
    int32_t ch = scanner_.Next(&raw);
    std::string modifier(raw);
    bool null_is_unset = false;
    switch (ch) {
      case '}': {
        std::optional<std::string> value = GetEnv(name);
        if (!value.has_value() && skip_unset_) {
          *out = absl::StrCat("${", name, "}");
          return absl::OkStatus();
        }
        *out = value.value_or("");
        return absl::OkStatus();
      }
      case '/':
        return ProcessReplace(name, out);
      case ':':
        null_is_unset = true;
        ch = scanner_.Next(&raw);
        modifier.append(raw.data(), raw.size());
        break;
      default:
        break;
    }
    if (ch != '+' && ch != '-' && ch != '?' && ch != '#' && ch != '%') {
      // Consume up to the closing brace so the message is about the modifier.
      return absl::InvalidArgumentError(absl::StrCat(
          "unsupported modifier (", modifier, ") in substitution"));
    }
    const bool pattern = ch == '#' || ch == '%';
    if (null_is_unset && pattern) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unsupported modifier (", modifier, ") in substitution"));
    }
    std::string word;
    absl::Status st = ProcessStopOn('}', pattern, &word, nullptr);
    if (!st.ok()) {
      if (scanner_.Peek() == kEof) {
        return absl::InvalidArgumentError("syntax error: missing '}'");
      }
      return st;
    }
    std::optional<std::string> value = GetEnv(name);
    if (!value.has_value() && skip_unset_) {
      *out = absl::StrCat("${", name, modifier, word, "}");
      return absl::OkStatus();
    }
    const bool set = value.has_value();
    const std::string v = value.value_or("");
    switch (ch) {
      case '-':
        *out = (!set || (null_is_unset && v.empty())) ? word : v;
        return absl::OkStatus();
      case '+':
        *out = (!set || (null_is_unset && v.empty())) ? "" : word;
        return absl::OkStatus();
      case '?':
        if (!set) {
          return absl::InvalidArgumentError(absl::StrCat(
              name, ": ", word.empty() ? "is not allowed to be unset" : word));
        }
        if (null_is_unset && v.empty()) {
          return absl::InvalidArgumentError(absl::StrCat(
              name, ": ", word.empty() ? "is not allowed to be empty" : word));
        }
        *out = v;
        return absl::OkStatus();
      default: {
        // '#'/'%' remove the shortest matching prefix/suffix, '##'/'%%' the
        // longest.
        bool greedy = false;
        if (!word.empty() && word[0] == static_cast<char>(ch)) {
          greedy = true;
          word.erase(0, 1);
        }
        *out = ch == '#' ? TrimPrefix(word, v, greedy)
                         : TrimSuffix(word, v, greedy);
        return absl::OkStatus();
      }
    }
  }

  // ${name/pattern/replacement} and ${name//pattern/replacement}.
  absl::Status ProcessReplace(const std::string& name, std::string* out) {
    bool all = false;
    if (scanner_.Peek() == '/') {
      scanner_.Next();
      all = true;
    }
    std::string pattern, replacement;
    absl::Status st = ProcessStopOn('/', true, &pattern, nullptr);
    if (!st.ok()) {
      if (scanner_.Peek() == kEof) {
        return absl::InvalidArgumentError("syntax error: missing '/' in ${}");
      }
      return st;
    }
    st = ProcessStopOn('}', true, &replacement, nullptr);
    if (!st.ok()) {
      if (scanner_.Peek() == kEof) {
        return absl::InvalidArgumentError("syntax error: missing '}'");
      }
      return st;
    }
    std::optional<std::string> value = GetEnv(name);
    if (!value.has_value() && skip_unset_) {
      *out = absl::StrCat("${", name, all ? "//" : "/", pattern, "/",
                          replacement, "}");
      return absl::OkStatus();
    }
    *out = Replace(pattern, replacement, value.value_or(""), all);
    return absl::OkStatus();
  }

  static std::vector<size_t> RuneBoundaries(absl::string_view s) {
    std::vector<size_t> b;
    size_t pos = 0;
    while (pos < s.size()) {
      b.push_back(pos);
      size_t w;
      text::DecodeRune(s, pos, &w);
      pos += w;
    }
    b.push_back(s.size());
    return b;
  }

  static std::string TrimPrefix(const std::string& pattern,
                                const std::string& value, bool greedy) {
    std::vector<size_t> b = RuneBoundaries(value);
    if (greedy) {
      for (size_t i = b.size(); i-- > 0;) {
        if (ShellPatternMatch(pattern,
                              absl::string_view(value).substr(0, b[i])))
          return value.substr(b[i]);
      }
    } else {
      for (size_t i = 0; i < b.size(); ++i) {
        if (ShellPatternMatch(pattern,
                              absl::string_view(value).substr(0, b[i])))
          return value.substr(b[i]);
      }
    }
    return value;
  }

  static std::string TrimSuffix(const std::string& pattern,
                                const std::string& value, bool greedy) {
    std::vector<size_t> b = RuneBoundaries(value);
    if (greedy) {
      for (size_t i = 0; i < b.size(); ++i) {
        if (ShellPatternMatch(pattern, absl::string_view(value).substr(b[i])))
          return value.substr(0, b[i]);
      }
    } else {
      for (size_t i = b.size(); i-- > 0;) {
        if (ShellPatternMatch(pattern, absl::string_view(value).substr(b[i])))
          return value.substr(0, b[i]);
      }
    }
    return value;
  }

  // Leftmost, then longest, match of `pattern`, replaced once or everywhere.
  static std::string Replace(const std::string& pattern,
                             const std::string& replacement,
                             const std::string& value, bool all) {
    if (pattern.empty()) return value;
    std::vector<size_t> b = RuneBoundaries(value);
    std::string out;
    size_t copied = 0;
    size_t i = 0;
    while (i + 1 < b.size()) {
      bool matched = false;
      // Longest candidate first; an empty match replaces nothing.
      for (size_t j = b.size() - 1; j > i; --j) {
        absl::string_view cand =
            absl::string_view(value).substr(b[i], b[j] - b[i]);
        if (ShellPatternMatch(pattern, cand)) {
          out.append(value, copied, b[i] - copied);
          out += replacement;
          copied = b[j];
          i = j;
          matched = true;
          break;
        }
      }
      if (matched) {
        if (!all) break;
        continue;
      }
      ++i;
    }
    out.append(value, copied, std::string::npos);
    return out;
  }

  Scanner scanner_;
  const std::map<std::string, std::string>& env_;
  int32_t escape_;
  bool raw_quotes_;
  bool raw_escapes_;
  bool skip_unset_;
  bool skip_quotes_;
  ShellWordResult* result_;
};

std::map<std::string, std::string> EnvMap(const std::vector<std::string>& env) {
  std::map<std::string, std::string> m;
  for (const std::string& kv : env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) {
      m[kv] = "";
    } else {
      m[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  return m;
}

// Matches one pattern element (a character, `?`, or a bracket expression) at
// pattern[*pi] against the rune `ch`; advances *pi past the element. Returns
// false for `*`, which the caller handles.
bool MatchElement(absl::string_view p, size_t* pi, absl::string_view ch_raw,
                  uint32_t ch) {
  size_t w;
  uint32_t pc = text::DecodeRune(p, *pi, &w);
  if (pc == '?') {
    *pi += w;
    return true;
  }
  if (pc == '[') {
    // Find the closing bracket; an unterminated '[' is an ordinary char.
    size_t j = *pi + 1;
    bool negate = false;
    if (j < p.size() && (p[j] == '!' || p[j] == '^')) {
      negate = true;
      ++j;
    }
    size_t start = j;
    size_t end = std::string::npos;
    for (size_t k = j; k < p.size(); ++k) {
      if (p[k] == '\\' && k + 1 < p.size()) {
        ++k;
        continue;
      }
      if (p[k] == ']' && k > start) {
        end = k;
        break;
      }
    }
    if (end != std::string::npos) {
      bool in = false;
      size_t k = start;
      while (k < end) {
        size_t lw;
        if (p[k] == '\\' && k + 1 < end) ++k;
        uint32_t lo = text::DecodeRune(p, k, &lw);
        k += lw;
        uint32_t hi = lo;
        if (k + 1 < end && p[k] == '-') {
          size_t hw;
          size_t h = k + 1;
          if (p[h] == '\\' && h + 1 < end) ++h;
          hi = text::DecodeRune(p, h, &hw);
          k = h + hw;
        }
        if (ch >= lo && ch <= hi) in = true;
      }
      *pi = end + 1;
      return in != negate;
    }
  }
  if (pc == '\\' && *pi + 1 < p.size()) {
    *pi += 1;
    pc = text::DecodeRune(p, *pi, &w);
  }
  absl::string_view lit = p.substr(*pi, w);
  *pi += w;
  return lit == ch_raw;
}

}  // namespace

bool ShellPatternMatch(absl::string_view p, absl::string_view s) {
  // Iterative glob match with a single backtrack point for the last '*'.
  size_t pi = 0, si = 0;
  size_t star_pi = std::string::npos, star_si = 0;
  while (si < s.size() || pi < p.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star_pi = ++pi;
      star_si = si;
      continue;
    }
    if (pi < p.size() && si < s.size()) {
      size_t w;
      uint32_t ch = text::DecodeRune(s, si, &w);
      size_t next_pi = pi;
      if (MatchElement(p, &next_pi, s.substr(si, w), ch)) {
        pi = next_pi;
        si += w;
        continue;
      }
    }
    if (star_pi != std::string::npos && star_si < s.size()) {
      size_t w;
      text::DecodeRune(s, star_si, &w);
      star_si += w;
      pi = star_pi;
      si = star_si;
      continue;
    }
    return false;
  }
  return true;
}

ShellLex::ShellLex(char escape) : escape_(escape) {}

absl::StatusOr<ShellWordResult> ShellLex::ProcessWordWithMatches(
    absl::string_view word, const std::vector<std::string>& env) const {
  std::map<std::string, std::string> m = EnvMap(env);
  ShellWordResult result;
  ShellWord sw(word, m, escape_, raw_quotes_, raw_escapes_, skip_unset_env_,
               skip_process_quotes_, &result);
  absl::Status st = sw.Process();
  if (!st.ok()) {
    std::string quoted = "\"";
    for (char c : word) {
      if (c == '"' || c == '\\') quoted.push_back('\\');
      quoted.push_back(c);
    }
    quoted.push_back('"');
    return absl::InvalidArgumentError(
        absl::StrCat("failed to process ", quoted, ": ", st.message()));
  }
  return result;
}

absl::StatusOr<std::string> ShellLex::ProcessWord(
    absl::string_view word, const std::vector<std::string>& env) const {
  auto r = ProcessWordWithMatches(word, env);
  if (!r.ok()) return r.status();
  return std::move(r->word);
}

absl::StatusOr<std::vector<std::string>> ShellLex::ProcessWords(
    absl::string_view word, const std::vector<std::string>& env) const {
  auto r = ProcessWordWithMatches(word, env);
  if (!r.ok()) return r.status();
  return std::move(r->words);
}

}  // namespace longshore::dockerfile
