#include "sandbox/id_mapping.h"

#include <stdlib.h>

#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace longshore::sandbox {
namespace {

using ::testing::ElementsAre;

TEST(SubordinateIdFileTest, FindsRangesByNameAndById) {
  SubordinateIdFile f = SubordinateIdFile::Parse(
      "# comment\n"
      "alice:100000:65536\n"
      "1001:200000:1000\n"
      "bob:300000:65536\n"
      "alice:400000:10\n"
      "broken line\n"
      "carol:x:5\n"
      "dave:5:0\n");
  auto alice = f.RangesFor("alice", 1000);
  ASSERT_EQ(alice.size(), 2u);
  EXPECT_EQ(alice[0].start, 100000u);
  EXPECT_EQ(alice[0].count, 65536u);
  EXPECT_EQ(alice[1].start, 400000u);

  auto by_id = f.RangesFor("nobody-by-that-name", 1001);
  ASSERT_EQ(by_id.size(), 1u);
  EXPECT_EQ(by_id[0].start, 200000u);

  EXPECT_TRUE(f.RangesFor("carol", 7).empty());
  EXPECT_TRUE(f.RangesFor("dave", 8).empty());
}

TEST(SubordinateIdFileTest, FirstRangeHonoursMinimumCount) {
  SubordinateIdFile f = SubordinateIdFile::Parse(
      "w:500:10\n"
      "w:100000:65536\n");
  auto r = f.FirstRangeFor("w", 42, 65536);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->start, 100000u);
  auto small = f.FirstRangeFor("w", 42, 5);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->start, 500u);
  auto none = f.FirstRangeFor("x", 43, 1);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
}

TEST(SubordinateIdFileTest, SkipsRangesThatWrap) {
  SubordinateIdFile f = SubordinateIdFile::Parse("w:4294967000:65536\n");
  EXPECT_TRUE(f.RangesFor("w", 1).empty());
}

TEST(SubordinateIdFileTest, LoadsFromFile) {
  char tmpl[] = "/tmp/id_mapping_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/subuid";
  ASSERT_TRUE(WriteFileAtomic(path, "longshore:100000:65536\n").ok());
  auto f = SubordinateIdFile::Load(path);
  ASSERT_TRUE(f.ok()) << f.status();
  auto r = f->FirstRangeFor("longshore", 999, 65536);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->start, 100000u);
  EXPECT_FALSE(SubordinateIdFile::Load(path + ".missing").ok());
  ASSERT_TRUE(RemoveTree(tmpl).ok());
}

TEST(IdMapTest, FormatsAndParses) {
  std::vector<IdMapExtent> m = {{0, 100000, 65536}, {65536, 999, 1}};
  const std::string text = FormatIdMap(m);
  EXPECT_EQ(text, "0 100000 65536\n65536 999 1\n");
  auto parsed = ParseIdMap(
      "         0     100000      65536\n"
      "     65536        999          1\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(*parsed, ElementsAre(IdMapExtent{0, 100000, 65536},
                                   IdMapExtent{65536, 999, 1}));
  EXPECT_FALSE(ParseIdMap("0 1\n").ok());
}

TEST(IdMapTest, RecognizesInitialMapAndContiguousRange) {
  EXPECT_TRUE(IsInitialIdMap({{0, 0, 4294967295u}}));
  EXPECT_FALSE(IsInitialIdMap({{0, 100000, 65536}}));
  EXPECT_EQ(ContiguousIdsFromZero({{65536, 999, 1}, {0, 100000, 65536}}),
            65537u);
  EXPECT_EQ(ContiguousIdsFromZero({{0, 999, 1}}), 1u);
  EXPECT_EQ(ContiguousIdsFromZero({{1, 999, 1}}), 0u);
}

}  // namespace
}  // namespace longshore::sandbox
