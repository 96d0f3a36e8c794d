#include "client/context_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace longshore::client {
namespace {

constexpr absl::string_view kMagic = "longshore-context-index 1\n";

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void PutU64(uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

bool GetU64(absl::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) {
    *v |= static_cast<uint64_t>(static_cast<unsigned char>((*in)[i]))
          << (8 * i);
  }
  in->remove_prefix(8);
  return true;
}

void PutString(absl::string_view s, std::string* out) {
  PutU64(s.size(), out);
  out->append(s.data(), s.size());
}

bool GetString(absl::string_view* in, std::string* s) {
  uint64_t n;
  if (!GetU64(in, &n) || in->size() < n) return false;
  s->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

std::string ContextIndex::PathFor(const std::string& context_dir) {
  std::string base;
  if (const char* xdg = getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg) {
    base = xdg;
  } else if (const char* home = getenv("HOME"); home != nullptr && *home) {
    base = absl::StrCat(home, "/.cache");
  } else {
    return "";
  }
  std::string name = Sha256Digest(context_dir).substr(7, 32);
  return absl::StrCat(base, "/longshore/context-index/", name);
}

ContextIndex ContextIndex::Load(const std::string& path) {
  ContextIndex index;
  if (path.empty()) return index;
  absl::StatusOr<std::string> data = ReadFile(path);
  if (!data.ok()) return index;
  absl::string_view in = *data;
  if (!absl::ConsumePrefix(&in, kMagic)) return index;
  while (!in.empty()) {
    std::string rel;
    Entry e;
    uint64_t size, mtime, ctime, racy;
    if (!GetString(&in, &rel) || !GetU64(&in, &size) || !GetU64(&in, &mtime) ||
        !GetU64(&in, &ctime) || !GetU64(&in, &e.ino) || !GetU64(&in, &e.dev) ||
        !GetU64(&in, &racy) || !GetString(&in, &e.digest) ||
        !IsValidDigest(e.digest)) {
      return ContextIndex();  // Malformed: start over.
    }
    e.size = static_cast<int64_t>(size);
    e.mtime_ns = static_cast<int64_t>(mtime);
    e.ctime_ns = static_cast<int64_t>(ctime);
    e.racy = racy != 0;
    index.entries_[rel] = std::move(e);
  }
  return index;
}

std::optional<std::string> ContextIndex::Lookup(const std::string& rel,
                                                const struct stat& st) const {
  auto it = entries_.find(rel);
  if (it == entries_.end()) return std::nullopt;
  const Entry& e = it->second;
  if (e.racy || e.size != st.st_size || e.mtime_ns != Nanos(st.st_mtim) ||
      e.ctime_ns != Nanos(st.st_ctim) || e.ino != st.st_ino ||
      e.dev != st.st_dev) {
    return std::nullopt;
  }
  return e.digest;
}

void ContextIndex::Record(const std::string& rel, const struct stat& st,
                          const std::string& digest, absl::Time hashed_at) {
  Entry e;
  e.size = st.st_size;
  e.mtime_ns = Nanos(st.st_mtim);
  e.ctime_ns = Nanos(st.st_ctim);
  e.ino = st.st_ino;
  e.dev = st.st_dev;
  e.digest = digest;
  int64_t changed = std::max(e.mtime_ns, e.ctime_ns);
  e.racy = absl::ToUnixNanos(hashed_at) - changed < 1000000000;
  entries_[rel] = std::move(e);
}

absl::Status ContextIndex::Save(const std::string& path) const {
  if (path.empty()) return absl::OkStatus();
  std::string out(kMagic);
  for (const auto& [rel, e] : entries_) {
    PutString(rel, &out);
    PutU64(static_cast<uint64_t>(e.size), &out);
    PutU64(static_cast<uint64_t>(e.mtime_ns), &out);
    PutU64(static_cast<uint64_t>(e.ctime_ns), &out);
    PutU64(e.ino, &out);
    PutU64(e.dev, &out);
    PutU64(e.racy ? 1 : 0, &out);
    PutString(e.digest, &out);
  }
  RETURN_IF_ERROR(MakeDirs(path.substr(0, path.rfind('/')), 0700));
  return WriteFileAtomic(path, out, 0600);
}

absl::StatusOr<std::vector<std::string>> HashFilesInParallel(
    const std::vector<std::string>& paths, int threads,
    const std::function<bool()>& cancelled) {
  std::vector<std::string> digests(paths.size());
  std::vector<absl::Status> errors(paths.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> stopped{false};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < paths.size();
         i = next.fetch_add(1)) {
      if (stopped.load() || (cancelled && cancelled())) {
        stopped = true;
        break;
      }
      absl::StatusOr<std::string> d = Sha256File(paths[i]);
      if (d.ok()) {
        digests[i] = std::move(*d);
      } else {
        errors[i] = d.status();
      }
    }
  };
  threads = std::max(1, std::min<int>(threads, static_cast<int>(paths.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (stopped.load()) {
    return absl::CancelledError("hashing the context was interrupted");
  }
  for (const absl::Status& s : errors) {
    if (!s.ok()) return s;
  }
  return digests;
}

}  // namespace longshore::client
