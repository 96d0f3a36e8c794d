#include "fuzz/playground.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace longshore::fuzz {
namespace {

constexpr char kVictim[] = "victim: extraction must never change this file\n";

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "playground: %s\n", what.c_str());
  abort();
}

std::string Errno(const std::string& what) {
  return what + ": " + strerror(errno);
}

// A private tmpfs on /mnt in a mount namespace of this process; false when
// the process may not (not root) or /mnt is missing.
bool PrivateMnt() {
  struct stat st;
  if (lstat("/mnt", &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  if (unshare(CLONE_NEWNS) != 0) return false;
  // Mounts made here must not propagate back to the machine's namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    Die(Errno("make / private in the new mount namespace"));
  }
  if (mount("longshore-fuzz", "/mnt", "tmpfs", MS_NOSUID | MS_NODEV,
            "size=256m,mode=0755") != 0) {
    Die(Errno("mount tmpfs on /mnt"));
  }
  return true;
}

void WriteFile(const std::string& path, const void* data, size_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die(Errno("create " + path));
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      Die(Errno("write " + path));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  close(fd);
}

std::string ReadAll(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) Die(Errno("open " + path));
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Die(Errno("read " + path));
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

void MakeDir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0) Die(Errno("mkdir " + path));
}

}  // namespace

bool Playground::Seen::operator==(const Seen& o) const {
  return mode == o.mode && uid == o.uid && gid == o.gid && size == o.size &&
         nlink == o.nlink && mtime_sec == o.mtime_sec &&
         mtime_nsec == o.mtime_nsec && content == o.content;
}

// The entries of `dir` but . and ..
std::vector<std::string> Names(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) Die(Errno("opendir " + dir));
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      names.emplace_back(e->d_name);
    }
  }
  closedir(d);
  return names;
}

void EmptyDirectory(const std::string& dir) {
  // Extraction may leave directories without search permission.
  chmod(dir.c_str(), 0700);
  const std::vector<std::string> names = Names(dir);
  for (const std::string& n : names) {
    std::string path = dir + "/" + n;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) Die(Errno("lstat " + path));
    if (S_ISDIR(st.st_mode)) {
      EmptyDirectory(path);
      if (rmdir(path.c_str()) != 0) Die(Errno("rmdir " + path));
    } else if (unlink(path.c_str()) != 0) {
      Die(Errno("unlink " + path));
    }
  }
}

Playground::Playground() {
  if (PrivateMnt()) {
    root_ = "/mnt";
  } else {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") +
                       "/longshore-fuzz-playground.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) Die(Errno("mkdtemp " + tmpl));
    root_ = buf.data();
    fprintf(stderr,
            "playground: no private mount namespace (needs root); using %s, "
            "where seeds that name /mnt/outside are not checked\n",
            root_.c_str());
  }
}

void Playground::Reset(const void* data, size_t size) {
  EmptyDirectory(root_);
  MakeDir(dest(), 0755);
  MakeDir(root_ + "/outside", 0755);
  MakeDir(root_ + "/outside/dir", 0755);
  MakeDir(root_ + "/input", 0755);
  WriteFile(root_ + "/outside/victim", kVictim, sizeof(kVictim) - 1);
  WriteFile(input(), data, size);
  before_ = Snapshot();
}

void Playground::Walk(const std::string& rel, Tree* out) const {
  std::string path = rel.empty() ? root_ : root_ + "/" + rel;
  const std::vector<std::string> names = Names(path);
  for (const std::string& n : names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    if (r == "dest") continue;  // the destination may hold anything
    std::string p = root_ + "/" + r;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) Die(Errno("lstat " + p));
    Seen s;
    s.mode = st.st_mode;
    s.uid = st.st_uid;
    s.gid = st.st_gid;
    s.size = S_ISDIR(st.st_mode) ? 0 : st.st_size;
    s.nlink = st.st_nlink;
    s.mtime_sec = st.st_mtim.tv_sec;
    s.mtime_nsec = st.st_mtim.tv_nsec;
    if (S_ISREG(st.st_mode)) s.content = ReadAll(p);
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = readlink(p.c_str(), buf, sizeof(buf));
      if (n >= 0) s.content.assign(buf, static_cast<size_t>(n));
    }
    (*out)[r] = s;
    if (S_ISDIR(st.st_mode)) Walk(r, out);
  }
}

Playground::Tree Playground::Snapshot() const {
  Tree t;
  Walk("", &t);
  return t;
}

void Playground::CheckNothingOutside() const {
  Tree after = Snapshot();
  if (after == before_) return;
  for (const auto& [path, seen] : after) {
    auto it = before_.find(path);
    if (it == before_.end()) {
      Die("extraction wrote outside " + dest() + ": " + root_ + "/" + path +
          " appeared");
    }
    if (!(it->second == seen)) {
      Die("extraction changed " + root_ + "/" + path + ", outside " + dest());
    }
  }
  for (const auto& [path, seen] : before_) {
    if (after.find(path) == after.end()) {
      Die("extraction removed " + root_ + "/" + path + ", outside " + dest());
    }
  }
  Die("the tree outside " + dest() + " changed");
}

}  // namespace longshore::fuzz
