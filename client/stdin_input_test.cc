#include "client/stdin_input.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "common/file_util.h"
#include "gtest/gtest.h"

namespace longshore::client {
namespace {

std::string TempDir() {
  const char* t = getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

// A descriptor reading `data` (through a pipe's worth of a file).
int FdOf(const std::string& data) {
  std::string path = TempDir() + "/stdin-XXXXXX";
  int fd = mkstemp(path.data());
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, data.data(), data.size()),
            static_cast<ssize_t>(data.size()));
  lseek(fd, 0, SEEK_SET);
  unlink(path.c_str());
  return fd;
}

// One ustar entry `name` holding `body`, then the end-of-archive blocks.
std::string Tar(const std::string& name, const std::string& body) {
  std::string h(512, '\0');
  h.replace(0, name.size(), name);
  h.replace(100, 7, "0000644");
  h.replace(108, 7, "0000000");
  h.replace(116, 7, "0000000");
  char size[12];
  snprintf(size, sizeof(size), "%011o", static_cast<unsigned>(body.size()));
  h.replace(124, 11, size);
  h.replace(136, 11, "00000000000");
  h[156] = '0';
  h.replace(257, 6, std::string("ustar\0", 6));
  h.replace(263, 2, "00");
  h.replace(148, 8, "        ");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  char chk[8];
  snprintf(chk, sizeof(chk), "%06o", sum);
  h.replace(148, 7, std::string(chk, 6) + '\0');
  std::string padded = body;
  padded.resize((body.size() + 511) / 512 * 512, '\0');
  return h + padded + std::string(1024, '\0');
}

TEST(StdinInputTest, SniffsTarsAndCompression) {
  EXPECT_TRUE(LooksLikeTar(Tar("Dockerfile", "FROM scratch\n")));
  EXPECT_TRUE(LooksLikeTar("\x1f\x8b\x08\x00"));
  EXPECT_TRUE(LooksLikeTar(std::string("\x28\xb5\x2f\xfd", 4)));
  EXPECT_FALSE(LooksLikeTar("FROM scratch\nCOPY . /\n"));
  EXPECT_FALSE(LooksLikeTar(""));
}

TEST(StdinInputTest, TarIsExtractedAsTheContext) {
  int fd = FdOf(Tar("Dockerfile", "FROM scratch\n"));
  auto ctx = ReadStdinContext(fd, TempDir());
  close(fd);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_FALSE(ctx->dockerfile.has_value());
  auto df = ReadFile(ctx->dir + "/Dockerfile");
  ASSERT_TRUE(df.ok()) << df.status();
  EXPECT_EQ(*df, "FROM scratch\n");
  EXPECT_TRUE(RemoveTree(ctx->dir).ok());
}

TEST(StdinInputTest, PlainTextIsTheDockerfileOfAnEmptyContext) {
  int fd = FdOf("FROM scratch\n");
  auto ctx = ReadStdinContext(fd, TempDir());
  close(fd);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  ASSERT_TRUE(ctx->dockerfile.has_value());
  EXPECT_EQ(*ctx->dockerfile, "FROM scratch\n");
  EXPECT_TRUE(RemoveTree(ctx->dir).ok());
}

TEST(StdinInputTest, TarEscapingTheContextIsRefused) {
  int fd = FdOf(Tar("../evil", "x"));
  auto ctx = ReadStdinContext(fd, TempDir());
  close(fd);
  EXPECT_FALSE(ctx.ok());
}

}  // namespace
}  // namespace longshore::client
