#include "dockerfile/shell_lex.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/testing/runfiles.h"
#include "gtest/gtest.h"

namespace longshore::dockerfile {
namespace {

std::vector<std::string> ReadLines(const std::string& name) {
  absl::StatusOr<std::string> dir =
      longshore::testing::RunfilePath("third_party/buildkit/testdata/shell");
  EXPECT_TRUE(dir.ok()) << dir.status();
  if (!dir.ok()) return {};
  std::string path = *dir + "/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

TEST(ShellLexConformance, EnvVarTest) {
  const std::vector<std::string> env = {
      "PWD=/home", "SHELL=bash", "KOREAN=\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",
      "NULL="};
  ShellLex lex('\\');
  int checked = 0;
  for (const std::string& raw : ReadLines("envVarTest")) {
    std::string line(absl::StripAsciiWhitespace(raw));
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = absl::StrSplit(line, '|');
    ASSERT_EQ(f.size(), 3u) << line;
    std::string platform(absl::StripAsciiWhitespace(f[0]));
    if (platform == "W") continue;
    ASSERT_TRUE(platform == "A" || platform == "U") << line;
    std::string input(absl::StripAsciiWhitespace(f[1]));
    std::string expected(absl::StripAsciiWhitespace(f[2]));
    absl::StatusOr<std::string> got = lex.ProcessWord(input, env);
    if (expected == "error") {
      EXPECT_FALSE(got.ok()) << "input " << input << " gave " << *got;
    } else {
      ASSERT_TRUE(got.ok()) << "input " << input << ": " << got.status();
      EXPECT_EQ(*got, expected) << "input " << input;
    }
    ++checked;
  }
  EXPECT_GT(checked, 200);
}

TEST(ShellLexConformance, WordsTest) {
  std::vector<std::string> env;
  ShellLex lex('\\');
  int checked = 0;
  for (const std::string& line : ReadLines("wordsTest")) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("ENV ", 0) == 0) {
      env.push_back(line.substr(4));
      continue;
    }
    std::vector<std::string> f = absl::StrSplit(line, '|');
    ASSERT_EQ(f.size(), 2u) << line;
    std::string input(absl::StripAsciiWhitespace(f[0]));
    std::string expected(absl::StripLeadingAsciiWhitespace(f[1]));
    absl::StatusOr<std::vector<std::string>> got = lex.ProcessWords(input, env);
    if (expected == "error") {
      EXPECT_FALSE(got.ok()) << "input " << input;
    } else {
      ASSERT_TRUE(got.ok()) << "input " << input << ": " << got.status();
      EXPECT_EQ(absl::StrJoin(*got, ","), expected) << "input " << input;
    }
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

TEST(ShellLexTest, PatternModifiers) {
  const std::vector<std::string> env = {"P=/usr/local/bin/tool.tar.gz",
                                        "V=aXbXc"};
  ShellLex lex;
  auto word = [&](const std::string& w) {
    absl::StatusOr<std::string> r = lex.ProcessWord(w, env);
    EXPECT_TRUE(r.ok()) << w << ": " << r.status();
    return r.ok() ? *r : "<error>";
  };
  EXPECT_EQ(word("${P#*/}"), "usr/local/bin/tool.tar.gz");
  EXPECT_EQ(word("${P##*/}"), "tool.tar.gz");
  EXPECT_EQ(word("${P%.*}"), "/usr/local/bin/tool.tar");
  EXPECT_EQ(word("${P%%.*}"), "/usr/local/bin/tool");
  EXPECT_EQ(word("${P#nomatch}"), "/usr/local/bin/tool.tar.gz");
  EXPECT_EQ(word("${V/X/-}"), "a-bXc");
  EXPECT_EQ(word("${V//X/-}"), "a-b-c");
  EXPECT_EQ(word("${V//[Xb]/}"), "ac");
  EXPECT_EQ(word("${V/#aX/}"), "aXbXc");  // '#' is literal here
  EXPECT_EQ(word("${UNSET//x/y}"), "");
  EXPECT_EQ(word("${P#\\/usr}"), "/local/bin/tool.tar.gz");
  EXPECT_FALSE(lex.ProcessWord("${P:#x}", env).ok());
  EXPECT_FALSE(lex.ProcessWord("${V/x", env).ok());
}

TEST(ShellLexTest, ErrorsNameTheWord) {
  ShellLex lex;
  absl::StatusOr<std::string> r = lex.ProcessWord("${X:?must be set}", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "failed to process \"${X:?must be set}\": X: must be set");
}

TEST(ShellLexTest, MatchesReportReferencedNames) {
  ShellLex lex;
  absl::StatusOr<ShellWordResult> r =
      lex.ProcessWordWithMatches("$A-${B:-x}-$C", {"A=1", "C=3"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->word, "1-x-3");
  EXPECT_EQ(r->matched, (std::set<std::string>{"A", "C"}));
  EXPECT_EQ(r->unmatched, (std::set<std::string>{"B"}));
}

TEST(ShellLexTest, BacktickEscapeAndLaterEntriesWin) {
  ShellLex lex('`');
  absl::StatusOr<std::string> r =
      lex.ProcessWord("C:\\dir `$X $X", {"X=old", "X=new"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "C:\\dir $X new");
}

TEST(ShellLexTest, SkipUnsetKeepsReferences) {
  ShellLex lex;
  lex.set_skip_unset_env(true);
  absl::StatusOr<std::string> r =
      lex.ProcessWord("$A ${B} ${C:-d} $D", {"D=4"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "$A ${B} ${C:-d} 4");
}

TEST(ShellPatternTest, Glob) {
  EXPECT_TRUE(ShellPatternMatch("*.go", "main.go"));
  EXPECT_FALSE(ShellPatternMatch("*.go", "main.c"));
  EXPECT_TRUE(ShellPatternMatch("a?c", "abc"));
  EXPECT_TRUE(ShellPatternMatch("[a-c]x", "bx"));
  EXPECT_FALSE(ShellPatternMatch("[!a-c]x", "bx"));
  EXPECT_TRUE(ShellPatternMatch("\\*", "*"));
  EXPECT_FALSE(ShellPatternMatch("\\*", "a"));
  EXPECT_TRUE(ShellPatternMatch("*a*b*c*", "xxaxxbxxcxx"));
  EXPECT_TRUE(ShellPatternMatch("", ""));
  EXPECT_TRUE(ShellPatternMatch("[", "["));
}

}  // namespace
}  // namespace longshore::dockerfile
