#include "sandbox/options.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace longshore::sandbox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseSandboxArgsTest, FullCommandLine) {
  auto o = ParseSandboxArgs({"--lower",
                             "/l/top",
                             "--lower=/l/base",
                             "--upper",
                             "/u",
                             "--work",
                             "/w",
                             "--hostname",
                             "step-1",
                             "--cwd",
                             "/app",
                             "--env",
                             "A=1",
                             "--env",
                             "PATH=/bin",
                             "--user",
                             "builder:wheel",
                             "--network",
                             "host",
                             "--seccomp-bpf",
                             "/p.bpf",
                             "--timeout",
                             "30",
                             "--",
                             "sh",
                             "-c",
                             "echo --env"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_THAT(o->lowers, ElementsAre("/l/top", "/l/base"));
  EXPECT_EQ(o->upper, "/u");
  EXPECT_EQ(o->work, "/w");
  EXPECT_EQ(o->hostname, "step-1");
  EXPECT_EQ(o->cwd, "/app");
  EXPECT_THAT(o->env, ElementsAre("A=1", "PATH=/bin"));
  EXPECT_EQ(o->user, "builder:wheel");
  EXPECT_EQ(o->network, NetworkMode::kHost);
  EXPECT_EQ(o->seccomp_bpf_path, "/p.bpf");
  EXPECT_EQ(o->timeout_seconds, 30);
  EXPECT_THAT(o->command, ElementsAre("sh", "-c", "echo --env"));
}

TEST(ParseSandboxArgsTest, Defaults) {
  auto o = ParseSandboxArgs({"--rootfs", "/r", "--", "true"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->hostname, "longshore");
  EXPECT_EQ(o->cwd, "/");
  EXPECT_EQ(o->user, "0:0");
  EXPECT_EQ(o->network, NetworkMode::kNone);
  EXPECT_TRUE(o->env.empty());
  EXPECT_EQ(o->timeout_seconds, 0);
  // Zero lowers (FROM scratch) is allowed.
  EXPECT_TRUE(
      ParseSandboxArgs({"--upper", "/u", "--work", "/w", "--", "x"}).ok());
}

TEST(ParseSandboxArgsTest, Rejections) {
  auto msg = [](std::vector<std::string> args) {
    auto o = ParseSandboxArgs(args);
    return o.ok() ? std::string("ok") : std::string(o.status().message());
  };
  EXPECT_THAT(msg({"--bogus", "1", "--", "x"}), HasSubstr("unknown option"));
  EXPECT_THAT(msg({"--rootfs", "/r"}), HasSubstr("no command"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--"}), HasSubstr("no command"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--upper", "/u", "--", "x"}),
              HasSubstr("cannot be combined"));
  EXPECT_THAT(msg({"--lower", "/l", "--", "x"}), HasSubstr("required"));
  EXPECT_THAT(
      msg({"--upper", "/u", "--work", "/w", "--lower", "/a:b", "--", "x"}),
      HasSubstr("contains"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--network", "default", "--", "x"}),
              HasSubstr("not implemented"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--network", "bridge", "--", "x"}),
              HasSubstr("not none or host"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--env", "NOVALUE", "--", "x"}),
              HasSubstr("not K=V"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--timeout", "0", "--", "x"}),
              HasSubstr("positive"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--cwd", "rel", "--", "x"}),
              HasSubstr("absolute"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--hostname"}),
              HasSubstr("missing value"));
  EXPECT_THAT(msg({"--rootfs", "/r", "stray", "--", "x"}),
              HasSubstr("unexpected argument"));
  EXPECT_THAT(
      msg({"--rootfs", "/r", "--no-seccomp", "--seccomp-bpf", "/p", "--", "x"}),
      HasSubstr("cannot be combined"));
}

TEST(ParseSandboxArgsTest, WriteSeccompModeNeedsNoCommand) {
  auto o = ParseSandboxArgs({"--write-seccomp-bpf", "/tmp/p.bpf"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->write_seccomp_bpf, "/tmp/p.bpf");
}

}  // namespace
}  // namespace longshore::sandbox
