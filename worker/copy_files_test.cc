#include "worker/copy_files.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tuple>

#include "common/file_util.h"
#include "gtest/gtest.h"

namespace longshore::worker {
namespace {

class CopyFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = getenv("TEST_TMPDIR");
    auto d = MakeTempDir(t ? t : "/tmp", "copy-");
    ASSERT_TRUE(d.ok());
    base_ = *d;
    src_ = base_ + "/src";
    dst_ = base_ + "/dst";
    ASSERT_TRUE(MakeDirs(src_ + "/dir/sub").ok());
    ASSERT_TRUE(MakeDirs(dst_ + "/etc").ok());
    ASSERT_TRUE(MakeDirs(base_ + "/outside").ok());
    Put(src_ + "/requirements.txt", "flask\n");
    Put(src_ + "/app.py", "print('hi')\n");
    Put(src_ + "/dir/a.txt", "a");
    Put(src_ + "/dir/sub/b.txt", "b");
    chmod((src_ + "/app.py").c_str(), 0751);
    Put(dst_ + "/etc/passwd",
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n");
    Put(dst_ + "/etc/group", "root:x:0:\napp:x:1001:\nstaff:x:50:\n");
    src_fd_ = open(src_.c_str(), O_RDONLY | O_DIRECTORY);
    dst_fd_ = open(dst_.c_str(), O_RDONLY | O_DIRECTORY);
  }
  void TearDown() override {
    close(src_fd_);
    close(dst_fd_);
    RemoveTree(base_).IgnoreError();
  }
  void Put(const std::string& path, const std::string& data) {
    ASSERT_TRUE(WriteFileAtomic(path, data).ok());
  }
  absl::Status Copy(std::vector<std::string> sources, std::string dest,
                    uid_t uid = 0, gid_t gid = 0) {
    CopyOptions o;
    o.src_root_fd = src_fd_;
    o.dst_root_fd = dst_fd_;
    o.sources = std::move(sources);
    o.dest = std::move(dest);
    o.uid = uid;
    o.gid = gid;
    return CopyFiles(o);
  }
  struct stat Stat(const std::string& rel) {
    struct stat st = {};
    EXPECT_EQ(lstat((dst_ + rel).c_str(), &st), 0) << rel;
    return st;
  }

  std::string base_, src_, dst_;
  int src_fd_ = -1, dst_fd_ = -1;
};

TEST_F(CopyFilesTest, SingleFileToFileAndDirectory) {
  ASSERT_TRUE(Copy({"requirements.txt"}, "/app/").ok());
  EXPECT_EQ(*ReadFile(dst_ + "/app/requirements.txt"), "flask\n");
  ASSERT_TRUE(Copy({"app.py"}, "/srv/main.py").ok());
  EXPECT_EQ(*ReadFile(dst_ + "/srv/main.py"), "print('hi')\n");
  EXPECT_EQ(Stat("/srv/main.py").st_mode & 07777, 0751u);
  // An existing directory as dest receives the file inside it.
  ASSERT_TRUE(Copy({"app.py"}, "/app").ok());
  EXPECT_TRUE(PathExists(dst_ + "/app/app.py"));
}

TEST_F(CopyFilesTest, DirectoryCopiesItsContents) {
  ASSERT_TRUE(Copy({"dir"}, "/data").ok());
  EXPECT_EQ(*ReadFile(dst_ + "/data/a.txt"), "a");
  EXPECT_EQ(*ReadFile(dst_ + "/data/sub/b.txt"), "b");
  EXPECT_FALSE(PathExists(dst_ + "/data/dir"));
  ASSERT_TRUE(Copy({"."}, "/all/").ok());
  EXPECT_TRUE(PathExists(dst_ + "/all/dir/sub/b.txt"));
}

TEST_F(CopyFilesTest, WildcardsAndTheTrailingSlashRule) {
  absl::Status s = Copy({"*.py", "*.txt"}, "/x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("must be a directory and end with a /"),
            std::string::npos);
  ASSERT_TRUE(Copy({"*.py", "*.txt"}, "/x/").ok());
  EXPECT_TRUE(PathExists(dst_ + "/x/app.py"));
  EXPECT_TRUE(PathExists(dst_ + "/x/requirements.txt"));
  s = Copy({"*.none"}, "/y/");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
}

TEST_F(CopyFilesTest, MissingSourceNamesIt) {
  absl::Status s = Copy({"nope.txt"}, "/");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("nope.txt"), std::string::npos) << s;
}

TEST_F(CopyFilesTest, OwnershipIsZeroOrChown) {
  absl::Status s = Copy({"dir"}, "/owned", 1000, 1001);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Stat("/owned").st_uid, 1000u);
  EXPECT_EQ(Stat("/owned/sub/b.txt").st_uid, 1000u);
  EXPECT_EQ(Stat("/owned/sub/b.txt").st_gid, 1001u);
  ASSERT_TRUE(Copy({"app.py"}, "/root-owned.py").ok());
  EXPECT_EQ(Stat("/root-owned.py").st_uid, 0u);
}

TEST_F(CopyFilesTest, SourcesCannotLeaveTheContext) {
  Put(base_ + "/outside/secret", "s");
  ASSERT_EQ(symlink("../outside/secret", (src_ + "/escape").c_str()), 0);
  // ".." is cleaned at the root, and a symlink resolves inside the root.
  absl::Status s = Copy({"../outside/secret"}, "/got");
  EXPECT_FALSE(s.ok());
  s = Copy({"escape"}, "/got");
  EXPECT_FALSE(s.ok()) << "a symlink out of the context must not be followed";
  EXPECT_FALSE(PathExists(dst_ + "/got"));
}

TEST_F(CopyFilesTest, DestinationSymlinksStayInsideTheRoot) {
  // A hostile image: /app is a symlink to the host's directory.
  ASSERT_EQ(symlink((base_ + "/outside").c_str(), (dst_ + "/app").c_str()), 0);
  absl::Status s = Copy({"app.py"}, "/app/");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(PathExists(base_ + "/outside/app.py"))
      << "COPY wrote through a symlink out of the image root";
  // The absolute link target is resolved inside the root instead.
  EXPECT_TRUE(PathExists(dst_ + base_ + "/outside/app.py"));
}

TEST_F(CopyFilesTest, ChecksumFollowsContentNotTime) {
  auto a = ChecksumSources(src_fd_, {"dir", "app.py"});
  ASSERT_TRUE(a.ok()) << a.status();
  struct timespec ts[2] = {{1, 0}, {1, 0}};
  utimensat(AT_FDCWD, (src_ + "/dir/a.txt").c_str(), ts, 0);
  auto b = ChecksumSources(src_fd_, {"dir", "app.py"});
  EXPECT_EQ(*a, *b);
  Put(src_ + "/dir/a.txt", "changed");
  auto c = ChecksumSources(src_fd_, {"dir", "app.py"});
  EXPECT_NE(*a, *c);
  chmod((src_ + "/app.py").c_str(), 0600);
  auto d = ChecksumSources(src_fd_, {"dir", "app.py"});
  EXPECT_NE(*c, *d);
  // requirements.txt is not among the sources: changing it changes nothing.
  Put(src_ + "/requirements.txt", "django\n");
  EXPECT_EQ(*d, *ChecksumSources(src_fd_, {"dir", "app.py"}));
}

// Writes a gzip tar with entries (name, type, content-or-target).
void WriteTarGz(
    const std::string& path,
    const std::vector<std::tuple<std::string, char, std::string>>& entries) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& [name, type, data] : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_uid(e, 7);
    archive_entry_set_gid(e, 8);
    archive_entry_set_mtime(e, 1600000000, 0);
    if (type == 'd') {
      archive_entry_set_filetype(e, AE_IFDIR);
      archive_entry_set_perm(e, 0750);
    } else if (type == 'l') {
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_perm(e, 0777);
      archive_entry_set_symlink(e, data.c_str());
    } else {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, 0640);
      archive_entry_set_size(e, data.size());
    }
    archive_write_header(a, e);
    if (type == 'f') archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

TEST_F(CopyFilesTest, AddUnpacksLocalArchivesInsideTheRoot) {
  WriteTarGz(src_ + "/rootfs.tar.gz", {{"etc/", 'd', ""},
                                       {"etc/os-release", 'f', "ID=test\n"},
                                       {"link-out", 'l', "/etc"},
                                       {"link-out/through-link", 'f', "inside"},
                                       {"../../escape", 'f', "nope"},
                                       {"/abs", 'f', "abs"}});
  CopyOptions o;
  o.src_root_fd = src_fd_;
  o.dst_root_fd = dst_fd_;
  o.sources = {"rootfs.tar.gz"};
  o.dest = "/opt/root/";
  o.add = true;
  o.instruction = "ADD";
  absl::Status s = CopyFiles(o);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(*ReadFile(dst_ + "/opt/root/etc/os-release"), "ID=test\n");
  EXPECT_EQ(Stat("/opt/root/etc/os-release").st_uid, 7u);  // archive owner
  EXPECT_EQ(Stat("/opt/root/etc/os-release").st_mode & 07777, 0640u);
  EXPECT_EQ(Stat("/opt/root/etc").st_mode & 07777, 0750u);
  // ".." and absolute names land inside the destination.
  EXPECT_EQ(*ReadFile(dst_ + "/opt/root/escape"), "nope");
  EXPECT_EQ(*ReadFile(dst_ + "/opt/root/abs"), "abs");
  EXPECT_FALSE(PathExists(base_ + "/escape"));
  // A symlink to /etc resolves in the image root, never the host's /etc.
  EXPECT_EQ(*ReadFile(dst_ + "/etc/through-link"), "inside");
  EXPECT_FALSE(PathExists("/etc/through-link"));
  // COPY does not unpack.
  o.add = false;
  o.dest = "/copied/";
  ASSERT_TRUE(CopyFiles(o).ok());
  EXPECT_TRUE(PathExists(dst_ + "/copied/rootfs.tar.gz"));
}

}  // namespace
}  // namespace longshore::worker
