#include "dockerfile/dockerignore.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "dockerfile/text_util.h"

namespace longshore::dockerfile {
namespace {

// Go's path.Clean for '/'-separated paths.
std::string CleanPath(absl::string_view p) {
  if (p.empty()) return ".";
  const bool rooted = p[0] == '/';
  std::vector<std::string> out;
  for (absl::string_view seg : absl::StrSplit(p, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!out.empty() && out.back() != "..") {
        out.pop_back();
      } else if (!rooted) {
        out.emplace_back("..");
      }
      continue;
    }
    out.emplace_back(seg);
  }
  std::string joined = absl::StrJoin(out, "/");
  if (rooted) return "/" + joined;
  return joined.empty() ? "." : joined;
}

// A pattern compiled to tokens, matched against a whole path with the
// meaning moby/patternmatcher gives it: `*` and `?` stop at '/', `**` spans
// directories (`**/` also matches nothing), `[...]` is a character class and
// `\` escapes the next character.
struct Token {
  enum Kind {
    kLiteral,
    kStar,
    kQuestion,
    kDoubleStarSlash,
    kDoubleStarEnd,
    kClass
  } kind;
  std::string literal;  // kLiteral: one rune's bytes
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // kClass
  bool negated = false;
};

absl::StatusOr<std::vector<Token>> Compile(absl::string_view p) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < p.size()) {
    char c = p[i];
    if (c == '*') {
      if (i + 1 < p.size() && p[i + 1] == '*') {
        i += 2;
        if (i < p.size() && p[i] == '/') ++i;
        tokens.push_back(
            {i >= p.size() ? Token::kDoubleStarEnd : Token::kDoubleStarSlash});
      } else {
        ++i;
        tokens.push_back({Token::kStar});
      }
      continue;
    }
    if (c == '?') {
      ++i;
      tokens.push_back({Token::kQuestion});
      continue;
    }
    if (c == '[') {
      Token t{Token::kClass};
      size_t j = i + 1;
      if (j < p.size() && p[j] == '^') {
        t.negated = true;
        ++j;
      }
      bool closed = false;
      bool first = true;
      while (j < p.size()) {
        if (p[j] == ']' && !first) {
          closed = true;
          ++j;
          break;
        }
        first = false;
        size_t w;
        if (p[j] == '\\' && j + 1 < p.size()) ++j;
        uint32_t lo = text::DecodeRune(p, j, &w);
        j += w;
        uint32_t hi = lo;
        if (j + 1 < p.size() && p[j] == '-' && p[j + 1] != ']') {
          ++j;
          if (p[j] == '\\' && j + 1 < p.size()) ++j;
          hi = text::DecodeRune(p, j, &w);
          j += w;
          if (hi < lo) {
            return absl::InvalidArgumentError(
                absl::StrCat("invalid character class range in ", p));
          }
        }
        t.ranges.emplace_back(lo, hi);
      }
      if (!closed) {
        return absl::InvalidArgumentError(
            absl::StrCat("syntax error in pattern: missing ']' in ", p));
      }
      tokens.push_back(std::move(t));
      i = j;
      continue;
    }
    if (c == '\\' && i + 1 < p.size()) ++i;
    size_t w;
    text::DecodeRune(p, i, &w);
    Token t{Token::kLiteral};
    t.literal = std::string(p.substr(i, w));
    tokens.push_back(std::move(t));
    i += w;
  }
  return tokens;
}

// Dynamic programming over (token, position): no exponential backtracking.
bool MatchTokens(const std::vector<Token>& tokens, absl::string_view s) {
  const size_t n = s.size();
  // reach[k] = positions in s reachable after consuming k tokens.
  std::vector<char> cur(n + 1, 0), next(n + 1, 0);
  cur[0] = 1;
  for (const Token& t : tokens) {
    std::fill(next.begin(), next.end(), 0);
    for (size_t pos = 0; pos <= n; ++pos) {
      if (!cur[pos]) continue;
      switch (t.kind) {
        case Token::kLiteral:
          if (s.substr(pos, t.literal.size()) == t.literal) {
            next[pos + t.literal.size()] = 1;
          }
          break;
        case Token::kStar: {
          size_t q = pos;
          next[q] = 1;
          while (q < n && s[q] != '/') next[++q] = 1;
          break;
        }
        case Token::kQuestion:
        case Token::kClass: {
          if (pos >= n || s[pos] == '/') break;
          size_t w;
          uint32_t r = text::DecodeRune(s, pos, &w);
          bool ok = true;
          if (t.kind == Token::kClass) {
            bool in = false;
            for (const auto& range : t.ranges) {
              if (r >= range.first && r <= range.second) in = true;
            }
            ok = in != t.negated;
          }
          if (ok) next[pos + w] = 1;
          break;
        }
        case Token::kDoubleStarEnd:
          for (size_t q = pos; q <= n; ++q) next[q] = 1;
          break;
        case Token::kDoubleStarSlash:
          // (.*/)? : nothing, or anything that ends in '/'.
          next[pos] = 1;
          for (size_t q = pos; q < n; ++q) {
            if (s[q] == '/') next[q + 1] = 1;
          }
          break;
      }
    }
    std::swap(cur, next);
  }
  return cur[n] != 0;
}

bool PatternMatches(const DockerIgnore::Pattern& p, absl::string_view path) {
  absl::StatusOr<std::vector<Token>> tokens = Compile(p.text);
  return tokens.ok() && MatchTokens(*tokens, path);
}

}  // namespace

absl::StatusOr<DockerIgnore> DockerIgnore::Parse(absl::string_view text) {
  DockerIgnore di;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line_no == 0 && absl::StartsWith(line, "\xEF\xBB\xBF")) {
      line.remove_prefix(3);
    }
    ++line_no;
    if (absl::StartsWith(line, "#")) continue;
    absl::string_view pattern = text::TrimSpace(line);
    if (pattern.empty()) continue;
    Pattern p;
    if (pattern[0] == '!') {
      p.exclusion = true;
      pattern = text::TrimSpace(pattern.substr(1));
      if (pattern.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            ".dockerignore:", line_no, ": illegal exclusion pattern: \"!\""));
      }
    }
    std::string clean = CleanPath(pattern);
    if (clean.size() > 1 && clean[0] == '/') clean.erase(0, 1);
    p.text = clean;
    p.dirs = absl::StrSplit(clean, '/');
    absl::StatusOr<std::vector<Token>> tokens = Compile(p.text);
    if (!tokens.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          ".dockerignore:", line_no, ": ", tokens.status().message()));
    }
    di.patterns_.push_back(std::move(p));
  }
  return di;
}

bool DockerIgnore::Excluded(absl::string_view relative_path) const {
  std::string file = CleanPath(relative_path);
  // The parents of the path, shortest first: "a", "a/b" for "a/b/c".
  std::vector<std::string> parents;
  std::vector<absl::string_view> parts = absl::StrSplit(file, '/');
  for (size_t i = 1; i < parts.size(); ++i) {
    parents.push_back(absl::StrJoin(parts.begin(), parts.begin() + i, "/"));
  }
  bool matched = false;
  for (const Pattern& p : patterns_) {
    // An inclusion only matters while not yet excluded; an exclusion (!)
    // only once something excluded the path.
    if (p.exclusion != matched) continue;
    bool match = PatternMatches(p, file);
    for (size_t i = 0; !match && i < parents.size(); ++i) {
      match = PatternMatches(p, parents[i]);
    }
    if (match) matched = !p.exclusion;
  }
  return matched;
}

bool DockerIgnore::MayReinclude(absl::string_view dir) const {
  std::string clean = CleanPath(dir);
  std::vector<absl::string_view> dparts = absl::StrSplit(clean, '/');
  for (const Pattern& p : patterns_) {
    if (!p.exclusion) continue;
    // Compare component by component: the exception can reach below `dir`
    // when every component of `dir` matches the pattern's component at the
    // same depth and the pattern goes deeper, or a `**` comes first.
    bool possible = true;
    bool deeper = false;
    for (size_t i = 0; i < dparts.size(); ++i) {
      if (i >= p.dirs.size()) {
        possible = false;
        break;
      }
      if (absl::StrContains(p.dirs[i], "**")) {
        deeper = true;
        break;
      }
      Pattern component;
      component.text = p.dirs[i];
      if (!PatternMatches(component, dparts[i])) {
        possible = false;
        break;
      }
    }
    if (!possible) continue;
    if (deeper || p.dirs.size() > dparts.size()) return true;
  }
  return false;
}

std::string DockerIgnorePathFor(absl::string_view dockerfile_path) {
  return absl::StrCat(dockerfile_path, ".dockerignore");
}

std::vector<std::string> DockerIgnoreCandidates(
    absl::string_view dockerfile_path) {
  return {DockerIgnorePathFor(dockerfile_path), ".dockerignore"};
}

bool AlwaysSent(absl::string_view relative_path,
                absl::string_view dockerfile_path) {
  std::string p = CleanPath(relative_path);
  std::string df = CleanPath(dockerfile_path);
  return p == df || p == ".dockerignore" || p == DockerIgnorePathFor(df);
}

}  // namespace longshore::dockerfile
