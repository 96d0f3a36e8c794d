#include "common/context_manifest.h"

#include <sys/stat.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "gtest/gtest.h"

namespace longshore {
namespace {

ContextFile File(const std::string& path, const std::string& data,
                 int64_t mtime) {
  ContextFile f;
  f.entry.set_path(path);
  f.entry.set_mode(S_IFREG | 0644);
  f.entry.set_size(static_cast<int64_t>(data.size()));
  f.entry.set_digest(Sha256Digest(data));
  f.mtime = mtime;
  return f;
}

std::vector<ContextFile> Tree(int n, int64_t mtime) {
  std::vector<ContextFile> files;
  for (int i = 0; i < n; ++i) {
    files.push_back(File(absl::StrCat("src/f", i), absl::StrCat("data ", i),
                         mtime + i % 3));
  }
  return files;
}

TEST(ContextManifestTest, RoundTrip) {
  std::vector<ContextFile> files = Tree(5000, 1700000000);
  BuiltManifest m = BuildManifest(files);
  EXPECT_GT(m.chunks.size(), 20u);
  auto parsed = ParseManifest(m.root);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->mtimes.size(), files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(parsed->mtimes[i], files[i].mtime);
  }
  std::vector<v1::ContextManifestChunk> chunks;
  size_t index = 0;
  for (const ManifestChunk& c : m.chunks) {
    EXPECT_EQ(Sha256Digest(c.bytes), c.digest);
    auto chunk = ParseChunk(c.bytes);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    for (const auto& e : chunk->entries()) {
      EXPECT_EQ(e.path(), files[index++].entry.path());
    }
    chunks.push_back(*chunk);
  }
  EXPECT_TRUE(CheckEntries(*parsed, chunks).ok());
}

// A fresh checkout changes every mtime: the chunks stay the same, only the
// root (small) changes.
TEST(ContextManifestTest, NewMtimesChangeOnlyTheRoot) {
  BuiltManifest a = BuildManifest(Tree(20000, 1700000000));
  BuiltManifest b = BuildManifest(Tree(20000, 1800000000));
  EXPECT_NE(a.digest, b.digest);
  ASSERT_EQ(a.chunks.size(), b.chunks.size());
  for (size_t i = 0; i < a.chunks.size(); ++i) {
    EXPECT_EQ(a.chunks[i].digest, b.chunks[i].digest);
  }
  EXPECT_LT(a.root.size(), 100u * 1024);
}

// Editing or adding one file changes one or two chunks.
TEST(ContextManifestTest, OneEditChangesFewChunks) {
  std::vector<ContextFile> files = Tree(20000, 1700000000);
  BuiltManifest a = BuildManifest(files);
  files[777] = File(files[777].entry.path(), "edited", files[777].mtime);
  files.insert(files.begin() + 12345, File("src/f12344a", "new", 1));
  BuiltManifest b = BuildManifest(files);
  std::set<std::string> old;
  for (const auto& c : a.chunks) old.insert(c.digest);
  int changed = 0;
  for (const auto& c : b.chunks) changed += old.count(c.digest) ? 0 : 1;
  EXPECT_GE(changed, 1);
  EXPECT_LE(changed, 4);
}

TEST(ContextManifestTest, BadEntriesAreRefused) {
  for (const char* bad : {"../x", "/abs", "a//b", "a/./b", ""}) {
    v1::ContextManifestChunk c;
    *c.add_entries() = File(bad, "x", 0).entry;
    EXPECT_FALSE(ParseChunk(c.SerializeAsString()).ok()) << bad;
  }
  v1::ContextManifestChunk c;
  auto* e = c.add_entries();
  e->set_path("dev");
  e->set_mode(S_IFCHR | 0644);
  EXPECT_FALSE(ParseChunk(c.SerializeAsString()).ok());
  c.Clear();
  auto* f = c.add_entries();
  f->set_path("f");
  f->set_mode(S_IFREG | 0644);
  f->set_digest("sha256:nothex");
  EXPECT_FALSE(ParseChunk(c.SerializeAsString()).ok());
}

TEST(ContextManifestTest, EntriesBeneathSymlinksAndDuplicatesAreRefused) {
  std::vector<ContextFile> files;
  ContextFile link;
  link.entry.set_path("l");
  link.entry.set_mode(S_IFLNK | 0777);
  link.entry.set_link_target("/etc");
  files.push_back(link);
  files.push_back(File("l/passwd", "x", 0));
  BuiltManifest m = BuildManifest(files);
  auto parsed = ParseManifest(m.root);
  ASSERT_TRUE(parsed.ok());
  std::vector<v1::ContextManifestChunk> chunks;
  for (const auto& c : m.chunks) chunks.push_back(*ParseChunk(c.bytes));
  EXPECT_FALSE(CheckEntries(*parsed, chunks).ok());

  BuiltManifest dup = BuildManifest({File("a", "1", 0), File("a", "2", 0)});
  parsed = ParseManifest(dup.root);
  chunks.clear();
  for (const auto& c : dup.chunks) chunks.push_back(*ParseChunk(c.bytes));
  EXPECT_FALSE(CheckEntries(*parsed, chunks).ok());
}

TEST(ContextManifestTest, CountsMustMatchTheRoot) {
  BuiltManifest m = BuildManifest(Tree(10, 0));
  auto parsed = ParseManifest(m.root);
  ASSERT_TRUE(parsed.ok());
  std::vector<v1::ContextManifestChunk> chunks;
  for (const auto& c : m.chunks) chunks.push_back(*ParseChunk(c.bytes));
  chunks.back().mutable_entries()->RemoveLast();
  EXPECT_FALSE(CheckEntries(*parsed, chunks).ok());
  EXPECT_FALSE(ParseManifest("\xff\xff garbage").ok());
}

}  // namespace
}  // namespace longshore
