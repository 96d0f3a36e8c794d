#include "dockerfile/build_plan.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace longshore::dockerfile {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ParsedDockerfile MustParse(absl::string_view text) {
  absl::StatusOr<ParsedDockerfile> df = Parse(text);
  EXPECT_TRUE(df.ok()) << df.status();
  return df.ok() ? *df : ParsedDockerfile();
}

constexpr char kMultiStage[] =
    "ARG GO=1.22\n"
    "FROM golang:${GO} AS build\n"
    "RUN go build\n"
    "FROM alpine AS unused\n"
    "RUN echo never\n"
    "FROM build AS test\n"
    "RUN go test\n"
    "FROM scratch\n"
    "COPY --from=build /out /app\n"
    "COPY --from=busybox:1.36 /bin/busybox /bin/\n"
    "COPY --from=0 /x /y\n";

TEST(BuildPlanTest, StagesBasesAndOrder) {
  ParsedDockerfile df = MustParse(kMultiStage);
  absl::StatusOr<BuildPlan> plan = Plan(df, {});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->stages.size(), 4u);
  EXPECT_EQ(plan->stages[0].name, "build");
  EXPECT_EQ(plan->stages[0].base.kind, BaseRef::kImage);
  EXPECT_EQ(plan->stages[0].base.image, "golang:1.22");
  EXPECT_EQ(plan->stages[0].instructions.size(), 1u);
  EXPECT_EQ(plan->stages[2].base.kind, BaseRef::kStage);
  EXPECT_EQ(plan->stages[2].base.stage, 0);
  EXPECT_EQ(plan->stages[3].base.kind, BaseRef::kScratch);
  EXPECT_THAT(plan->stages[3].depends_on, ElementsAre(0));
  EXPECT_THAT(plan->stages[3].copy_from_images, ElementsAre("busybox:1.36"));
  EXPECT_EQ(plan->target, 3);
  // "unused" and "test" are not needed for the last stage.
  EXPECT_THAT(plan->order, ElementsAre(0, 3));
}

TEST(BuildPlanTest, TargetSelectsStageAndItsDependencies) {
  ParsedDockerfile df = MustParse(kMultiStage);
  PlanOptions opts;
  opts.target = "TEST";
  absl::StatusOr<BuildPlan> plan = Plan(df, opts);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->target, 2);
  EXPECT_THAT(plan->order, ElementsAre(0, 2));

  opts.target = "nope";
  plan = Plan(df, opts);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "target stage \"nope\" could not be found");
}

TEST(BuildPlanTest, GlobalArgsBuildArgOverrideAndPlatform) {
  ParsedDockerfile df = MustParse(
      "ARG BASE=alpine\nARG TAG\n"
      "FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-latest}\nRUN true\n");
  PlanOptions opts;
  opts.build_args = {{"TAG", "3.19"}, {"EXTRA", "1"}, {"HTTP_PROXY", "p"}};
  opts.build_platform = "linux/arm64";
  absl::StatusOr<BuildPlan> plan = Plan(df, opts);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->stages[0].base.image, "alpine:3.19");
  EXPECT_EQ(plan->stages[0].platform, "linux/arm64");
  EXPECT_THAT(plan->global_args, ::testing::Contains("BASE=alpine"));
  EXPECT_THAT(plan->global_args, ::testing::Contains("TAG=3.19"));
  EXPECT_THAT(plan->global_args, ::testing::Contains("TARGETARCH=amd64"));
  EXPECT_THAT(plan->unused_build_args, ElementsAre("EXTRA"));
}

TEST(BuildPlanTest, Errors) {
  ParsedDockerfile df = MustParse("ARG B\nFROM ${B}\n");
  absl::StatusOr<BuildPlan> plan = Plan(df, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "Dockerfile:2: base name (${B}) should not be blank");

  df = MustParse("RUN x\nFROM a\n");
  plan = Plan(df, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "Dockerfile:1: no build stage in current context");

  df = MustParse(
      "FROM a AS one\nCOPY --from=two /a /b\n"
      "FROM b AS two\nCOPY --from=one /a /b\n");
  plan = Plan(df, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()),
              HasSubstr("circular dependency detected on stage"));

  df = MustParse("FROM a AS x\nFROM b AS X\n");
  EXPECT_FALSE(Plan(df, {}).ok());

  df = MustParse("FROM Ubuntu\n");
  plan = Plan(df, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()),
              HasSubstr("repository name must be lowercase"));
  EXPECT_TRUE(
      Plan(MustParse("FROM Registry.Example:5000/team/app:V1\n"), {}).ok());
}

TEST(BuildPlanTest, MountFromAndExpandedCopyFrom) {
  ParsedDockerfile df = MustParse(
      "FROM a AS deps\nRUN true\n"
      "FROM b AS src\nRUN true\n"
      "FROM c\nARG WHICH=src\n"
      "RUN --mount=type=bind,from=deps,target=/d true\n"
      "COPY --from=$WHICH /s /s\n");
  absl::StatusOr<BuildPlan> plan = Plan(df, {});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->stages[2].depends_on, ElementsAre(0, 1));
  EXPECT_THAT(plan->order, ElementsAre(0, 1, 2));
}

}  // namespace
}  // namespace longshore::dockerfile
