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
  EXPECT_THAT(msg({"--rootfs", "/r", "--network", "bridge", "--", "x"}),
              HasSubstr("not none, default or host"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--pids", "0", "--", "x"}),
              HasSubstr("positive integer"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--memory", "1G", "--", "x"}),
              HasSubstr("positive integer"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--disk", "100", "--", "x"}),
              HasSubstr("needs --upper"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--bind", "/a", "--", "x"}),
              HasSubstr("SRC:DST"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--bind", "rel:/b", "--", "x"}),
              HasSubstr("absolute"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--bind", "/a:/b:rx", "--", "x"}),
              HasSubstr("not ro or rw"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--bind", "/a:/proc/x", "--", "x"}),
              HasSubstr("under /proc"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--tmpfs", "/", "--", "x"}),
              HasSubstr("over /"));
  EXPECT_THAT(msg({"--rootfs", "/r", "--tmpfs", "/t:big", "--", "x"}),
              HasSubstr("positive integer"));
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

TEST(ParseSandboxArgsTest, LimitsMountsAndNetwork) {
  auto o = ParseSandboxArgs({"--upper",
                             "/u",
                             "--work",
                             "/w",
                             "--memory",
                             "268435456",
                             "--pids",
                             "64",
                             "--disk=1048576",
                             "--nofile",
                             "4096",
                             "--network",
                             "default",
                             "--bind",
                             "/host/cache:/root/.cache:rw",
                             "--bind",
                             "/host/s:/run/s",
                             "--tmpfs",
                             "/scratch",
                             "--tmpfs",
                             "/t2:4096",
                             "--cgroup-parent",
                             "/sys/fs/cgroup/w",
                             "--",
                             "true"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->memory_bytes, 268435456u);
  EXPECT_EQ(o->pids, 64u);
  EXPECT_EQ(o->disk_bytes, 1048576u);
  EXPECT_EQ(o->nofile, 4096u);
  EXPECT_EQ(o->network, NetworkMode::kDefault);
  EXPECT_EQ(o->cgroup_parent, "/sys/fs/cgroup/w");
  ASSERT_EQ(o->binds.size(), 2u);
  EXPECT_EQ(o->binds[0].source, "/host/cache");
  EXPECT_EQ(o->binds[0].target, "/root/.cache");
  EXPECT_TRUE(o->binds[0].writable);
  EXPECT_EQ(o->binds[1].target, "/run/s");
  EXPECT_FALSE(o->binds[1].writable);
  ASSERT_EQ(o->tmpfs.size(), 2u);
  EXPECT_EQ(o->tmpfs[0].target, "/scratch");
  EXPECT_EQ(o->tmpfs[0].size_bytes, 64u << 20);
  EXPECT_EQ(o->tmpfs[1].size_bytes, 4096u);
}

TEST(ParseSandboxArgsTest, WriteSeccompModeNeedsNoCommand) {
  auto o = ParseSandboxArgs({"--write-seccomp-bpf", "/tmp/p.bpf"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->write_seccomp_bpf, "/tmp/p.bpf");
}

}  // namespace
}  // namespace longshore::sandbox
