#include "client/build_flags.h"

#include <stdio.h>
#include <stdlib.h>

#include "gtest/gtest.h"

namespace longshore::client {
namespace {

TEST(ParseBuildFlags, DockerSpellings) {
  auto f = ParseBuildFlags(
      {"-t", "app:1", "--tag=registry.local:5000/team/app", "-f",
       "x/Dockerfile", "--build-arg", "A=1", "--build-arg=B=two=2", "--target",
       "final", "--no-cache", "--progress=json", "--output",
       "type=oci,dest=out,tar=false", "--label", "k=v", "ctx"},
      "");
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->tags.size(), 2u);
  EXPECT_EQ(f->tags[0], "app:1");
  EXPECT_EQ(f->tags[1], "registry.local:5000/team/app:latest");
  EXPECT_EQ(f->dockerfile, "x/Dockerfile");
  ASSERT_EQ(f->build_args.size(), 2u);
  EXPECT_EQ(f->build_args[1].first, "B");
  EXPECT_EQ(f->build_args[1].second, "two=2");
  EXPECT_EQ(f->target, "final");
  EXPECT_TRUE(f->no_cache);
  EXPECT_EQ(f->progress, ProgressMode::kJson);
  ASSERT_EQ(f->outputs.size(), 1u);
  EXPECT_EQ(f->outputs[0].type(), v1::OutputSpec::OCI);
  EXPECT_EQ(f->outputs[0].dest(), "out");
  EXPECT_FALSE(f->outputs[0].tar());
  EXPECT_EQ(f->context, "ctx");
  EXPECT_EQ(f->labels[0].first, "k");
  EXPECT_TRUE(f->scheduler.empty());
}

TEST(ParseBuildFlags, SchedulerFromEnvironmentAndFlag) {
  auto f = ParseBuildFlags({"."}, "10.0.0.1:7070");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->scheduler, "10.0.0.1:7070");
  f = ParseBuildFlags({"--scheduler", "h:1", "."}, "10.0.0.1:7070");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->scheduler, "h:1");
}

TEST(ParseBuildFlags, PushNeedsATag) {
  auto f = ParseBuildFlags({"--push", "."}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("-t NAME:TAG"), std::string::npos);
  f = ParseBuildFlags({"--push", "-t", "r.io/a:b", "."}, "");
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->outputs.size(), 1u);
  EXPECT_EQ(f->outputs[0].type(), v1::OutputSpec::REGISTRY);
}

TEST(ParseBuildFlags, WorkerLabelsRepeat) {
  auto f = ParseBuildFlags(
      {"--worker-label", "pool=gpu", "--worker-label=zone=eu-1", "."},
      "sched:7070");
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->worker_labels.size(), 2u);
  EXPECT_EQ(f->worker_labels[0].first, "pool");
  EXPECT_EQ(f->worker_labels[0].second, "gpu");
  EXPECT_EQ(f->worker_labels[1].first, "zone");
  EXPECT_EQ(f->worker_labels[1].second, "eu-1");
  f = ParseBuildFlags({"--worker-label", "gpu", "."}, "sched:7070");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("--worker-label gpu: expected KEY=VALUE"),
            std::string::npos);
}

TEST(ParseBuildFlags, ErrorsNameTheFlag) {
  auto f = ParseBuildFlags({"--bogus", "."}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("unknown flag: --bogus"),
            std::string::npos);
  f = ParseBuildFlags({"-t"}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("flag needs an argument: -t"),
            std::string::npos);
  f = ParseBuildFlags({"--progress", "fancy", "."}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("--progress fancy"), std::string::npos);
  f = ParseBuildFlags({"a", "b"}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("exactly 1 argument"), std::string::npos);
  f = ParseBuildFlags({"-t", "Upper/Case", "."}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("Case"), std::string::npos);
}

TEST(ReadSecretFlag, FileEnvAndErrors) {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string path = std::string(tmp ? tmp : "/tmp") + "/secret.txt";
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("hunter2", f);
  fclose(f);
  auto s = ReadSecretFlag("id=pw,src=" + path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->first, "pw");
  EXPECT_EQ(s->second, "hunter2");
  setenv("LS_TEST_SECRET", "from-env", 1);
  s = ReadSecretFlag("id=tok,env=LS_TEST_SECRET");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->second, "from-env");
  s = ReadSecretFlag("id=LS_TEST_SECRET");  // a bare id: the variable
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->second, "from-env");
  EXPECT_FALSE(ReadSecretFlag("src=" + path).ok());  // no id
  auto missing = ReadSecretFlag("id=x,src=/nonexistent/file");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/file"),
            std::string::npos);
  auto flags = ParseBuildFlags({"--secret", "id=pw,src=" + path, "."}, "");
  ASSERT_TRUE(flags.ok()) << flags.status();
  ASSERT_EQ(flags->secrets.size(), 1u);
  EXPECT_EQ(flags->secrets[0].second, "hunter2");
}

TEST(ParseCacheFlag, RegistryOnly) {
  EXPECT_EQ(*ParseCacheFlag("--cache-from", "r.io/c"), "r.io/c");
  EXPECT_EQ(*ParseCacheFlag("--cache-to", "type=registry,ref=r.io/c,mode=max"),
            "r.io/c");
  auto bad = ParseCacheFlag("--cache-to", "type=gha");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"gha\""), std::string::npos);
  EXPECT_FALSE(ParseCacheFlag("--cache-from", "type=registry").ok());
  auto f =
      ParseBuildFlags({"--cache-from", "a/b", "--cache-to", "c/d", "."}, "");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->cache_from, std::vector<std::string>{"a/b"});
  EXPECT_EQ(f->cache_to, std::vector<std::string>{"c/d"});
}

TEST(ParseOutputFlag, Types) {
  auto o = ParseOutputFlag("type=docker,dest=img.tar");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->type(), v1::OutputSpec::DOCKER);
  EXPECT_TRUE(o->tar());
  o = ParseOutputFlag("type=oci,dest=o.tar,compression=zstd");
  ASSERT_TRUE(o.ok());
  ASSERT_EQ(o->attrs_size(), 1);
  EXPECT_EQ(o->attrs(0).key(), "compression");
  EXPECT_EQ(o->attrs(0).value(), "zstd");
  EXPECT_FALSE(ParseOutputFlag("type=oci").ok());  // no dest
  EXPECT_FALSE(ParseOutputFlag("type=oci,dest=x,tar=maybe").ok());
  EXPECT_FALSE(ParseOutputFlag("dest=x").ok());  // no type
}

TEST(ParseOutputFlag, LocalTarAndStdout) {
  auto o = ParseOutputFlag("type=local,dest=out");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->type(), v1::OutputSpec::LOCAL);
  EXPECT_EQ(o->dest(), "out");
  EXPECT_FALSE(o->tar());
  o = ParseOutputFlag("type=tar,dest=fs.tar");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->type(), v1::OutputSpec::TAR);
  EXPECT_TRUE(o->tar());
  o = ParseOutputFlag("type=tar,dest=-");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->dest(), "-");
  o = ParseOutputFlag("type=oci,dest=-");
  ASSERT_TRUE(o.ok()) << o.status();
  // buildx's shorthands.
  o = ParseOutputFlag("outdir");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->type(), v1::OutputSpec::LOCAL);
  EXPECT_EQ(o->dest(), "outdir");
  o = ParseOutputFlag("-");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->type(), v1::OutputSpec::TAR);
  EXPECT_EQ(o->dest(), "-");
  // A directory cannot go to stdout; local and tar need a dest.
  auto bad = ParseOutputFlag("type=local,dest=-");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("type=tar"), std::string::npos);
  EXPECT_FALSE(ParseOutputFlag("type=local").ok());
  EXPECT_FALSE(ParseOutputFlag("type=tar").ok());
  EXPECT_FALSE(ParseOutputFlag("type=oci,dest=-,tar=false").ok());
  EXPECT_FALSE(ParseOutputFlag("type=local,dest=x,tar=true").ok());
  EXPECT_FALSE(ParseOutputFlag("type=registry,dest=x").ok());
  bad = ParseOutputFlag("type=zip,dest=x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("local, tar"), std::string::npos);
}

TEST(ParseBuildFlags, StdinInputs) {
  auto f = ParseBuildFlags({"-f", "-", "."}, "");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->DockerfileFromStdin());
  EXPECT_FALSE(f->ContextFromStdin());
  f = ParseBuildFlags({"-"}, "");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->ContextFromStdin());
  f = ParseBuildFlags({"-f", "sub/Dockerfile.ci", "-"}, "");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->dockerfile, "sub/Dockerfile.ci");
  f = ParseBuildFlags({"-f", "-", "-"}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("both read stdin"), std::string::npos);
}

TEST(ParseBuildFlags, BuildxFlags) {
  auto f = ParseBuildFlags(
      {"--pull", "--network=none", "--allow", "network.host,security.insecure",
       "--allow=network.host", "--metadata-file", "md.json", "--detach",
       "--push", "-t", "r:5000/a:1", "."},
      "s:1");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->pull);
  EXPECT_EQ(f->network, "none");
  ASSERT_EQ(f->allow.size(), 2u);  // repeated names once
  EXPECT_EQ(f->allow[0], "network.host");
  EXPECT_EQ(f->allow[1], "security.insecure");
  EXPECT_EQ(f->metadata_file, "md.json");
  EXPECT_TRUE(f->detach);
  f = ParseBuildFlags({"--network", "bridge", "."}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("--network bridge"), std::string::npos);
  f = ParseBuildFlags({"--allow", "device", "."}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("--allow device"), std::string::npos);
  f = ParseBuildFlags({"--pull=maybe", "."}, "");
  ASSERT_FALSE(f.ok());
}

TEST(ParseBuildFlags, OutputCombinations) {
  // One stdout at most, and not with -q (which prints there).
  auto f = ParseBuildFlags({"-o", "-", "-o", "type=oci,dest=-", "."}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("only one output"), std::string::npos);
  f = ParseBuildFlags({"-q", "-o", "-", "."}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("--iidfile"), std::string::npos);
  // A detached client is not there to write client-side outputs.
  f = ParseBuildFlags({"--detach", "-o", "type=local,dest=x", "."}, "");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("--detach"), std::string::npos);
  f = ParseBuildFlags({"-o", "type=local,dest=x", "-o", "-", "."}, "");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->outputs.size(), 2u);
}

TEST(BuildUsage, EveryNewFlagHasAnExample) {
  const std::string usage = kBuildUsage;
  for (const char* s :
       {"--pull", "--network", "--allow", "--metadata-file", "--detach",
        "type=local,dest=", "type=tar", "dest=-", "-f -", " - < "}) {
    EXPECT_NE(usage.find(s), std::string::npos) << s;
  }
  EXPECT_NE(usage.find("e.g. --network none"), std::string::npos);
  EXPECT_NE(usage.find("e.g. --metadata-file"), std::string::npos);
}

TEST(ParseBuildFlags, HostsUlimitsShm) {
  auto f =
      ParseBuildFlags({"--add-host", "db.internal:10.0.0.5",
                       "--add-host=v6:fd00::1", "--ulimit", "nofile=1024:2048",
                       "--ulimit=core=-1", "--shm-size", "256m", "."},
                      "");
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->add_hosts.size(), 2u);
  EXPECT_EQ(f->add_hosts[1], "v6:fd00::1");
  ASSERT_EQ(f->ulimits.size(), 2u);
  EXPECT_EQ(f->ulimits[0], "nofile=1024:2048");
  EXPECT_EQ(f->shm_size, 256 << 20);
  for (const auto& [args, want] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--add-host", "nohost"}, "--add-host"},
           {{"--add-host", "db:999.1.1.1"}, "not an IP address"},
           {{"--ulimit", "files=1"}, "unknown resource 'files'"},
           {{"--ulimit", "nofile=10:5"}, "soft limit is above the hard"},
           {{"--shm-size", "lots"}, "--shm-size lots"},
           {{"--shm-size", "0"}, "--shm-size 0"}}) {
    std::vector<std::string> a = args;
    a.push_back(".");
    auto bad = ParseBuildFlags(a, "");
    ASSERT_FALSE(bad.ok()) << args[1];
    EXPECT_NE(bad.status().message().find(want), std::string::npos)
        << bad.status();
  }
  EXPECT_EQ(*ParseShmSize("1g"), int64_t{1} << 30);
  EXPECT_EQ(*ParseShmSize("4096"), 4096);
  EXPECT_EQ(*ParseShmSize("64K"), 64 << 10);
}

TEST(NormalizeTag, Rules) {
  EXPECT_EQ(*NormalizeTag("app"), "app:latest");
  EXPECT_EQ(*NormalizeTag("localhost:5000/app"), "localhost:5000/app:latest");
  EXPECT_EQ(*NormalizeTag("a/b/c:v1.2-rc_3"), "a/b/c:v1.2-rc_3");
  EXPECT_FALSE(NormalizeTag("app:").ok());
  EXPECT_FALSE(NormalizeTag("app@sha256:abc").ok());
  EXPECT_FALSE(NormalizeTag("-app").ok());
  EXPECT_FALSE(NormalizeTag(std::string("app:") + std::string(129, 'x')).ok());
}

}  // namespace
}  // namespace longshore::client
