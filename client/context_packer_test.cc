#include "client/context_packer.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_util.h"
#include "common/tar_extract.h"
#include "gtest/gtest.h"

namespace longshore::client {
namespace {

class ContextPackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = getenv("TEST_TMPDIR");
    auto d = MakeTempDir(t ? t : "/tmp", "ctx-");
    ASSERT_TRUE(d.ok());
    root_ = *d;
    ctx_ = root_ + "/ctx";
    ASSERT_TRUE(MakeDirs(ctx_ + "/src/sub").ok());
    ASSERT_TRUE(MakeDirs(ctx_ + "/node_modules/keep").ok());
    Write("Dockerfile", "FROM scratch\n");
    Write("app.py", "print(1)\n");
    Write("src/a.txt", "a");
    Write("src/sub/b.log", "b");
    Write("node_modules/x.js", "x");
    Write("node_modules/keep/k.js", "k");
    ASSERT_EQ(symlink("app.py", (ctx_ + "/link").c_str()), 0);
  }
  void TearDown() override { RemoveTree(root_).IgnoreError(); }
  void Write(const std::string& rel, const std::string& data) {
    ASSERT_TRUE(WriteFileAtomic(ctx_ + "/" + rel, data).ok());
  }
  absl::StatusOr<PackedContext> Pack() {
    PackOptions o;
    o.context_dir = ctx_;
    o.dockerfile_rel = "Dockerfile";
    o.dockerfile_path = ctx_ + "/Dockerfile";
    o.temp_dir = root_;
    return PackContext(o);
  }
  std::string Unpack(const PackedContext& p) {
    auto d = MakeTempDir(root_, "out-");
    EXPECT_TRUE(d.ok());
    EXPECT_TRUE(ExtractTarConfined(p.tar_path, *d, "test").ok());
    return *d;
  }

  std::string root_, ctx_;
};

TEST_F(ContextPackerTest, SameTreeSameDigest) {
  auto a = Pack();
  auto b = Pack();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->digest, b->digest);
  Write("app.py", "print(2)\n");
  auto c = Pack();
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->digest, c->digest);
  std::string out = Unpack(*c);
  EXPECT_EQ(*ReadFile(out + "/app.py"), "print(2)\n");
  char target[64] = {};
  ASSERT_GT(readlink((out + "/link").c_str(), target, sizeof(target)), 0);
  EXPECT_STREQ(target, "app.py");
}

TEST_F(ContextPackerTest, DockerignoreWithExceptions) {
  Write(".dockerignore",
        "# comment\nnode_modules\n!node_modules/keep\n**/*.log\nDockerfile\n");
  auto p = Pack();
  ASSERT_TRUE(p.ok()) << p.status();
  std::string out = Unpack(*p);
  EXPECT_TRUE(PathExists(out + "/app.py"));
  EXPECT_TRUE(PathExists(out + "/src/a.txt"));
  EXPECT_FALSE(PathExists(out + "/src/sub/b.log"));
  EXPECT_FALSE(PathExists(out + "/node_modules/x.js"));
  EXPECT_TRUE(PathExists(out + "/node_modules/keep/k.js"));
  // The Dockerfile and .dockerignore are always sent.
  EXPECT_TRUE(PathExists(out + "/Dockerfile"));
  EXPECT_TRUE(PathExists(out + "/.dockerignore"));
}

TEST_F(ContextPackerTest, DockerfileSpecificIgnoreWins) {
  Write(".dockerignore", "app.py\n");
  Write("Dockerfile.dockerignore", "src\n");
  auto p = Pack();
  ASSERT_TRUE(p.ok()) << p.status();
  std::string out = Unpack(*p);
  EXPECT_TRUE(PathExists(out + "/app.py"));
  EXPECT_FALSE(PathExists(out + "/src/a.txt"));
}

TEST_F(ContextPackerTest, MissingContextIsAnError) {
  PackOptions o;
  o.context_dir = root_ + "/nope";
  o.temp_dir = root_;
  auto p = PackContext(o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("nope"), std::string::npos);
}

}  // namespace
}  // namespace longshore::client
