// Layer commit and apply: round trips, determinism, compression, hostile tars.
// Runs as root (mknod of devices and whiteouts, chown, security.* xattrs).
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "image/compression.h"
#include "image/layer_apply.h"
#include "image/layer_commit.h"

namespace longshore::image {
namespace {

std::string TempRoot() {
  const char* t = getenv("TEST_TMPDIR");
  auto dir = MakeTempDir(t ? t : "/tmp", "layer_test");
  EXPECT_TRUE(dir.ok()) << dir.status();
  return *dir;
}

void Write(const std::string& path, const std::string& data, mode_t mode) {
  ASSERT_TRUE(WriteFileAtomic(path, data, mode).ok()) << path;
  ASSERT_EQ(chmod(path.c_str(), mode), 0) << path;
}

void SetMtime(const std::string& path, time_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0)
      << path;
}

std::string GetXattr(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = lgetxattr(path.c_str(), name, buf, sizeof(buf));
  if (n < 0) return "<none>";
  return std::string(buf, static_cast<size_t>(n));
}

// A tree in overlay upper-dir form with every kind of entry.
void MakeTree(const std::string& root) {
  ASSERT_TRUE(MakeDirs(root + "/a").ok());
  Write(root + "/a/f", "hello", 0640);
  ASSERT_EQ(chown((root + "/a/f").c_str(), 1000, 1001), 0);
  ASSERT_EQ(setxattr((root + "/a/f").c_str(), "user.foo", "bar", 3, 0), 0);
  // VFS_CAP_REVISION_2 | effective, permitted = CAP_NET_BIND_SERVICE.
  const unsigned char cap[20] = {0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0,
                                 0,    0, 0, 0,    0,    0,    0, 0, 0, 0};
  ASSERT_EQ(setxattr((root + "/a/f").c_str(), "security.capability", cap,
                     sizeof(cap), 0),
            0);
  ASSERT_EQ(link((root + "/a/f").c_str(), (root + "/a/link").c_str()), 0);
  Write(root + "/a/suid", "#!/bin/sh\n", 04755);
  // Overlay bookkeeping never reaches the tar.
  ASSERT_EQ(
      setxattr((root + "/a/suid").c_str(), "user.overlay.origin", "x", 1, 0),
      0);
  ASSERT_EQ(symlink("a/f", (root + "/sym").c_str()), 0);
  ASSERT_EQ(symlink("/etc/passwd", (root + "/abs").c_str()), 0);
  ASSERT_EQ(mkfifo((root + "/p").c_str(), 0600), 0);
  ASSERT_EQ(mknod((root + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(chmod((root + "/null").c_str(), 0666), 0);
  ASSERT_EQ(mknod((root + "/gone").c_str(), S_IFCHR, makedev(0, 0)), 0);
  ASSERT_TRUE(MakeDirs(root + "/o").ok());
  ASSERT_EQ(setxattr((root + "/o").c_str(), "user.overlay.opaque", "y", 1, 0),
            0);
  Write(root + "/o/x", "x", 0644);
  ASSERT_TRUE(MakeDirs(root + "/t").ok());
  ASSERT_EQ(
      setxattr((root + "/t").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  // Sparse: 4 MiB hole then data.
  {
    int fd = open((root + "/sparse").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "end", 3, 4 << 20), 3);
    close(fd);
  }
  for (const char* p : {"/a/f", "/a/suid", "/o/x", "/sparse", "/p", "/null",
                        "/gone", "/sym", "/abs"}) {
    SetMtime(root + p, 1600000000);
  }
  for (const char* p : {"/a", "/o", "/t"}) SetMtime(root + p, 1500000000);
}

struct TarEntry {
  std::string name;
  mode_t type;
  mode_t perm;
  int64_t uid, gid, mtime, size;
  std::string link;  // symlink or hardlink target
  std::map<std::string, std::string> xattrs;
};

// Lists an (optionally compressed) tar with libarchive.
std::vector<TarEntry> ListTar(const std::string& path) {
  std::vector<TarEntry> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_all(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 1 << 16), ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    TarEntry t;
    t.name = archive_entry_pathname(e);
    t.type = archive_entry_filetype(e);
    t.perm = archive_entry_perm(e);
    t.uid = archive_entry_uid(e);
    t.gid = archive_entry_gid(e);
    t.mtime = archive_entry_mtime(e);
    t.size = archive_entry_size(e);
    if (archive_entry_symlink(e)) t.link = archive_entry_symlink(e);
    if (archive_entry_hardlink(e)) t.link = archive_entry_hardlink(e);
    archive_entry_xattr_reset(e);
    const char* n;
    const void* v;
    size_t s;
    while (archive_entry_xattr_next(e, &n, &v, &s) == ARCHIVE_OK) {
      t.xattrs[n] = std::string(static_cast<const char*>(v), s);
    }
    out.push_back(t);
  }
  archive_read_free(a);
  return out;
}

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return "<popen failed>";
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  int rc = pclose(f);
  if (rc != 0) out += absl::StrCat("<exit ", rc, ">");
  return out;
}

TEST(LayerCommit, WritesOciFormWithWhiteoutsAndMetadata) {
  std::string root = TempRoot();
  MakeTree(root + "/tree");
  auto layer = CommitLayer(root + "/tree", root + "/blob", {});
  ASSERT_TRUE(layer.ok()) << layer.status();
  EXPECT_EQ(layer->media_type, kMediaTypeOciLayerGzip);
  auto digest = Sha256File(root + "/blob");
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(layer->digest, *digest);
  struct stat st;
  ASSERT_EQ(stat((root + "/blob").c_str(), &st), 0);
  EXPECT_EQ(layer->size, st.st_size);

  std::vector<TarEntry> entries = ListTar(root + "/blob");
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "a/", "a/f", "a/link", "a/suid", "abs", ".wh.gone",
                       "null", "o/", "o/.wh..wh..opq", "o/x", "p", "sparse",
                       "sym", "t/", "t/.wh..wh..opq"}));
  std::map<std::string, TarEntry> by;
  for (const auto& e : entries) by[e.name] = e;
  EXPECT_EQ(by["a/f"].uid, 1000);
  EXPECT_EQ(by["a/f"].gid, 1001);
  EXPECT_EQ(by["a/f"].perm, 0640u);
  EXPECT_EQ(by["a/f"].mtime, 1600000000);
  EXPECT_EQ(by["a/f"].xattrs["user.foo"], "bar");
  EXPECT_EQ(by["a/f"].xattrs.count("security.capability"), 1u);
  EXPECT_EQ(by["a/link"].link, "a/f");
  EXPECT_EQ(by["a/suid"].perm, 04755u);
  EXPECT_TRUE(by["a/suid"].xattrs.empty());
  EXPECT_EQ(by["abs"].type, AE_IFLNK);
  EXPECT_EQ(by["abs"].link, "/etc/passwd");
  EXPECT_EQ(by[".wh.gone"].type, AE_IFREG);
  EXPECT_EQ(by[".wh.gone"].size, 0);
  EXPECT_EQ(by["null"].type, AE_IFCHR);
  EXPECT_EQ(by["p"].type, AE_IFIFO);
  EXPECT_EQ(by["sparse"].size, (4 << 20) + 3);
  EXPECT_TRUE(by["o/"].xattrs.empty()) << "overlay xattr leaked into the tar";

  // The diffID is the sha256 of the decompressed stream, as gzip itself sees
  // it.
  std::string sha = Shell("gzip -dc '" + root + "/blob' | sha256sum");
  EXPECT_EQ(sha.substr(0, 64), layer->diff_id.substr(7));
  // No file name, mtime 0 in the gzip header; XFL 4 (the fastest
  // compression: igzip), OS 255.
  std::string head = Shell("head -c 10 '" + root + "/blob' | od -An -tx1");
  EXPECT_EQ(head, " 1f 8b 08 00 00 00 00 00 04 ff\n");
}

TEST(LayerApply, RoundTripRestoresTheTreeInOverlayForm) {
  std::string root = TempRoot();
  MakeTree(root + "/tree");
  auto layer = CommitLayer(root + "/tree", root + "/blob", {});
  ASSERT_TRUE(layer.ok()) << layer.status();
  ASSERT_TRUE(MakeDirs(root + "/snap").ok());
  auto applied =
      ApplyLayer(root + "/blob", layer->media_type, root + "/snap", {});
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->diff_id, layer->diff_id);
  EXPECT_EQ(applied->digest, layer->digest);
  const std::string s = root + "/snap";

  struct stat st, st2;
  ASSERT_EQ(lstat((s + "/a/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  EXPECT_EQ(*ReadFile(s + "/a/f"), "hello");
  EXPECT_EQ(GetXattr(s + "/a/f", "user.foo"), "bar");
  EXPECT_NE(GetXattr(s + "/a/f", "security.capability"), "<none>");
  ASSERT_EQ(lstat((s + "/a/link").c_str(), &st2), 0);
  EXPECT_EQ(st.st_ino, st2.st_ino);
  ASSERT_EQ(lstat((s + "/a/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(GetXattr(s + "/a/suid", "user.overlay.origin"), "<none>");
  ASSERT_EQ(lstat((s + "/a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  char buf[64] = {};
  ASSERT_GT(readlink((s + "/sym").c_str(), buf, sizeof(buf)), 0);
  EXPECT_STREQ(buf, "a/f");
  ASSERT_EQ(lstat((s + "/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  ASSERT_EQ(lstat((s + "/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  ASSERT_EQ(lstat((s + "/p").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(GetXattr(s + "/o", "user.overlay.opaque"), "y");
  EXPECT_EQ(GetXattr(s + "/t", "user.overlay.opaque"), "y");
  EXPECT_FALSE(PathExists(s + "/o/.wh..wh..opq"));
  ASSERT_EQ(lstat((s + "/sparse").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, (4 << 20) + 3);

  // Committing the snapshot again gives the very same layer.
  auto again = CommitLayer(s, root + "/blob2", {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->diff_id, layer->diff_id);
  EXPECT_EQ(again->digest, layer->digest);
}

TEST(LayerCommit, DeterministicAndClampedBySourceDateEpoch) {
  std::string root = TempRoot();
  MakeTree(root + "/tree");
  auto one = CommitLayer(root + "/tree", root + "/b1", {});
  auto two = CommitLayer(root + "/tree", root + "/b2", {});
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(one->digest, two->digest);
  EXPECT_EQ(*ReadFile(root + "/b1"), *ReadFile(root + "/b2"));

  CommitOptions sde;
  sde.source_date_epoch = 1000;
  auto c1 = CommitLayer(root + "/tree", root + "/c1", sde);
  ASSERT_TRUE(c1.ok());
  EXPECT_NE(c1->digest, one->digest);
  for (const auto& e : ListTar(root + "/c1")) {
    EXPECT_EQ(e.mtime, 1000) << e.name;
  }
  // Touching every file to a later time changes nothing once clamped.
  for (const char* p : {"/a/f", "/a", "/o/x", "/sparse", "/sym"}) {
    SetMtime(root + "/tree" + p, 1700000000);
  }
  auto c2 = CommitLayer(root + "/tree", root + "/c2", sde);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c1->digest, c2->digest);
  EXPECT_EQ(c1->diff_id, c2->diff_id);
  // Earlier times are kept as they are.
  sde.source_date_epoch = 1650000000;
  auto c3 = CommitLayer(root + "/tree", root + "/c3", sde);
  ASSERT_TRUE(c3.ok());
  for (const auto& e : ListTar(root + "/c3")) {
    if (e.name == "null") EXPECT_EQ(e.mtime, 1600000000);
    if (e.name == "a/f") EXPECT_EQ(e.mtime, 1650000000);
  }
}

// A few MiB of compressible but not trivial data spanning many gzip blocks.
void MakeBigTree(const std::string& root) {
  ASSERT_TRUE(MakeDirs(root).ok());
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < (3 << 20); ++i) {
    x = x * 1103515245 + 12345;
    data.push_back(static_cast<char>('a' + ((x >> 16) % 7)));
  }
  Write(root + "/big", data, 0644);
  for (int i = 0; i < 50; ++i) {
    Write(absl::StrCat(root, "/small", i), absl::StrCat("file ", i), 0644);
  }
}

TEST(LayerCommit, ParallelGzipIsIndependentOfThreadCountAndValid) {
  std::string root = TempRoot();
  MakeBigTree(root + "/tree");
  CommitOptions o1;
  o1.threads = 1;
  CommitOptions o2;
  o2.threads = 2;
  CommitOptions o4;
  o4.threads = 4;
  auto g1 = CommitLayer(root + "/tree", root + "/g1", o1);
  auto g2 = CommitLayer(root + "/tree", root + "/g2", o2);
  auto g4 = CommitLayer(root + "/tree", root + "/g4", o4);
  ASSERT_TRUE(g1.ok() && g2.ok() && g4.ok());
  EXPECT_EQ(g1->digest, g2->digest);
  EXPECT_EQ(g1->digest, g4->digest);
  EXPECT_LT(g1->size, g1->uncompressed_size / 2);
  EXPECT_EQ(Shell("gzip -t '" + root + "/g2' && echo ok"), "ok\n");
  std::string sha = Shell("gzip -dc '" + root + "/g2' | sha256sum");
  EXPECT_EQ(sha.substr(0, 64), g2->diff_id.substr(7));
  ASSERT_TRUE(MakeDirs(root + "/snap").ok());
  auto applied = ApplyLayer(root + "/g2", "", root + "/snap", {});
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->diff_id, g2->diff_id);
  EXPECT_EQ(*ReadFile(root + "/snap/big"), *ReadFile(root + "/tree/big"));
}

TEST(LayerCommit, ZstdAndUncompressed) {
  std::string root = TempRoot();
  MakeBigTree(root + "/tree");
  CommitOptions z1;
  z1.compression = Compression::kZstd;
  z1.threads = 1;
  CommitOptions z2 = z1;
  z2.threads = 2;
  auto a = CommitLayer(root + "/tree", root + "/z1", z1);
  auto b = CommitLayer(root + "/tree", root + "/z2", z2);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ(a->media_type, kMediaTypeOciLayerZstd);
  EXPECT_EQ(a->digest, b->digest);
  std::string sha = Shell("zstd -dc '" + root + "/z1' | sha256sum");
  EXPECT_EQ(sha.substr(0, 64), a->diff_id.substr(7));

  CommitOptions none;
  none.compression = Compression::kNone;
  auto n = CommitLayer(root + "/tree", root + "/n", none);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->digest, n->diff_id);
  EXPECT_EQ(n->diff_id, a->diff_id);
  EXPECT_EQ(n->media_type, kMediaTypeOciLayer);
  EXPECT_EQ(n->size % 512, 0);

  for (const char* blob : {"/z1", "/n"}) {
    std::string snap = root + "/snap" + (blob + 1);
    ASSERT_TRUE(MakeDirs(snap).ok());
    auto applied = ApplyLayer(root + blob, "", snap, {});
    ASSERT_TRUE(applied.ok()) << applied.status();
    EXPECT_EQ(applied->diff_id, a->diff_id);
  }

  CommitOptions docker_zstd = z1;
  docker_zstd.docker_media_types = true;
  EXPECT_FALSE(CommitLayer(root + "/tree", root + "/dz", docker_zstd).ok());
  EXPECT_FALSE(PathExists(root + "/dz"));
}

// CommitLayer walks the tree on one thread and compresses on another: the blob
// must be exactly what compressing the plain tar in one thread gives.
TEST(LayerCommit, PipelinedCommitEqualsCompressingTheTarDirectly) {
  std::string root = TempRoot();
  MakeBigTree(root + "/tree");
  // More than one zstd job (8 MiB each at level 3) and many gzip blocks.
  std::string noise;
  uint32_t x = 7;
  for (int i = 0; i < (10 << 20); ++i) {
    x = x * 1664525 + 1013904223;
    noise.push_back(
        static_cast<char>((i % 4096) < 3000 ? 'a' + (x >> 29) : (x >> 24)));
  }
  Write(root + "/tree/noise", noise, 0644);
  CommitOptions none;
  none.compression = Compression::kNone;
  auto plain = CommitLayer(root + "/tree", root + "/layer.tar", none);
  ASSERT_TRUE(plain.ok()) << plain.status();
  std::string tar = *ReadFile(root + "/layer.tar");
  for (Compression comp : {Compression::kGzip, Compression::kZstd}) {
    std::string direct_path = root + "/direct";
    int fd = open(direct_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    DigestingFdSink sink(fd, direct_path);
    CompressorOptions copts;
    copts.compression = comp;
    copts.threads = 1;
    auto c = NewCompressor(copts, &sink);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE((*c)->Write(tar.data(), tar.size()).ok());
    ASSERT_TRUE((*c)->Finish().ok());
    close(fd);
    std::string want_digest = sink.Digest();
    for (int threads : {3}) {
      CommitOptions o;
      o.compression = comp;
      o.threads = threads;
      std::string out = absl::StrCat(root, "/blob", threads);
      auto got = CommitLayer(root + "/tree", out, o);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->diff_id, plain->diff_id) << threads;
      EXPECT_EQ(got->uncompressed_size, static_cast<int64_t>(tar.size()));
      EXPECT_EQ(got->digest, want_digest)
          << "compression " << static_cast<int>(comp) << " threads " << threads;
      EXPECT_TRUE(*ReadFile(out) == *ReadFile(direct_path));
    }
  }
}

// More xattr names than the first listxattr buffer holds take the slow path.
TEST(LayerCommit, LongXattrListsAreComplete) {
  std::string root = TempRoot();
  ASSERT_TRUE(MakeDirs(root + "/tree").ok());
  Write(root + "/tree/f", "data", 0644);
  std::map<std::string, std::string> want;
  for (int i = 0; i < 60; ++i) {
    std::string name =
        absl::StrCat("user.a-rather-long-attribute-name-number-", 100 + i);
    std::string value = absl::StrCat("value ", i);
    ASSERT_EQ(setxattr((root + "/tree/f").c_str(), name.c_str(), value.data(),
                       value.size(), 0),
              0)
        << name;
    want[name] = value;
  }
  CommitOptions none;
  none.compression = Compression::kNone;
  auto l = CommitLayer(root + "/tree", root + "/x.tar", none);
  ASSERT_TRUE(l.ok()) << l.status();
  auto entries = ListTar(root + "/x.tar");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].xattrs, want);
}

// Blobs from other tools: gzip with several members, zstd with several frames.
TEST(LayerApply, ReadsMultiMemberGzipAndMultiFrameZstd) {
  std::string root = TempRoot();
  MakeBigTree(root + "/tree");
  CommitOptions none;
  none.compression = Compression::kNone;
  auto plain = CommitLayer(root + "/tree", root + "/layer.tar", none);
  ASSERT_TRUE(plain.ok());
  std::string tar = *ReadFile(root + "/layer.tar");
  size_t half = tar.size() / 2;
  ASSERT_TRUE(WriteFileAtomic(root + "/p1", tar.substr(0, half)).ok());
  ASSERT_TRUE(WriteFileAtomic(root + "/p2", tar.substr(half)).ok());
  ASSERT_EQ(
      Shell("cd " + root +
            " && gzip -c p1 > m.gz && gzip -c p2 >> m.gz"
            " && zstd -q -c p1 > m.zst && zstd -q -c p2 >> m.zst && echo ok"),
      "ok\n");
  for (const char* blob : {"m.gz", "m.zst"}) {
    std::string snap = root + "/snap-" + blob;
    ASSERT_TRUE(MakeDirs(snap).ok());
    auto a = ApplyLayer(root + "/" + blob, "", snap, {});
    ASSERT_TRUE(a.ok()) << blob << ": " << a.status();
    EXPECT_EQ(a->diff_id, plain->diff_id) << blob;
    EXPECT_EQ(*ReadFile(snap + "/big"), *ReadFile(root + "/tree/big"));
  }
}

// The snapshots ApplyLayer writes work as overlay lower dirs (userxattr form):
// a lower layer's deleted file and an opaque directory's old children
// disappear.
TEST(LayerApply, SnapshotsStackAsOverlayLowerDirs) {
  ASSERT_EQ(access("/usr/bin/unshare", X_OK), 0)
      << "unshare (util-linux) is missing";
  std::string root = TempRoot();
  ASSERT_TRUE(MakeDirs(root + "/base/d").ok());
  Write(root + "/base/f", "f", 0644);
  Write(root + "/base/keep", "keep", 0644);
  Write(root + "/base/d/old", "old", 0644);
  ASSERT_TRUE(MakeDirs(root + "/upper/d").ok());
  ASSERT_EQ(mknod((root + "/upper/f").c_str(), S_IFCHR, makedev(0, 0)), 0);
  ASSERT_EQ(
      setxattr((root + "/upper/d").c_str(), "user.overlay.opaque", "y", 1, 0),
      0);
  Write(root + "/upper/d/new", "new", 0644);
  for (const char* l : {"base", "upper"}) {
    std::string blob = absl::StrCat(root, "/", l, ".tgz");
    std::string snap = absl::StrCat(root, "/snap-", l);
    auto c = CommitLayer(absl::StrCat(root, "/", l), blob, {});
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(MakeDirs(snap).ok());
    auto a = ApplyLayer(blob, c->media_type, snap, {});
    ASSERT_TRUE(a.ok()) << a.status();
  }
  ASSERT_TRUE(MakeDirs(root + "/merged").ok());
  std::string out =
      Shell("unshare -m sh -c 'mount -t overlay overlay -o lowerdir=" + root +
            "/snap-upper:" + root + "/snap-base,userxattr " + root +
            "/merged && cd " + root + "/merged && find . | sort' 2>&1");
  EXPECT_EQ(out, ".\n./d\n./d/new\n./keep\n");
}

// ---------------------------------------------------------------------------
// Hostile layers.

class TarBuilder {
 public:
  TarBuilder() {
    a_ = archive_write_new();
    archive_write_set_format_pax_restricted(a_);
    archive_write_add_filter_gzip(a_);
    archive_write_open_memory(a_, buf_.data(), buf_.size(), &used_);
  }
  ~TarBuilder() {
    if (a_) archive_write_free(a_);
  }
  TarBuilder& File(const std::string& name, const std::string& data) {
    return Add(name, AE_IFREG, data, "", "", data.size());
  }
  TarBuilder& Symlink(const std::string& name, const std::string& target) {
    return Add(name, AE_IFLNK, "", target, "", 0);
  }
  TarBuilder& HardLink(const std::string& name, const std::string& target) {
    return Add(name, AE_IFREG, "", "", target, 0);
  }
  TarBuilder& Zeros(const std::string& name, size_t size) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, size);
    archive_write_header(a_, e);
    std::string zeros(1 << 16, '\0');
    for (size_t left = size; left > 0;) {
      size_t n = std::min(left, zeros.size());
      archive_write_data(a_, zeros.data(), n);
      left -= n;
    }
    archive_entry_free(e);
    return *this;
  }
  void Save(const std::string& path) {
    archive_write_close(a_);
    archive_write_free(a_);
    a_ = nullptr;
    ASSERT_TRUE(WriteFileAtomic(path, std::string(buf_.data(), used_)).ok());
  }

 private:
  TarBuilder& Add(const std::string& name, mode_t type, const std::string& data,
                  const std::string& symlink, const std::string& hardlink,
                  size_t size) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, type == AE_IFLNK ? 0777 : 0644);
    archive_entry_set_size(e, size);
    if (!symlink.empty()) archive_entry_set_symlink(e, symlink.c_str());
    if (!hardlink.empty()) archive_entry_set_hardlink(e, hardlink.c_str());
    archive_write_header(a_, e);
    if (!data.empty()) archive_write_data(a_, data.data(), data.size());
    archive_entry_free(e);
    return *this;
  }

  archive* a_;
  std::vector<char> buf_ = std::vector<char>(8 << 20);
  size_t used_ = 0;
};

class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = TempRoot();
    outside_ = root_ + "/outside";
    snap_ = root_ + "/work/snap";
    ASSERT_TRUE(MakeDirs(outside_).ok());
    ASSERT_TRUE(MakeDirs(snap_).ok());
    Write(outside_ + "/secret", "keep", 0600);
  }

  // Applies the tar and returns the error; checks nothing changed outside.
  absl::Status Apply(TarBuilder& t, ApplyOptions opts = {}) {
    t.Save(root_ + "/evil.tar.gz");
    auto r =
        ApplyLayer(root_ + "/evil.tar.gz", kMediaTypeOciLayerGzip, snap_, opts);
    EXPECT_EQ(Shell("ls -A '" + outside_ + "'"), "secret\n");
    EXPECT_EQ(*ReadFile(outside_ + "/secret"), "keep");
    EXPECT_EQ(Shell("ls -A '" + root_ + "/work'"), "snap\n");
    return r.status();
  }

  std::string root_, outside_, snap_;
};

TEST_F(HostileTest, DotDotEntryIsRefused) {
  TarBuilder t;
  t.File("ok", "1").File("../x", "evil");
  absl::Status s = Apply(t);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("\"../x\" contains \"..\""), std::string::npos)
      << s;
  TarBuilder t2;
  t2.File("a/../../outside/secret", "evil");
  EXPECT_FALSE(Apply(t2).ok());
}

TEST_F(HostileTest, AbsolutePathIsRefused) {
  TarBuilder t;
  t.File(outside_ + "/new", "evil");
  absl::Status s = Apply(t);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("is absolute"), std::string::npos) << s;
  EXPECT_FALSE(PathExists(outside_ + "/new"));
}

TEST_F(HostileTest, WriteThroughSymlinkIsRefused) {
  TarBuilder t;
  t.Symlink("evil", outside_).File("evil/secret", "pwned");
  absl::Status s = Apply(t);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("parent \"evil\" is a symlink"), std::string::npos)
      << s;
}

TEST_F(HostileTest, RelativeSymlinkLeavingTheRootIsRefused) {
  TarBuilder t;
  t.Symlink("d/up", "../../outside");
  absl::Status s = Apply(t);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("leads outside the root"), std::string::npos) << s;
  // Staying inside is fine, and absolute targets are kept unfollowed.
  TarBuilder ok;
  ok.Symlink("d/in", "../x").Symlink("etc", "/etc");
  EXPECT_TRUE(Apply(ok).ok());
}

TEST_F(HostileTest, HardLinksOutsideTheRootAreRefused) {
  TarBuilder t;
  t.HardLink("h", "/etc/passwd");
  absl::Status s = Apply(t);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("hard link target \"/etc/passwd\" is absolute"),
            std::string::npos)
      << s;
  TarBuilder t2;
  t2.HardLink("h", "../outside/secret");
  EXPECT_EQ(Apply(t2).code(), absl::StatusCode::kPermissionDenied);
  // Through a symlink that is itself harmless.
  TarBuilder t3;
  t3.Symlink("o", outside_).HardLink("h", "o/secret");
  absl::Status s3 = Apply(t3);
  EXPECT_EQ(s3.code(), absl::StatusCode::kPermissionDenied) << s3;
  EXPECT_NE(s3.message().find("is a symlink"), std::string::npos) << s3;
  // A target that is not an earlier entry.
  TarBuilder t4;
  t4.HardLink("h", "etc/passwd");
  absl::Status s4 = Apply(t4);
  EXPECT_FALSE(s4.ok());
  EXPECT_NE(s4.message().find("not an earlier entry"), std::string::npos) << s4;
  struct stat st;
  ASSERT_EQ(stat((outside_ + "/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_F(HostileTest, TarBombBeyondMaxBytesIsRefused) {
  TarBuilder t;
  t.Zeros("small", 1000).Zeros("bomb/huge", 3 << 20);
  ApplyOptions opts;
  opts.max_bytes = 2 << 20;
  absl::Status s = Apply(t, opts);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("entry \"bomb/huge\""), std::string::npos) << s;
  EXPECT_NE(s.message().find("2097152"), std::string::npos) << s;
  EXPECT_FALSE(PathExists(snap_ + "/bomb/huge"));
}

TEST_F(HostileTest, OverlayXattrsInTheTarAreDropped) {
  std::string tar;
  {
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    std::vector<char> buf(1 << 20);
    size_t used = 0;
    archive_write_open_memory(a, buf.data(), buf.size(), &used);
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "d/");
    archive_entry_set_filetype(e, AE_IFDIR);
    archive_entry_set_perm(e, 0755);
    archive_entry_xattr_add_entry(e, "user.overlay.redirect", "/x", 2);
    archive_entry_xattr_add_entry(e, "user.ok", "1", 1);
    archive_write_header(a, e);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    tar.assign(buf.data(), used);
  }
  ASSERT_TRUE(WriteFileAtomic(root_ + "/x.tar", tar).ok());
  auto r = ApplyLayer(root_ + "/x.tar", kMediaTypeOciLayer, snap_, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(GetXattr(snap_ + "/d", "user.overlay.redirect"), "<none>");
  EXPECT_EQ(GetXattr(snap_ + "/d", "user.ok"), "1");
  EXPECT_EQ(r->digest, r->diff_id);
}

TEST(LayerApply, CorruptAndTruncatedBlobsFail) {
  std::string root = TempRoot();
  MakeBigTree(root + "/tree");
  auto layer = CommitLayer(root + "/tree", root + "/blob", {});
  ASSERT_TRUE(layer.ok());
  std::string bytes = *ReadFile(root + "/blob");
  ASSERT_TRUE(
      WriteFileAtomic(root + "/cut", bytes.substr(0, bytes.size() / 2)).ok());
  ASSERT_TRUE(MakeDirs(root + "/s1").ok());
  auto r = ApplyLayer(root + "/cut", "", root + "/s1", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos)
      << r.status();
}

}  // namespace
}  // namespace longshore::image
