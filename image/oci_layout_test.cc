// End to end through real OCI tools: layers committed from directories, an
// image written into the store, exported as an OCI layout (dir and tar) and a
// docker archive, then read back by skopeo and unpacked by umoci.
#include "image/oci_layout.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "image/content_store.h"
#include "image/image_builder.h"
#include "image/layer_commit.h"
#include "image/testing/test_registry.h"
#include "nlohmann/json.hpp"

namespace longshore::image {
namespace {

using testing::Shell;
using testing::ShellResult;

class OciLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool :
         {"/usr/bin/skopeo", "/usr/bin/umoci", "/bin/busybox"}) {
      ASSERT_EQ(access(tool, X_OK), 0)
          << tool << " is missing: install skopeo, umoci and busybox-static "
          << "(ops/bootstrap.sh)";
    }
    const char* t = getenv("TEST_TMPDIR");
    auto dir = MakeTempDir(t ? t : "/tmp", "layout_test");
    ASSERT_TRUE(dir.ok());
    root_ = *dir;
    auto store = ContentStore::Open(root_ + "/store");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);

    // Layer 1: a busybox root file system.
    std::string l1 = root_ + "/l1";
    ASSERT_TRUE(MakeDirs(l1 + "/bin").ok());
    ASSERT_TRUE(MakeDirs(l1 + "/etc").ok());
    ASSERT_EQ(Shell("cp /bin/busybox " + l1 + "/bin/busybox").status, 0);
    ASSERT_EQ(symlink("busybox", (l1 + "/bin/sh").c_str()), 0);
    ASSERT_TRUE(WriteFileAtomic(l1 + "/etc/motd", "welcome\n").ok());
    ASSERT_TRUE(
        WriteFileAtomic(l1 + "/etc/passwd", "root:x:0:0::/:/bin/sh\n").ok());
    // Layer 2, in overlay upper form: a new file and the deletion of /etc/motd.
    std::string l2 = root_ + "/l2";
    ASSERT_TRUE(MakeDirs(l2 + "/etc").ok());
    ASSERT_TRUE(
        WriteFileAtomic(l2 + "/hello.txt", "hello from layer 2\n").ok());
    ASSERT_EQ(mknod((l2 + "/etc/motd").c_str(), S_IFCHR, makedev(0, 0)), 0);

    OciConfig config;
    config.architecture = "amd64";
    config.os = "linux";
    config.created = "2024-01-01T00:00:00Z";
    config.config.env = {"PATH=/bin"};
    config.config.cmd = {"/bin/sh"};
    std::vector<Descriptor> layers;
    CommitOptions opts;
    opts.source_date_epoch = 1704067200;
    for (const std::string& dir : {l1, l2}) {
      auto tmp = store_->NewTempPath("layer");
      ASSERT_TRUE(tmp.ok());
      auto layer = CommitLayer(dir, *tmp, opts);
      ASSERT_TRUE(layer.ok()) << layer.status();
      ASSERT_TRUE(store_->CommitTemp(*tmp, layer->digest).ok());
      layers.push_back(layer->descriptor());
      config.rootfs.diff_ids.push_back(layer->diff_id);
      config.history.push_back(
          {"2024-01-01T00:00:00Z", "COPY " + dir, "", "", false});
    }
    auto image = WriteImage(*store_, config, layers);
    ASSERT_TRUE(image.ok()) << image.status();
    image_ = *image;
    layers_ = layers;
  }

  std::string root_;
  std::unique_ptr<ContentStore> store_;
  WrittenImage image_;
  std::vector<Descriptor> layers_;
};

TEST_F(OciLayoutTest, DirectoryLayoutReadBySkopeoAndUnpackedByUmoci) {
  ImageExport ex{image_.manifest, {"example.com/team/app:1", "app"}};
  std::string dir = root_ + "/layout";
  ASSERT_TRUE(WriteOciLayoutDir(*store_, ex, dir).ok());

  auto index = nlohmann::json::parse(*ReadFile(dir + "/index.json"));
  ASSERT_EQ(index["manifests"].size(), 2u);
  EXPECT_EQ(
      index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
      "1");
  EXPECT_EQ(index["manifests"][0]["annotations"]["io.containerd.image.name"],
            "example.com/team/app:1");
  EXPECT_EQ(index["manifests"][1]["annotations"]["io.containerd.image.name"],
            "docker.io/library/app:latest");
  EXPECT_EQ(*ReadFile(dir + "/oci-layout"),
            "{\"imageLayoutVersion\":\"1.0.0\"}");

  ShellResult inspect = Shell("skopeo inspect oci:" + dir + ":1");
  ASSERT_EQ(inspect.status, 0) << inspect.out;
  auto j = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(j["Digest"], image_.manifest.digest);
  ASSERT_EQ(j["Layers"].size(), 2u);
  EXPECT_EQ(j["Layers"][0], layers_[0].digest);
  EXPECT_EQ(j["Architecture"], "amd64");

  ShellResult unpack = Shell("cd " + root_ + " && umoci unpack --image " + dir +
                             ":latest bundle");
  ASSERT_EQ(unpack.status, 0) << unpack.out;
  std::string rootfs = root_ + "/bundle/rootfs";
  EXPECT_EQ(*ReadFile(rootfs + "/hello.txt"), "hello from layer 2\n");
  EXPECT_EQ(*ReadFile(rootfs + "/etc/passwd"), "root:x:0:0::/:/bin/sh\n");
  EXPECT_FALSE(PathExists(rootfs + "/etc/motd")) << "whiteout not honoured";
  ShellResult run = Shell(rootfs + "/bin/busybox echo ran");
  EXPECT_EQ(run.out, "ran\n");
  char link[64] = {};
  ASSERT_GT(readlink((rootfs + "/bin/sh").c_str(), link, sizeof(link)), 0);
  EXPECT_STREQ(link, "busybox");
}

TEST_F(OciLayoutTest, TarLayoutIsDeterministicAndReadable) {
  ImageExport ex{image_.manifest, {"app:1"}};
  ASSERT_TRUE(WriteOciLayoutTarFile(*store_, ex, root_ + "/a.tar").ok());
  ASSERT_TRUE(WriteOciLayoutTarFile(*store_, ex, root_ + "/b.tar").ok());
  EXPECT_EQ(*ReadFile(root_ + "/a.tar"), *ReadFile(root_ + "/b.tar"));
  ShellResult list = Shell("tar -tf " + root_ + "/a.tar");
  ASSERT_EQ(list.status, 0);
  EXPECT_EQ(list.out.substr(0, 21), "blobs/\nblobs/sha256/\n");
  EXPECT_NE(list.out.find("\nindex.json\noci-layout\n"), std::string::npos)
      << list.out;
  ShellResult inspect =
      Shell("skopeo inspect oci-archive:" + root_ + "/a.tar:1");
  ASSERT_EQ(inspect.status, 0) << inspect.out;
  EXPECT_EQ(nlohmann::json::parse(inspect.out)["Digest"],
            image_.manifest.digest);
}

TEST_F(OciLayoutTest, DockerArchiveReadBySkopeo) {
  ImageExport ex{image_.manifest,
                 {"docker.io/library/app:1", "localhost:5000/x/y:2"}};
  std::string file = root_ + "/docker.tar";
  ASSERT_TRUE(WriteDockerArchiveFile(*store_, ex, file).ok());
  ShellResult mj = Shell("tar -xOf " + file + " manifest.json");
  ASSERT_EQ(mj.status, 0) << mj.out;
  auto m = nlohmann::json::parse(mj.out);
  EXPECT_EQ(m[0]["RepoTags"],
            nlohmann::json::array({"app:1", "localhost:5000/x/y:2"}));
  EXPECT_EQ(m[0]["Config"], "blobs/sha256/" + image_.config.digest.substr(7));
  ASSERT_EQ(m[0]["Layers"].size(), 2u);

  ShellResult inspect = Shell("skopeo inspect docker-archive:" + file);
  ASSERT_EQ(inspect.status, 0) << inspect.out;
  auto j = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(j["Layers"].size(), 2u);
  EXPECT_EQ(j["Env"], nlohmann::json::array({"PATH=/bin"}));
  // A full copy verifies every layer against the config's diff_ids.
  ShellResult copy = Shell("skopeo copy docker-archive:" + file +
                           ":app:1 oci:" + root_ + "/copied:app");
  ASSERT_EQ(copy.status, 0) << copy.out;
  ShellResult unpack = Shell("cd " + root_ + " && umoci unpack --image " +
                             root_ + "/copied:app bundle2");
  ASSERT_EQ(unpack.status, 0) << unpack.out;
  EXPECT_EQ(*ReadFile(root_ + "/bundle2/rootfs/hello.txt"),
            "hello from layer 2\n");
}

TEST_F(OciLayoutTest, MissingBlobsAndBadInputsAreErrors) {
  Descriptor missing = image_.manifest;
  missing.digest = "sha256:" + std::string(64, 'e');
  ImageExport ex{missing, {"app:1"}};
  absl::Status s = WriteOciLayoutDir(*store_, ex, root_ + "/nope");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  ImageExport bad_name{image_.manifest, {"UPPER:case"}};
  EXPECT_FALSE(WriteOciLayoutTarFile(*store_, bad_name, root_ + "/x.tar").ok());
  EXPECT_FALSE(PathExists(root_ + "/x.tar"));
  OciConfig c;
  c.rootfs.diff_ids = {"sha256:" + std::string(64, 'a')};
  EXPECT_FALSE(WriteImage(*store_, c, {}).ok());
}

}  // namespace
}  // namespace longshore::image
