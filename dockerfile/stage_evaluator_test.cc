#include "dockerfile/stage_evaluator.h"

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace longshore::dockerfile {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Parses, plans and evaluates every instruction of one stage.
struct Evaluated {
  ParsedDockerfile df;
  BuildPlan plan;
  std::unique_ptr<StageEvaluator> eval;
  std::vector<ExpandedStep> steps;
  absl::Status status;
};

std::unique_ptr<Evaluated> Evaluate(absl::string_view text, int stage = -1,
                                    PlanOptions opts = {},
                                    ImageConfig base = {}) {
  auto e = std::make_unique<Evaluated>();
  absl::StatusOr<ParsedDockerfile> df = Parse(text);
  EXPECT_TRUE(df.ok()) << df.status();
  if (!df.ok()) return e;
  e->df = *std::move(df);
  absl::StatusOr<BuildPlan> plan = Plan(e->df, opts);
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok()) return e;
  e->plan = *std::move(plan);
  if (stage < 0) stage = e->plan.target;
  e->eval = std::make_unique<StageEvaluator>(e->plan, stage, base);
  for (const Node* node : e->plan.stages[stage].instructions) {
    absl::StatusOr<ExpandedStep> step = e->eval->Next(*node);
    if (!step.ok()) {
      e->status = step.status();
      break;
    }
    e->steps.push_back(*std::move(step));
  }
  return e;
}

TEST(StageEvaluatorTest, ConfigInstructions) {
  auto e = Evaluate(
      "FROM a\n"
      "ENV A=1 B=\"two words\"\n"
      "ENV C=$A-${B}\n"
      "LABEL org.title=\"My App\" version=$A\n"
      "EXPOSE 80 443/udp 8000-8002\n"
      "USER app:app\n"
      "VOLUME [\"/data\", \"/logs\"]\n"
      "VOLUME /cache\n"
      "STOPSIGNAL SIGINT\n"
      "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n"
      "CMD make all\n"
      "ONBUILD RUN echo triggered\n"
      "MAINTAINER someone@example.com\n");
  ASSERT_TRUE(e->status.ok()) << e->status;
  const ImageConfig& c = e->eval->config();
  EXPECT_THAT(c.env, Contains("A=1"));
  EXPECT_THAT(c.env, Contains("B=two words"));
  EXPECT_THAT(c.env, Contains("C=1-two words"));
  EXPECT_THAT(c.env, Contains(HasSubstr("PATH=/usr/local/sbin")));
  EXPECT_EQ(c.labels.at("org.title"), "My App");
  EXPECT_EQ(c.labels.at("version"), "1");
  EXPECT_EQ(c.exposed_ports,
            (std::set<std::string>{"80/tcp", "443/udp", "8000/tcp", "8001/tcp",
                                   "8002/tcp"}));
  EXPECT_EQ(c.user, "app:app");
  EXPECT_EQ(c.volumes, (std::set<std::string>{"/data", "/logs", "/cache"}));
  EXPECT_EQ(c.stop_signal, "SIGINT");
  EXPECT_THAT(c.shell, ElementsAre("/bin/bash", "-o", "pipefail", "-c"));
  EXPECT_THAT(c.cmd,
              ElementsAre("/bin/bash", "-o", "pipefail", "-c", "make all"));
  EXPECT_TRUE(c.cmd_set);
  EXPECT_THAT(c.on_build, ElementsAre("RUN echo triggered"));
  EXPECT_EQ(c.maintainer, "someone@example.com");
  EXPECT_EQ(e->steps[0].created_by, "ENV A=1 B=two words");
  EXPECT_TRUE(e->steps[0].empty_layer);
  EXPECT_EQ(e->steps[0].kind, ExpandedStep::kConfigOnly);
}

TEST(StageEvaluatorTest, EnvValuesExpandAgainstThePreviousEnv) {
  auto e = Evaluate("FROM a\nENV X=old\nENV X=new Y=$X\n");
  ASSERT_TRUE(e->status.ok()) << e->status;
  EXPECT_THAT(e->eval->config().env, Contains("Y=old"));
  EXPECT_THAT(e->eval->config().env, Contains("X=new"));
}

TEST(StageEvaluatorTest, EntrypointResetsInheritedCmdOnly) {
  ImageConfig base;
  base.cmd = {"sh"};
  base.cmd_set = true;
  auto e = Evaluate("FROM a\nENTRYPOINT [\"/app\"]\n", -1, {}, base);
  ASSERT_TRUE(e->status.ok());
  EXPECT_THAT(e->eval->config().entrypoint, ElementsAre("/app"));
  EXPECT_TRUE(e->eval->config().cmd.empty());
  EXPECT_FALSE(e->eval->config().cmd_set);

  e = Evaluate("FROM a\nCMD [\"--help\"]\nENTRYPOINT /app\n", -1, {}, base);
  ASSERT_TRUE(e->status.ok());
  EXPECT_THAT(e->eval->config().cmd, ElementsAre("--help"));
  EXPECT_THAT(e->eval->config().entrypoint,
              ElementsAre("/bin/sh", "-c", "/app"));
}

TEST(StageEvaluatorTest, RelativeWorkdirResolvesAgainstPrevious) {
  auto e = Evaluate(
      "FROM a\nWORKDIR /srv\nWORKDIR app\nENV D=sub\nWORKDIR $D/../x\n"
      "COPY . .\nCOPY a.txt b/\nCOPY c.txt /abs\nRUN pwd\n");
  ASSERT_TRUE(e->status.ok()) << e->status;
  EXPECT_EQ(e->steps[0].kind, ExpandedStep::kWorkdir);
  EXPECT_EQ(e->steps[0].workdir, "/srv");
  EXPECT_EQ(e->steps[1].workdir, "/srv/app");
  EXPECT_EQ(e->steps[3].workdir, "/srv/app/x");
  EXPECT_EQ(e->eval->config().working_dir, "/srv/app/x");
  EXPECT_EQ(e->steps[4].copy.dest, "/srv/app/x/");
  EXPECT_EQ(e->steps[5].copy.dest, "/srv/app/x/b/");
  EXPECT_EQ(e->steps[6].copy.dest, "/abs");
  EXPECT_EQ(e->steps[7].run.workdir, "/srv/app/x");
}

TEST(StageEvaluatorTest, ArgScopingAndRunEnv) {
  PlanOptions opts;
  opts.build_args = {{"VERSION", "2.0"}, {"HTTP_PROXY", "http://proxy:3128"}};
  auto e = Evaluate(
      "ARG VERSION=1.0\nARG GLOBAL_ONLY=g\n"
      "FROM a\n"
      "RUN echo $VERSION\n"  // not declared in the stage yet
      "ARG VERSION\n"
      "ARG GLOBAL_ONLY\n"
      "ARG LOCAL=l-${VERSION}\n"
      "ENV LOCAL=from-env\n"
      "RUN make\n"
      "WORKDIR /$LOCAL\n",
      -1, opts);
  ASSERT_TRUE(e->status.ok()) << e->status;
  const RunStep& before = e->steps[0].run;
  EXPECT_THAT(before.env, Not(Contains(HasSubstr("VERSION="))));
  EXPECT_THAT(before.env, Contains("HTTP_PROXY=http://proxy:3128"));
  EXPECT_EQ(e->steps[0].created_by, "RUN /bin/sh -c echo $VERSION");

  const ExpandedStep& run = e->steps[5];
  EXPECT_EQ(run.kind, ExpandedStep::kRun);
  EXPECT_THAT(run.run.argv, ElementsAre("/bin/sh", "-c", "make"));
  EXPECT_THAT(run.run.env, Contains("VERSION=2.0"));
  EXPECT_THAT(run.run.env, Contains("GLOBAL_ONLY=g"));
  EXPECT_THAT(run.run.env, Contains("LOCAL=from-env"));  // config env wins
  EXPECT_THAT(run.run.env, Not(Contains("LOCAL=l-2.0")));
  EXPECT_EQ(run.created_by,
            "RUN |3 VERSION=2.0 GLOBAL_ONLY=g LOCAL=from-env /bin/sh -c make");
  EXPECT_THAT(run.cache_text, HasSubstr("VERSION=2.0"));
  EXPECT_THAT(run.cache_text, Not(HasSubstr("proxy")));
  EXPECT_FALSE(run.empty_layer);
  EXPECT_EQ(e->steps[6].workdir, "/from-env");
  EXPECT_THAT(e->eval->used_build_args(), ElementsAre("VERSION"));
  // ARGs never reach the image config.
  EXPECT_THAT(e->eval->config().env, Not(Contains(HasSubstr("VERSION"))));
}

TEST(StageEvaluatorTest, RunFlagsAndHeredocs) {
  auto e = Evaluate(
      "FROM a AS deps\n"
      "FROM b\n"
      "RUN --mount=type=cache,target=/root/.cache,sharing=locked "
      "--mount=from=deps,source=/out,target=/deps --network=none make\n"
      "RUN <<EOF\necho one\necho two\nEOF\n"
      "RUN <<-EOF\n\t#!/usr/bin/env python3\n\tprint(1)\n\tEOF\n"
      "RUN cat <<A > /a\nbody\nA\n"
      "RUN [\"/bin/true\", \"x\"]\n"
      "USER nobody\n"
      "RUN id\n",
      1);
  ASSERT_TRUE(e->status.ok()) << e->status;
  const RunStep& r0 = e->steps[0].run;
  ASSERT_EQ(r0.mounts.size(), 2u);
  EXPECT_EQ(r0.mounts[0].type, "cache");
  EXPECT_EQ(r0.mounts[0].target, "/root/.cache");
  EXPECT_EQ(r0.mounts[0].sharing, "locked");
  EXPECT_FALSE(r0.mounts[0].readonly);
  EXPECT_EQ(r0.mounts[1].type, "bind");
  EXPECT_EQ(r0.mounts[1].from_stage, 0);
  EXPECT_TRUE(r0.mounts[1].readonly);
  EXPECT_EQ(r0.network, "none");

  EXPECT_THAT(e->steps[1].run.argv,
              ElementsAre("/bin/sh", "-c", "echo one\necho two\n"));
  const RunStep& py = e->steps[2].run;
  ASSERT_EQ(py.heredoc_files.size(), 1u);
  EXPECT_EQ(py.heredoc_files[0].content, "#!/usr/bin/env python3\nprint(1)\n");
  EXPECT_THAT(py.argv, ElementsAre("/dev/pipes/EOF"));
  EXPECT_THAT(e->steps[3].run.argv,
              ElementsAre("/bin/sh", "-c", "cat <<A > /a\nbody\nA"));
  EXPECT_THAT(e->steps[4].run.argv, ElementsAre("/bin/true", "x"));
  EXPECT_EQ(e->steps[4].created_by, "RUN /bin/true x");
  EXPECT_EQ(e->steps[6].run.user, "nobody");
}

TEST(StageEvaluatorTest, CopyAndAdd) {
  auto e = Evaluate(
      "FROM a AS build\n"
      "FROM b\n"
      "ARG OWNER=1000\n"
      "COPY --from=build --chown=${OWNER}:1000 --chmod=0755 --link /out/app "
      "/usr/local/bin/\n"
      "COPY --exclude=*.md src/ /src/\n"
      "ADD --checksum=sha256:abc https://example.com/x.tgz /x/\n"
      "COPY <<hello.txt <<'raw.txt' /etc/\nhi $OWNER\nhello.txt\n"
      "keep $OWNER\nraw.txt\n"
      "COPY [\"a b\", \"/with space/\"]\n",
      1);
  ASSERT_TRUE(e->status.ok()) << e->status;
  const CopyStep& c0 = e->steps[1].copy;
  EXPECT_EQ(c0.from, "build");
  EXPECT_EQ(c0.from_stage, 0);
  EXPECT_EQ(c0.chown, "1000:1000");
  EXPECT_EQ(c0.chmod, "0755");
  EXPECT_TRUE(c0.link);
  EXPECT_THAT(c0.sources, ElementsAre("/out/app"));
  EXPECT_EQ(c0.dest, "/usr/local/bin/");
  EXPECT_EQ(e->steps[1].created_by, "COPY /out/app /usr/local/bin/ # buildkit");
  EXPECT_THAT(e->steps[2].copy.excludes, ElementsAre("*.md"));
  EXPECT_TRUE(e->steps[3].copy.add);
  EXPECT_EQ(e->steps[3].copy.checksum, "sha256:abc");
  const CopyStep& docs = e->steps[4].copy;
  ASSERT_EQ(docs.inline_files.size(), 2u);
  EXPECT_EQ(docs.inline_files[0].name, "hello.txt");
  EXPECT_EQ(docs.inline_files[0].content, "hi 1000\n");
  EXPECT_EQ(docs.inline_files[1].content, "keep $OWNER\n");
  EXPECT_TRUE(docs.sources.empty());
  EXPECT_THAT(e->steps[5].copy.sources, ElementsAre("a b"));
  EXPECT_EQ(e->steps[5].copy.dest, "/with space/");

  auto bad = Evaluate("FROM a\nCOPY a b /notadir\n");
  EXPECT_THAT(std::string(bad->status.message()),
              HasSubstr("destination must be a directory"));
}

TEST(StageEvaluatorTest, Healthcheck) {
  auto e = Evaluate(
      "FROM a\nHEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 "
      "CMD curl -f http://localhost/\n");
  ASSERT_TRUE(e->status.ok()) << e->status;
  const auto& hc = e->eval->config().healthcheck;
  ASSERT_TRUE(hc.has_value());
  EXPECT_THAT(hc->test, ElementsAre("CMD-SHELL", "curl -f http://localhost/"));
  EXPECT_EQ(hc->interval_ns, 90'000'000'000);
  EXPECT_EQ(hc->timeout_ns, 500'000'000);
  EXPECT_EQ(hc->retries, 3);

  e = Evaluate("FROM a\nHEALTHCHECK NONE\n");
  ASSERT_TRUE(e->status.ok());
  EXPECT_THAT(e->eval->config().healthcheck->test, ElementsAre("NONE"));

  e = Evaluate("FROM a\nHEALTHCHECK --interval=1us CMD [\"x\"]\n");
  EXPECT_THAT(std::string(e->status.message()),
              HasSubstr("cannot be less than 1ms"));
  EXPECT_FALSE(ParseGoDurationNs("5x").ok());
  EXPECT_EQ(*ParseGoDurationNs("1h2m3.5s"), 3723'500'000'000);
}

TEST(StageEvaluatorTest, BaseTriggersRunFirstAndAreNotInherited) {
  ImageConfig base;
  base.on_build = {"RUN echo from base", "COPY . /app"};
  auto e = Evaluate("FROM a\nRUN true\n", -1, {}, base);
  ASSERT_TRUE(e->status.ok());
  EXPECT_TRUE(e->eval->config().on_build.empty());
  absl::StatusOr<std::vector<Node>> triggers = e->eval->BaseTriggers();
  ASSERT_TRUE(triggers.ok()) << triggers.status();
  ASSERT_EQ(triggers->size(), 2u);
  EXPECT_EQ((*triggers)[0].cmd, "run");
  EXPECT_EQ((*triggers)[0].start_line, 1);
  absl::StatusOr<ExpandedStep> step = e->eval->Next((*triggers)[1]);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->copy.dest, "/app");

  base.on_build = {"FROM x"};
  e = Evaluate("FROM a\n", -1, {}, base);
  EXPECT_FALSE(e->eval->BaseTriggers().ok());
}

TEST(StageEvaluatorTest, ExpansionErrorsCarryTheLine) {
  auto e = Evaluate("FROM a\nWORKDIR ${X:?must be set}\n");
  EXPECT_EQ(e->status.message(),
            "Dockerfile:2: failed to process \"${X:?must be set}\": X: must "
            "be set");
  e = Evaluate("FROM a\nEXPOSE eighty\n");
  EXPECT_EQ(e->status.message(), "Dockerfile:2: invalid containerPort: eighty");
  e = Evaluate("FROM a\nRUN --mount=type=nfs,target=/x true\n");
  EXPECT_THAT(std::string(e->status.message()),
              HasSubstr("unsupported mount type"));
}

}  // namespace
}  // namespace longshore::dockerfile
