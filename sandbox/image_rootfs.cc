#include "sandbox/image_rootfs.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace longshore::sandbox {
namespace {

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

absl::StatusOr<std::string> FindCli() {
  if (const char* env = getenv("LONGSHORE_CLI")) return std::string(env);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n < 0) return ErrnoStatus(errno, "readlink(/proc/self/exe)");
  self[n] = '\0';
  std::string dir = Dirname(self);
  for (const std::string& c :
       {dir + "/longshore", dir + "/../client/longshore"}) {
    if (access(c.c_str(), X_OK) == 0) return c;
  }
  return absl::NotFoundError(absl::StrCat(
      "--image needs the longshore CLI to unpack layers: not found beside ",
      self, " (set LONGSHORE_CLI)"));
}

std::string CacheDir() {
  if (const char* x = getenv("XDG_CACHE_HOME")) {
    return absl::StrCat(x, "/longshore/image-layers");
  }
  const char* home = getenv("HOME");
  return absl::StrCat(home ? home : "/tmp", "/.cache/longshore/image-layers");
}

// Runs `longshore __unpack-image IMAGE CACHE` and returns its lines.
absl::StatusOr<std::vector<std::string>> Unpack(const std::string& image) {
  ASSIGN_OR_RETURN(std::string cli, FindCli());
  std::string cache = CacheDir();
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd out_r(out[0]), out_w(out[1]);
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    execl(cli.c_str(), "longshore", "__unpack-image", image.c_str(),
          cache.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  out_w.reset();
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t r = read(out_r.get(), buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    text.append(buf, r);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--image ", image, ": unpacking failed (", cli, " said why above)"));
  }
  std::vector<std::string> dirs = absl::StrSplit(text, '\n', absl::SkipEmpty());
  return dirs;
}

}  // namespace

bool HasImageArg(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--") return false;
    if (a == "--image" || a.rfind("--image=", 0) == 0) return true;
  }
  return false;
}

absl::StatusOr<ImageArgs> ResolveImageArgs(
    const std::vector<std::string>& args) {
  ImageArgs out;
  std::string image;
  bool have_upper = false;
  size_t end = args.size();
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      end = i;
      break;
    }
    if (args[i] == "--upper") have_upper = true;
  }
  std::vector<std::string> kept;
  for (size_t i = 0; i < end; ++i) {
    if (args[i] == "--image" && i + 1 < end) {
      image = args[++i];
    } else if (args[i].rfind("--image=", 0) == 0) {
      image = args[i].substr(8);
    } else {
      kept.push_back(args[i]);
    }
  }
  if (image.empty()) {
    out.args = args;
    return out;
  }
  ASSIGN_OR_RETURN(std::vector<std::string> lowers, Unpack(image));
  for (const auto& l : lowers) {
    kept.push_back("--lower");
    kept.push_back(l);
  }
  if (!have_upper) {
    const char* tmp = getenv("TMPDIR");
    ASSIGN_OR_RETURN(out.temp_dir,
                     MakeTempDir(tmp ? tmp : "/tmp", "longshore-image-run-"));
    RETURN_IF_ERROR(MakeDirs(out.temp_dir + "/upper", 0755));
    RETURN_IF_ERROR(MakeDirs(out.temp_dir + "/work", 0700));
    kept.insert(kept.end(), {"--upper", out.temp_dir + "/upper", "--work",
                             out.temp_dir + "/work"});
  }
  kept.insert(kept.end(), args.begin() + end, args.end());
  out.args = std::move(kept);
  return out;
}

}  // namespace longshore::sandbox
