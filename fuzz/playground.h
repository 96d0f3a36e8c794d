// A scratch file system for the fuzz targets that extract archives, and the
// check that an extraction wrote nothing outside its destination.
//
// When the process may (root), it moves into a mount namespace of its own and
// mounts a private tmpfs on /mnt, so the playground has a fixed path that seed
// inputs can name in absolute symlinks and hard links
// (/mnt/outside/victim), and everything in /mnt except the destination is
// checked. Otherwise it falls back to a fresh directory under $TMPDIR and
// says so once.
//
// Layout (ROOT is /mnt or the temporary directory):
//   ROOT/dest/             where the target extracts; emptied by Reset()
//   ROOT/outside/victim    a file that must stay as it is
//   ROOT/outside/dir/      a directory that must stay empty
//   ROOT/input/            where the target writes the archive under test
#ifndef LONGSHORE_FUZZ_PLAYGROUND_H_
#define LONGSHORE_FUZZ_PLAYGROUND_H_

#include <sys/types.h>

#include <map>
#include <string>

namespace longshore::fuzz {

class Playground {
 public:
  // Sets up ROOT once per process; aborts when it cannot.
  Playground();
  Playground(const Playground&) = delete;
  Playground& operator=(const Playground&) = delete;

  const std::string& root() const { return root_; }
  std::string dest() const { return root_ + "/dest"; }
  std::string input() const { return root_ + "/input/archive"; }

  // Empties ROOT and lays out the tree above afresh, with `data` as the input
  // file; records what everything outside dest/ looks like.
  void Reset(const void* data, size_t size);

  // Walks ROOT without following symlinks and aborts (a libFuzzer crash) when
  // anything outside dest/ appeared, went away or changed: type, mode, owner,
  // size, link count, mtime, and the contents of regular files.
  void CheckNothingOutside() const;

 private:
  struct Seen {
    mode_t mode = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    off_t size = 0;
    nlink_t nlink = 0;
    long mtime_sec = 0;
    long mtime_nsec = 0;
    std::string content;  // regular files; symlink targets
    bool operator==(const Seen& o) const;
  };
  using Tree = std::map<std::string, Seen>;

  Tree Snapshot() const;
  void Walk(const std::string& rel, Tree* out) const;

  std::string root_;
  Tree before_;
};

// rm -rf of everything below `dir` (not `dir` itself), never following
// symlinks, making unreadable directories readable first.
void EmptyDirectory(const std::string& dir);

}  // namespace longshore::fuzz

#endif  // LONGSHORE_FUZZ_PLAYGROUND_H_
