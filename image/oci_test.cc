#include "image/oci.h"

#include "gtest/gtest.h"

namespace longshore::image {
namespace {

const char kDigestA[] =
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const char kDigestB[] =
    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

TEST(OciJson, ConfigIsSortedCompactAndOmitsEmptyFields) {
  OciConfig c;
  c.architecture = "amd64";
  c.os = "linux";
  c.config.env = {"PATH=/bin"};
  c.config.cmd = {"sh"};
  c.rootfs.diff_ids = {kDigestA};
  c.history.push_back({"", "RUN x", "", "", false});
  EXPECT_EQ(ToJson(c),
            "{\"architecture\":\"amd64\",\"config\":{\"Cmd\":[\"sh\"],"
            "\"Env\":[\"PATH=/bin\"]},\"history\":[{\"created_by\":\"RUN "
            "x\"}],\"os\":\"linux\",\"rootfs\":{\"diff_ids\":[\"" +
                std::string(kDigestA) + "\"],\"type\":\"layers\"}}");
}

TEST(OciJson, ConfigRoundTripsEveryField) {
  OciConfig c;
  c.created = "2024-01-02T03:04:05Z";
  c.author = "me";
  c.architecture = "arm64";
  c.variant = "v8";
  c.os = "linux";
  c.config.user = "1000:1000";
  c.config.env = {"A=1", "B=2"};
  c.config.entrypoint = {"/bin/sh", "-c"};
  c.config.cmd = {"echo hi"};
  c.config.working_dir = "/app";
  c.config.labels = {{"a", "b"}, {"c", "d"}};
  c.config.exposed_ports = {"443/tcp", "80/tcp"};
  c.config.volumes = {"/data"};
  c.config.stop_signal = "SIGTERM";
  c.config.shell = {"/bin/bash", "-c"};
  c.config.on_build = {"RUN true"};
  c.config.args_escaped = true;
  Healthcheck h;
  h.test = {"CMD-SHELL", "true"};
  h.interval = 30000000000;
  h.retries = 3;
  c.config.healthcheck = h;
  c.rootfs.diff_ids = {kDigestA, kDigestB};
  c.history = {{"2024-01-02T03:04:05Z", "RUN a", "x", "buildkit", false},
               {"", "ENV A=1", "", "", true}};
  std::string json = ToJson(c);
  auto parsed = ParseConfig(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, c);
  EXPECT_EQ(ToJson(*parsed), json);
  EXPECT_NE(json.find("\"ExposedPorts\":{\"443/tcp\":{},\"80/tcp\":{}}"),
            std::string::npos);
  EXPECT_NE(json.find("\"Healthcheck\":{\"Interval\":30000000000,\"Retries\":3,"
                      "\"Test\":[\"CMD-SHELL\",\"true\"]}"),
            std::string::npos);
}

TEST(OciJson, ManifestRoundTripAndLayout) {
  Manifest m;
  m.config = {kMediaTypeOciConfig, kDigestA, 123, {}, {}, std::nullopt};
  m.layers.push_back(
      {kMediaTypeOciLayerGzip, kDigestB, 456, {}, {{"k", "v"}}, std::nullopt});
  std::string json = ToJson(m);
  EXPECT_EQ(json,
            "{\"config\":{\"digest\":\"" + std::string(kDigestA) +
                "\",\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                "\"size\":123},\"layers\":[{\"annotations\":{\"k\":\"v\"},"
                "\"digest\":\"" +
                kDigestB +
                "\",\"mediaType\":\"application/"
                "vnd.oci.image.layer.v1.tar+gzip\",\"size\":456}],"
                "\"mediaType\":\"application/"
                "vnd.oci.image.manifest.v1+json\",\"schemaVersion\":2}");
  auto parsed = ParseManifest(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, m);
}

TEST(OciJson, ParsesDockerSchema2AndIgnoresUnknownFields) {
  std::string json =
      std::string(
          "{\"schemaVersion\":2,\"mediaType\":\"application/"
          "vnd.docker.distribution.manifest.v2+json\",\"config\":{"
          "\"mediaType\":"
          "\"application/vnd.docker.container.image.v1+json\",\"size\":7,"
          "\"digest\":\"") +
      kDigestA +
      "\"},\"layers\":[{\"mediaType\":\"application/"
      "vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":9,\"digest\":\"" +
      kDigestB + "\"}],\"whatever\":1}";
  auto m = ParseManifest(json);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, kMediaTypeDockerManifest);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(*LayerCompression(m->layers[0].media_type), Compression::kGzip);
  EXPECT_EQ(m->layers[0].size, 9);
}

TEST(OciJson, RejectsBadInputNamingTheField) {
  EXPECT_FALSE(ParseManifest("not json").ok());
  auto s = ParseManifest("{\"schemaVersion\":2,\"config\":{\"digest\":1}}");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("manifest.config.digest"),
            std::string::npos)
      << s.status();
  auto c = ParseConfig("{\"architecture\":\"amd64\",\"os\":\"linux\"}");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("rootfs"), std::string::npos);
  auto bad = ParseDescriptor("{\"digest\":\"md5:x\",\"size\":1}");
  EXPECT_FALSE(bad.ok());
}

TEST(OciJson, SelectPlatformPicksLinuxAmd64) {
  Index idx;
  Descriptor arm{kMediaTypeOciManifest, kDigestA, 1, {}, {}, Platform{}};
  arm.platform->os = "linux";
  arm.platform->architecture = "arm64";
  Descriptor amd{kMediaTypeOciManifest, kDigestB, 1, {}, {}, Platform{}};
  amd.platform->os = "linux";
  amd.platform->architecture = "amd64";
  idx.manifests = {arm, amd};
  auto got = SelectPlatform(idx, Platform{"amd64", "linux", "", {}, ""});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->digest, kDigestB);
  auto idx2 = ParseIndex(ToJson(idx));
  ASSERT_TRUE(idx2.ok()) << idx2.status();
  EXPECT_EQ(*idx2, idx);
  auto none = SelectPlatform(idx, Platform{"s390x", "linux", "", {}, ""});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("linux/arm64"), std::string::npos);
}

TEST(OciJson, FormatRfc3339) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(1700000000), "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace longshore::image
