#include "dockerfile/dockerignore.h"

#include "gtest/gtest.h"

namespace longshore::dockerfile {
namespace {

DockerIgnore MustParse(absl::string_view text) {
  absl::StatusOr<DockerIgnore> di = DockerIgnore::Parse(text);
  EXPECT_TRUE(di.ok()) << di.status();
  return di.ok() ? *di : DockerIgnore();
}

TEST(DockerIgnoreTest, BasicPatternsAndComments) {
  DockerIgnore di = MustParse(
      "# a comment\n\n*.log\n/tmp\n./build/\nsrc/*/gen?.go\n  spaced  \n");
  EXPECT_TRUE(di.Excluded("app.log"));
  EXPECT_FALSE(di.Excluded("logs/app.log"));  // * does not cross '/'
  EXPECT_TRUE(di.Excluded("tmp"));
  EXPECT_TRUE(di.Excluded("tmp/x/y"));  // a parent matches
  EXPECT_TRUE(di.Excluded("build/out.o"));
  EXPECT_TRUE(di.Excluded("src/a/gen1.go"));
  EXPECT_FALSE(di.Excluded("src/a/b/gen1.go"));
  EXPECT_FALSE(di.Excluded("src/a/gen12.go"));
  EXPECT_TRUE(di.Excluded("spaced"));
  EXPECT_FALSE(di.Excluded("# a comment"));
  EXPECT_FALSE(di.Excluded("main.go"));
}

TEST(DockerIgnoreTest, DoubleStarAndClasses) {
  DockerIgnore di = MustParse("**/*.pyc\ndocs/**\n[Tt]est[0-9]\n**/cache\n");
  EXPECT_TRUE(di.Excluded("a.pyc"));
  EXPECT_TRUE(di.Excluded("x/y/z/a.pyc"));
  EXPECT_TRUE(di.Excluded("docs/a/b.md"));
  EXPECT_FALSE(di.Excluded("docs"));  // "docs/**" needs something below
  EXPECT_TRUE(di.Excluded("Test1"));
  EXPECT_TRUE(di.Excluded("test7/file"));
  EXPECT_FALSE(di.Excluded("testa"));
  EXPECT_TRUE(di.Excluded("cache"));
  EXPECT_TRUE(di.Excluded("deep/er/cache/file"));
}

TEST(DockerIgnoreTest, ExceptionsReincludeFilesUnderExcludedDir) {
  DockerIgnore di = MustParse("vendor\n!vendor/keep/**\n!vendor/README.md\n");
  EXPECT_TRUE(di.Excluded("vendor"));
  EXPECT_TRUE(di.Excluded("vendor/lib/a.go"));
  EXPECT_FALSE(di.Excluded("vendor/keep/a.go"));
  EXPECT_FALSE(di.Excluded("vendor/README.md"));
  EXPECT_TRUE(di.MayReinclude("vendor"));
  EXPECT_TRUE(di.MayReinclude("vendor/keep"));
  EXPECT_FALSE(di.MayReinclude("vendor/lib"));
  EXPECT_FALSE(di.MayReinclude("other"));
}

TEST(DockerIgnoreTest, LastMatchWins) {
  DockerIgnore di = MustParse("*.md\n!README*.md\nREADME-secret.md\n");
  EXPECT_TRUE(di.Excluded("CHANGES.md"));
  EXPECT_FALSE(di.Excluded("README.md"));
  EXPECT_TRUE(di.Excluded("README-secret.md"));
}

TEST(DockerIgnoreTest, EverythingButExceptions) {
  DockerIgnore di = MustParse("*\n!src\n!**/*.go\n");
  EXPECT_TRUE(di.Excluded("Makefile"));
  EXPECT_FALSE(di.Excluded("src/deep/x.txt"));
  EXPECT_FALSE(di.Excluded("pkg/a.go"));
  EXPECT_TRUE(di.Excluded("pkg/a.c"));
  EXPECT_TRUE(di.MayReinclude("pkg"));
}

TEST(DockerIgnoreTest, Errors) {
  absl::StatusOr<DockerIgnore> di = DockerIgnore::Parse("ok\n!\n");
  ASSERT_FALSE(di.ok());
  EXPECT_EQ(di.status().message(),
            ".dockerignore:2: illegal exclusion pattern: \"!\"");
  EXPECT_FALSE(DockerIgnore::Parse("[abc\n").ok());
}

TEST(DockerIgnoreTest, IgnoreFileLocation) {
  EXPECT_EQ(DockerIgnorePathFor("Dockerfile"), "Dockerfile.dockerignore");
  EXPECT_EQ(DockerIgnorePathFor("ci/Dockerfile.dev"),
            "ci/Dockerfile.dev.dockerignore");
  std::vector<std::string> c = DockerIgnoreCandidates("ci/app.Dockerfile");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0], "ci/app.Dockerfile.dockerignore");
  EXPECT_EQ(c[1], ".dockerignore");
  EXPECT_TRUE(AlwaysSent("Dockerfile", "Dockerfile"));
  EXPECT_TRUE(AlwaysSent(".dockerignore", "Dockerfile"));
  EXPECT_TRUE(AlwaysSent("./ci/x.Dockerfile", "ci/x.Dockerfile"));
  EXPECT_FALSE(AlwaysSent("main.go", "Dockerfile"));
}

}  // namespace
}  // namespace longshore::dockerfile
