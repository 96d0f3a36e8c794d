#include "dockerfile/parser.h"

#include <dirent.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/testing/runfiles.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace longshore::dockerfile {
namespace {

using ::testing::HasSubstr;

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ListDirs(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string ParserDir() {
  absl::StatusOr<std::string> dir =
      longshore::testing::RunfilePath("third_party/buildkit/testdata/parser");
  EXPECT_TRUE(dir.ok()) << dir.status();
  if (!dir.ok()) return "";
  return *dir;
}

TEST(ConformanceTest, EveryTestfileDumpsAsBuildKit) {
  const std::string base = ParserDir() + "/testfiles";
  std::vector<std::string> dirs = ListDirs(base);
  ASSERT_GE(dirs.size(), 30u) << "expected BuildKit's testfiles in " << base;
  for (const std::string& name : dirs) {
    SCOPED_TRACE(name);
    std::string dockerfile = ReadFileOrDie(base + "/" + name + "/Dockerfile");
    std::string expected = ReadFileOrDie(base + "/" + name + "/result");
    absl::StatusOr<ParsedDockerfile> df = ParseAst(dockerfile);
    ASSERT_TRUE(df.ok()) << df.status();
    EXPECT_EQ(DumpAst(*df), expected);
  }
}

TEST(ConformanceTest, EveryNegativeTestfileIsRejected) {
  const std::string base = ParserDir() + "/testfiles-negative";
  std::vector<std::string> dirs = ListDirs(base);
  ASSERT_GE(dirs.size(), 4u) << "expected BuildKit's testfiles in " << base;
  for (const std::string& name : dirs) {
    SCOPED_TRACE(name);
    std::string dockerfile = ReadFileOrDie(base + "/" + name + "/Dockerfile");
    EXPECT_FALSE(ParseAst(dockerfile).ok());
    absl::StatusOr<ParsedDockerfile> df = Parse(dockerfile, "Dockerfile");
    ASSERT_FALSE(df.ok());
    EXPECT_TRUE(absl::StartsWith(df.status().message(), "Dockerfile:"))
        << df.status();
  }
}

TEST(ConformanceTest, LineNumbersAcrossContinuationsAndComments) {
  std::string dockerfile =
      ReadFileOrDie(ParserDir() + "/testfile-line/Dockerfile");
  absl::StatusOr<ParsedDockerfile> df = Parse(dockerfile);
  ASSERT_TRUE(df.ok()) << df.status();
  ASSERT_EQ(df->nodes.size(), 3u);
  EXPECT_EQ(df->nodes[0].start_line, 5);
  EXPECT_EQ(df->nodes[0].end_line, 5);
  EXPECT_EQ(df->nodes[1].start_line, 11);
  EXPECT_EQ(df->nodes[1].end_line, 12);
  EXPECT_EQ(df->nodes[2].start_line, 17);
  EXPECT_EQ(df->nodes[2].end_line, 31);
  EXPECT_EQ(df->nodes.front().start_line, 5);
  EXPECT_EQ(df->nodes.back().end_line, 31);
}

TEST(ParserTest, NegativeFilesGiveDockerWording) {
  EXPECT_THAT(std::string(Parse("").status().message()),
              HasSubstr("file with no instructions"));
  EXPECT_THAT(std::string(Parse("# only\n\n").status().message()),
              HasSubstr("file with no instructions"));
  EXPECT_EQ(Parse("FROM busybox\n\nENV PATH\n").status().message(),
            "Dockerfile:3: ENV must have two arguments");
  EXPECT_THAT(
      std::string(
          Parse("CMD [ \"echo\", [ \"nested\" ] ]\n").status().message()),
      HasSubstr("JSON arrays must contain only strings"));
}

TEST(ParserTest, UnknownInstructionAndArgCounts) {
  absl::StatusOr<ParsedDockerfile> df =
      Parse("FROM busybox\nRUNN echo hi\n", "ci/Dockerfile");
  ASSERT_FALSE(df.ok());
  EXPECT_THAT(std::string(df.status().message()),
              HasSubstr("ci/Dockerfile:2: unknown instruction: RUNN"));
  EXPECT_EQ(Parse("FROM busybox\nARG\n").status().message(),
            "Dockerfile:2: ARG requires at least one argument");
  EXPECT_EQ(Parse("FROM a b\n").status().message(),
            "Dockerfile:1: FROM requires either one or three arguments");
  EXPECT_EQ(Parse("FROM busybox\nCOPY onlyone\n").status().message(),
            "Dockerfile:2: COPY requires at least two arguments, but only one "
            "was provided. Destination could not be determined.");
  EXPECT_EQ(Parse("FROM busybox\nSHELL /bin/bash\n").status().message(),
            "Dockerfile:2: SHELL requires the arguments to be in JSON form");
  EXPECT_EQ(Parse("FROM busybox\nHEALTHCHECK CONNECT x\n").status().message(),
            "Dockerfile:2: Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)");
  EXPECT_EQ(Parse("FROM busybox\nONBUILD ONBUILD RUN x\n").status().message(),
            "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't "
            "allowed");
  EXPECT_EQ(Parse("FROM busybox\nCOPY --user=me a b\n").status().message(),
            "Dockerfile:2: unknown flag: user");
  EXPECT_EQ(Parse("FROM busybox AS 1st\n").status().message(),
            "Dockerfile:1: invalid name for build stage: \"1st\", name can't "
            "start with a number or contain symbols");
  EXPECT_TRUE(Parse("from busybox as Build\nrun true\n").ok());
}

TEST(ParserTest, Directives) {
  absl::StatusOr<ParsedDockerfile> df = Parse(
      "# syntax=docker/dockerfile:1\n# escape=`\n# check=skip=all\n"
      "FROM busybox\nRUN echo a `\n  b\n");
  ASSERT_TRUE(df.ok()) << df.status();
  EXPECT_EQ(df->directives.syntax, "docker/dockerfile:1");
  EXPECT_EQ(df->directives.escape, '`');
  EXPECT_EQ(df->directives.check, "skip=all");
  ASSERT_EQ(df->nodes.size(), 2u);
  EXPECT_EQ(df->nodes[1].args[0], "echo a   b");

  EXPECT_EQ(Parse("# escape=x\nFROM a\n").status().message(),
            "Dockerfile:1: invalid escape token 'x' does not match ` or \\");
  EXPECT_EQ(Parse("# escape=`\n# escape=\\\nFROM a\n").status().message(),
            "Dockerfile:2: only one escape parser directive can be used");
  // A directive after an instruction is an ordinary comment.
  df = Parse("FROM a\n# escape=`\nRUN x \\\n y\n");
  ASSERT_TRUE(df.ok());
  EXPECT_EQ(df->directives.escape, '\\');
  EXPECT_EQ(df->nodes[1].args[0], "x  y");
}

TEST(ParserTest, ContinuationsWithCommentsAndEmptyLines) {
  absl::StatusOr<ParsedDockerfile> df =
      Parse("FROM a\nRUN one \\\n# comment\n\n  two \\\n\tthree\nRUN four\n");
  ASSERT_TRUE(df.ok());
  ASSERT_EQ(df->nodes.size(), 3u);
  EXPECT_EQ(df->nodes[1].args[0], "one   two \tthree");
  EXPECT_EQ(df->nodes[1].start_line, 2);
  EXPECT_EQ(df->nodes[1].end_line, 6);
  EXPECT_EQ(df->nodes[2].start_line, 7);
  ASSERT_EQ(df->warnings.size(), 1u);
  EXPECT_THAT(df->warnings[0], HasSubstr("Empty continuation line"));
}

TEST(ParserTest, Heredocs) {
  absl::StatusOr<ParsedDockerfile> df = Parse(
      "FROM a\n"
      "RUN <<EOF\n"
      "echo $HOME\n"
      "EOF\n"
      "RUN <<-'END' cat >/x && cat <<\"Two\"\n"
      "\tline1\n"
      "\tEND\n"
      "second $X\n"
      "Two\n"
      "COPY <<file1 <<file2 /dest/\n"
      "one\n"
      "file1\n"
      "two\n"
      "file2\n"
      "RUN [\"echo\", \"<<EOF\"]\n");
  ASSERT_TRUE(df.ok()) << df.status();
  ASSERT_EQ(df->nodes.size(), 5u);
  const Node& run1 = df->nodes[1];
  ASSERT_EQ(run1.heredocs.size(), 1u);
  EXPECT_EQ(run1.heredocs[0].name, "EOF");
  EXPECT_EQ(run1.heredocs[0].content, "echo $HOME\n");
  EXPECT_TRUE(run1.heredocs[0].expand);
  EXPECT_EQ(run1.start_line, 2);
  EXPECT_EQ(run1.end_line, 4);

  const Node& run2 = df->nodes[2];
  ASSERT_EQ(run2.heredocs.size(), 2u);
  EXPECT_EQ(run2.heredocs[0].name, "END");
  EXPECT_FALSE(run2.heredocs[0].expand);
  EXPECT_TRUE(run2.heredocs[0].chomp_tabs);
  EXPECT_EQ(run2.heredocs[0].content, "\tline1\n");
  EXPECT_EQ(HeredocBody(run2.heredocs[0]), "line1\n");
  EXPECT_EQ(run2.heredocs[1].name, "Two");
  EXPECT_FALSE(run2.heredocs[1].expand);
  EXPECT_EQ(run2.heredocs[1].content, "second $X\n");

  const Node& copy = df->nodes[3];
  ASSERT_EQ(copy.heredocs.size(), 2u);
  EXPECT_EQ(copy.heredocs[0].content, "one\n");
  EXPECT_EQ(copy.heredocs[1].content, "two\n");
  EXPECT_EQ(copy.args,
            (std::vector<std::string>{"<<file1", "<<file2", "/dest/"}));
  // JSON form never has heredocs.
  EXPECT_TRUE(df->nodes[4].heredocs.empty());
  EXPECT_EQ(df->nodes[4].end_line, 15);

  absl::StatusOr<ParsedDockerfile> bad = Parse("FROM a\nRUN <<EOF\necho\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "Dockerfile:2: unterminated heredoc EOF");
}

TEST(ParserTest, FlagsAndOnbuild) {
  absl::StatusOr<ParsedDockerfile> df = Parse(
      "FROM --platform=$BUILDPLATFORM golang AS build\n"
      "RUN --mount=type=cache,target=/root/.cache --network=none go build\n"
      "ONBUILD COPY --chown=1:1 . /app\n");
  ASSERT_TRUE(df.ok()) << df.status();
  EXPECT_EQ(df->nodes[0].flags,
            std::vector<std::string>{"--platform=$BUILDPLATFORM"});
  EXPECT_EQ(df->nodes[0].args,
            (std::vector<std::string>{"golang", "AS", "build"}));
  EXPECT_EQ(df->nodes[1].flags.size(), 2u);
  EXPECT_EQ(df->nodes[1].args, std::vector<std::string>{"go build"});
  EXPECT_EQ(DumpNode(df->nodes[2]),
            "onbuild (copy [\"--chown=1:1\"] \".\" \"/app\")");
}

TEST(ParserTest, GoQuote) {
  EXPECT_EQ(GoQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(GoQuote(std::string("\t\n\x01\x7f", 4)), "\"\\t\\n\\x01\\x7f\"");
  EXPECT_EQ(GoQuote(std::string("\0", 1)), "\"\\x00\"");
  EXPECT_EQ(GoQuote("\xe2\x99\xa5"), "\"\xe2\x99\xa5\"");
  EXPECT_EQ(GoQuote("\xff"), "\"\\xff\"");
  EXPECT_EQ(GoQuote("\xc2\xa0"), "\"\\u00a0\"");
}

TEST(ParserTest, DumpJsonHasLineRanges) {
  absl::StatusOr<ParsedDockerfile> df = Parse("FROM a\nRUN x \\\n  y\n");
  ASSERT_TRUE(df.ok());
  std::string json = DumpJson(*df);
  EXPECT_THAT(json, HasSubstr("\"start_line\": 2"));
  EXPECT_THAT(json, HasSubstr("\"end_line\": 3"));
  EXPECT_THAT(json, HasSubstr("\"cmd\": \"run\""));
}

}  // namespace
}  // namespace longshore::dockerfile
