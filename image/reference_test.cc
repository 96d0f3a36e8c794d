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

}  // namespace
}  // namespace longshore::image
