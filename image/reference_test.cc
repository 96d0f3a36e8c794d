#include "image/reference.h"

#include "gtest/gtest.h"

namespace longshore::image {
namespace {

TEST(Reference, NormalizesAsDocker) {
  auto r = ParseReference("python:3");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Normalized(), "docker.io/library/python:3");
  EXPECT_EQ(r->Familiar(), "python:3");
  EXPECT_EQ(ParseReference("busybox")->Normalized(),
            "docker.io/library/busybox:latest");
  EXPECT_EQ(ParseReference("user/app")->Normalized(),
            "docker.io/user/app:latest");
  EXPECT_EQ(ParseReference("user/app")->Familiar(), "user/app:latest");
  auto local = ParseReference("localhost:5000/team/app:1.2");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->registry, "localhost:5000");
  EXPECT_EQ(local->repository, "team/app");
  EXPECT_EQ(local->tag, "1.2");
  EXPECT_EQ(local->Familiar(), "localhost:5000/team/app:1.2");
  EXPECT_EQ(ParseReference("index.docker.io/library/x")->registry, "docker.io");
  std::string d = "sha256:" + std::string(64, 'a');
  auto pinned = ParseReference("ghcr.io/o/r@" + d);
  ASSERT_TRUE(pinned.ok());
  EXPECT_EQ(pinned->tag, "");
  EXPECT_EQ(pinned->digest, d);
  EXPECT_EQ(pinned->Normalized(), "ghcr.io/o/r@" + d);
}

TEST(Reference, RejectsInvalid) {
  EXPECT_FALSE(ParseReference("").ok());
  EXPECT_FALSE(ParseReference("UPPER").ok());
  EXPECT_FALSE(ParseReference("a//b").ok());
  EXPECT_FALSE(ParseReference("app:bad tag").ok());
  EXPECT_FALSE(ParseReference("app@sha256:short").ok());
}

// Found by fuzz/reference_fuzzer.cc: the familiar form of these read back as
// another image (fuzz/corpus/reference/regression-familiar-*).
TEST(Reference, FamiliarFormReadsBackAsTheSameImage) {
  for (const char* text :
       {"docker.io/library/buso/lx:1.36", "docker.io/a.b/c:1",
        "docker.io/localhost/app:2", "busybox:1.36", "user/app:x"}) {
    auto r = ParseReference(text);
    ASSERT_TRUE(r.ok()) << text;
    auto again = ParseReference(r->Familiar());
    ASSERT_TRUE(again.ok()) << r->Familiar();
    EXPECT_EQ(again->Normalized(), r->Normalized()) << text;
  }
  EXPECT_EQ(ParseReference("docker.io/library/a/b:1")->Familiar(),
            "library/a/b:1");
  EXPECT_EQ(ParseReference("docker.io/a.b/c:1")->Familiar(),
            "docker.io/a.b/c:1");
  EXPECT_EQ(ParseReference("docker.io/library/busybox")->Familiar(),
            "busybox:latest");
}

}  // namespace
}  // namespace longshore::image
