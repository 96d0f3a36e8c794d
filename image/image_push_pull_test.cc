// PushImage and PullImage against a real docker-registry, checked with real
// peers: skopeo inspects and copies what was pushed, umoci unpacks it.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "image/content_store.h"
#include "image/image_builder.h"
#include "image/image_pull.h"
#include "image/image_push.h"
#include "image/layer_commit.h"
#include "image/testing/test_registry.h"
#include "nlohmann/json.hpp"

namespace longshore::image {
namespace {

using testing::Shell;
using testing::TestRegistry;

class ImagePushPullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool :
         {"/usr/bin/skopeo", "/usr/bin/umoci", "/bin/busybox"}) {
      ASSERT_EQ(access(tool, X_OK), 0)
          << tool << " is missing: install skopeo, umoci and busybox-static "
          << "(ops/bootstrap.sh)";
    }
    const char* t = getenv("TEST_TMPDIR");
    auto dir = MakeTempDir(t ? t : "/tmp", "push_pull_test");
    ASSERT_TRUE(dir.ok());
    root_ = *dir;
    auto store = ContentStore::Open(root_ + "/store");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto reg = TestRegistry::StartNew(root_ + "/registry", {});
    ASSERT_TRUE(reg.ok()) << reg.status();
    registry_ = std::move(*reg);

    // One layer: a busybox root file system.
    std::string l1 = root_ + "/l1";
    ASSERT_TRUE(MakeDirs(l1 + "/bin").ok());
    ASSERT_TRUE(MakeDirs(l1 + "/etc").ok());
    ASSERT_EQ(Shell("cp /bin/busybox " + l1 + "/bin/busybox").status, 0);
    ASSERT_EQ(symlink("busybox", (l1 + "/bin/sh").c_str()), 0);
    ASSERT_TRUE(WriteFileAtomic(l1 + "/etc/motd", "pushed by a test\n").ok());
    CommitOptions copts;
    copts.source_date_epoch = 1704067200;
    auto tmp = store_->NewTempPath("layer");
    ASSERT_TRUE(tmp.ok());
    auto layer = CommitLayer(l1, *tmp, copts);
    ASSERT_TRUE(layer.ok()) << layer.status();
    ASSERT_TRUE(store_->CommitTemp(*tmp, layer->digest).ok());
    layer_ = *layer;

    OciConfig config;
    config.architecture = "amd64";
    config.os = "linux";
    config.created = "2024-01-01T00:00:00Z";
    config.config.env = {"PATH=/bin"};
    config.config.cmd = {"/bin/sh"};
    config.rootfs.diff_ids = {layer->diff_id};
    config.history.push_back(
        {"2024-01-01T00:00:00Z", "COPY busybox /bin/", "", "", false});
    auto image = WriteImage(*store_, config, {layer->descriptor()});
    ASSERT_TRUE(image.ok()) << image.status();
    image_ = *image;
  }
  void TearDown() override {
    registry_.reset();
    RemoveTree(root_).IgnoreError();
  }

  Reference Ref(const std::string& s) {
    auto r = ParseReference(absl::StrCat(registry_->host(), "/", s));
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }

  std::string root_;
  std::unique_ptr<ContentStore> store_;
  std::unique_ptr<TestRegistry> registry_;
  CommittedLayer layer_;
  WrittenImage image_;
};

TEST_F(ImagePushPullTest, PushedImageIsReadBySkopeoAndUnpackedByUmoci) {
  RegistryClient client(RegistryOptions{});
  auto pushed = PushImage(
      client, *store_, image_.manifest,
      {Ref("team/app:1"), Ref("team/app:latest"), Ref("other/app:v1")});
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(pushed->digest, image_.manifest.digest);
  ASSERT_EQ(pushed->pushed.size(), 3u);
  // Config and layer uploaded once to team/app, mounted into other/app.
  EXPECT_EQ(pushed->blobs_uploaded, 2);
  EXPECT_EQ(pushed->blobs_mounted, 2);
  EXPECT_EQ(pushed->blobs_existed, 0);
  EXPECT_FALSE(
      absl::StrContains(registry_->Log(), "\"PUT /v2/other/app/blobs/uploads/"))
      << "other/app got an upload although the blobs could be mounted";

  std::string url = absl::StrCat("docker://", registry_->host(), "/team/app:1");
  auto inspect = Shell("skopeo inspect --tls-verify=false " + url);
  ASSERT_EQ(inspect.status, 0) << inspect.out;
  auto j = nlohmann::json::parse(inspect.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << inspect.out;
  EXPECT_EQ(j.value("Digest", ""), image_.manifest.digest);
  EXPECT_EQ(j.value("Architecture", ""), "amd64");
  ASSERT_TRUE(j["Layers"].is_array());
  EXPECT_EQ(j["Layers"][0], layer_.digest);

  std::string layout = root_ + "/oci";
  auto copy = Shell(absl::StrCat("skopeo copy --src-tls-verify=false docker://",
                                 registry_->host(),
                                 "/other/app:v1 oci:", layout, ":v1"));
  ASSERT_EQ(copy.status, 0) << copy.out;
  std::string bundle = root_ + "/bundle";
  auto unpack =
      Shell(absl::StrCat("umoci unpack --image ", layout, ":v1 ", bundle));
  ASSERT_EQ(unpack.status, 0) << unpack.out;
  struct stat st;
  ASSERT_EQ(stat((bundle + "/rootfs/bin/busybox").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  auto motd = ReadFile(bundle + "/rootfs/etc/motd");
  ASSERT_TRUE(motd.ok());
  EXPECT_EQ(*motd, "pushed by a test\n");

  // A second push of the same image uploads nothing.
  auto again = PushImage(client, *store_, image_.manifest, {Ref("team/app:2")});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->blobs_uploaded, 0);
  EXPECT_EQ(again->blobs_existed, 2);
}

TEST_F(ImagePushPullTest, PullByTagAndByDigestIntoAnotherStore) {
  RegistryClient client(RegistryOptions{});
  ASSERT_TRUE(
      PushImage(client, *store_, image_.manifest, {Ref("team/app:1")}).ok());

  auto other = ContentStore::Open(root_ + "/store2");
  ASSERT_TRUE(other.ok());
  auto by_tag = PullImage(client, Ref("team/app:1"), **other);
  ASSERT_TRUE(by_tag.ok()) << by_tag.status();
  EXPECT_EQ(by_tag->manifest.digest, image_.manifest.digest);
  EXPECT_EQ(by_tag->ref.digest, image_.manifest.digest);
  EXPECT_EQ(by_tag->config_descriptor.digest, image_.config.digest);
  ASSERT_EQ(by_tag->layers.size(), 1u);
  EXPECT_EQ(by_tag->layers[0].digest, layer_.digest);
  ASSERT_EQ(by_tag->diff_ids.size(), 1u);
  EXPECT_EQ(by_tag->diff_ids[0], layer_.diff_id);
  EXPECT_EQ(by_tag->config.config.cmd, std::vector<std::string>{"/bin/sh"});
  for (const std::string& d :
       {image_.manifest.digest, image_.config.digest, layer_.digest}) {
    EXPECT_TRUE((*other)->Has(d)) << d;
  }
  auto a = store_->ReadBlob(layer_.digest);
  auto b = (*other)->ReadBlob(layer_.digest);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);

  auto third = ContentStore::Open(root_ + "/store3");
  ASSERT_TRUE(third.ok());
  auto by_digest =
      PullImage(client, Ref("team/app@" + image_.manifest.digest), **third);
  ASSERT_TRUE(by_digest.ok()) << by_digest.status();
  EXPECT_EQ(by_digest->manifest.digest, image_.manifest.digest);
  EXPECT_TRUE((*third)->Has(layer_.digest));

  auto missing = PullImage(client, Ref("team/app:nope"), **third);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ImagePushPullTest, DockerSchema2ImageRoundTrips) {
  OciConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  config.rootfs.diff_ids = {layer_.diff_id};
  ImageWriteOptions wopts;
  wopts.docker_media_types = true;
  // A gzip layer under Docker's media type, as Docker-built images have.
  Descriptor layer = layer_.descriptor();
  layer.media_type = kMediaTypeDockerLayerGzip;
  auto image = WriteImage(*store_, config, {layer}, wopts);
  ASSERT_TRUE(image.ok()) << image.status();
  RegistryClient client(RegistryOptions{});
  ASSERT_TRUE(
      PushImage(client, *store_, image->manifest, {Ref("docker/app:1")}).ok());

  auto inspect =
      Shell(absl::StrCat("skopeo inspect --raw --tls-verify=false "
                         "docker://",
                         registry_->host(), "/docker/app:1"));
  ASSERT_EQ(inspect.status, 0) << inspect.out;
  EXPECT_TRUE(absl::StrContains(inspect.out, kMediaTypeDockerManifest))
      << inspect.out;

  auto other = ContentStore::Open(root_ + "/store2");
  ASSERT_TRUE(other.ok());
  auto pulled = PullImage(client, Ref("docker/app:1"), **other);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(pulled->manifest.media_type, kMediaTypeDockerManifest);
  EXPECT_EQ(pulled->manifest.digest, image->manifest.digest);
  ASSERT_EQ(pulled->layers.size(), 1u);
  EXPECT_EQ(pulled->layers[0].media_type, kMediaTypeDockerLayerGzip);
  EXPECT_TRUE((*other)->Has(layer_.digest));
}

TEST_F(ImagePushPullTest, RefusesToPushWhatTheStoreLacks) {
  RegistryClient client(RegistryOptions{});
  Descriptor bogus = image_.manifest;
  bogus.digest = "sha256:" + std::string(64, 'a');
  auto r = PushImage(client, *store_, bogus, {Ref("team/app:1")});
  ASSERT_FALSE(r.ok());
  auto tags =
      Shell(absl::StrCat("skopeo list-tags --tls-verify=false docker://",
                         registry_->host(), "/team/app"));
  EXPECT_FALSE(absl::StrContains(tags.out, "\"1\"")) << tags.out;

  auto pinned = PushImage(client, *store_, image_.manifest,
                          {Ref("team/app@sha256:" + std::string(64, 'b'))});
  EXPECT_EQ(pinned.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace longshore::image
